import type { SearchCriterion } from '../../store/port.js';

/**
 * What a caller may see, as extra search criteria per resource type: the layers above decide
 * (consent, care, roles); search applies them inside the query, to the matches and to every
 * type a search reaches into (chains, _has, _include, _revinclude), so pages stay full and
 * totals count only what the caller may see.
 */
export type Visibility = (resourceType: string) => SearchCriterion[];

export const SEES_EVERYTHING: Visibility = () => [];

/** A criterion no resource matches. */
export const NOTHING: SearchCriterion = { kind: 'id', ids: [] };

/** Criteria with the visibility of every type they reach into (chains and _has) added inside. */
function reachInto(criterion: SearchCriterion, visible: Visibility): SearchCriterion {
  switch (criterion.kind) {
    case 'references':
      return { ...criterion, where: [...criterion.where.map((c) => reachInto(c, visible)), ...visible(criterion.targetType)] };
    case 'referencedBy':
      return { ...criterion, where: [...criterion.where.map((c) => reachInto(c, visible)), ...visible(criterion.sourceType)] };
    case 'not':
      return { kind: 'not', criterion: reachInto(criterion.criterion, visible) };
    case 'or':
      return { kind: 'or', anyOf: criterion.anyOf.map((all) => all.map((c) => reachInto(c, visible))) };
    default:
      return criterion;
  }
}

/**
 * `where` restricted to what the caller may see among `resourceTypes`. Types with the same
 * restrictions share one alternative, so a system search stays one query.
 */
export function restrict(where: SearchCriterion[], resourceTypes: string[], visible: Visibility): SearchCriterion[] {
  if (visible === SEES_EVERYTHING) return where;
  const inner = where.map((c) => reachInto(c, visible));
  if (resourceTypes.length === 1) return [...inner, ...visible(resourceTypes[0]!)];
  const groups = new Map<string, { types: string[]; criteria: SearchCriterion[] }>();
  const hidden = JSON.stringify([NOTHING]);
  for (const type of resourceTypes) {
    const criteria = visible(type);
    const key = JSON.stringify(criteria);
    if (key === hidden) continue;
    const group = groups.get(key) ?? { types: [], criteria };
    group.types.push(type);
    groups.set(key, group);
  }
  if (groups.size === 0) return [...inner, NOTHING];
  if (groups.size === 1 && [...groups.values()][0]!.types.length === resourceTypes.length) return [...inner, ...[...groups.values()][0]!.criteria];
  const anyOf = [...groups.values()].map((g): SearchCriterion[] => [{ kind: 'type', types: g.types }, ...g.criteria]);
  return [...inner, { kind: 'or', anyOf }];
}
