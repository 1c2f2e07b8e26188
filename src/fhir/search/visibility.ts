import type { SearchCriterion } from '../../store/port.js';

/**
 * What a caller may see, as extra search criteria per resource type (`own`, the query's own
 * criteria for that type, lets it leave out what they already imply): the layers above decide
 * (consent, care, roles); search applies them inside the query, to the matches and to every
 * type a search reaches into (chains, _has, _include, _revinclude), so pages stay full and
 * totals count only what the caller may see.
 */
export type Visibility = (resourceType: string, own?: SearchCriterion[]) => SearchCriterion[];

export const SEES_EVERYTHING: Visibility = () => [];

/** A criterion no resource matches. */
export const NOTHING: SearchCriterion = { kind: 'id', ids: [] };

/** Criteria with the visibility of every type they reach into (chains and _has) added inside. */
function reachInto(criterion: SearchCriterion, visible: Visibility): SearchCriterion {
  switch (criterion.kind) {
    case 'references':
      return { ...criterion, where: planned(criterion.where.map((c) => reachInto(c, visible)), visible(criterion.targetType, criterion.where)) };
    case 'referencedBy':
      return { ...criterion, where: planned(criterion.where.map((c) => reachInto(c, visible)), visible(criterion.sourceType, criterion.where)) };
    case 'not':
      return { kind: 'not', criterion: reachInto(criterion.criterion, visible) };
    case 'or':
      return { kind: 'or', anyOf: criterion.anyOf.map((all) => all.map((c) => reachInto(c, visible))) };
    default:
      return criterion;
  }
}

/** The criterion with its index-entry tests marked as per-row filters (a planning hint to stores). */
function asFilter(criterion: SearchCriterion): SearchCriterion {
  switch (criterion.kind) {
    case 'entry':
      return { ...criterion, filter: true };
    case 'not':
      return { kind: 'not', criterion: asFilter(criterion.criterion) };
    case 'or':
      return { kind: 'or', anyOf: criterion.anyOf.map((all) => all.map(asFilter)) };
    default:
      return criterion;
  }
}

/**
 * The first restriction (whose patients, typically) selects alongside the query's own criteria:
 * a list built once, which scales with what the caller may see rather than with what the query
 * matches. The others are checked on each row that remains.
 */
function planned(own: SearchCriterion[], restrictions: SearchCriterion[]): SearchCriterion[] {
  return [...own, ...restrictions.map((c, i) => (i === 0 ? c : asFilter(c)))];
}

/**
 * `where` restricted to what the caller may see among `resourceTypes`. Types with the same
 * restrictions share one alternative, so a system search stays one query.
 */
export function restrict(where: SearchCriterion[], resourceTypes: string[], visible: Visibility): SearchCriterion[] {
  if (visible === SEES_EVERYTHING) return where;
  const inner = where.map((c) => reachInto(c, visible));
  if (resourceTypes.length === 1) return planned(inner, visible(resourceTypes[0]!, where));
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
  if (groups.size === 1 && [...groups.values()][0]!.types.length === resourceTypes.length) return planned(inner, [...groups.values()][0]!.criteria);
  const anyOf = [...groups.values()].map((g): SearchCriterion[] => [{ kind: 'type', types: g.types }, ...g.criteria.map(asFilter)]);
  return [...inner, { kind: 'or', anyOf }];
}
