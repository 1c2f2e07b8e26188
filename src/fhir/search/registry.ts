import { readFileSync } from 'node:fs';
import { allResourceTypes, definitionsPath } from '../definitions.js';

/**
 * The search parameters of every R4 resource type, from the published SearchParameter
 * definitions, with each expression cut down to the part that applies to that type.
 */

export type SearchParamType = 'string' | 'token' | 'date' | 'number' | 'quantity' | 'reference' | 'uri' | 'composite' | 'special';

export interface SearchParameterDef {
  code: string;
  type: SearchParamType;
  /** FHIRPath for this resource type only; undefined for parameters the server computes itself. */
  expression?: string;
  /** Resource types a reference parameter may point to. */
  target: string[];
  /** Composite parameters: the component parameters' definition URLs and their FHIRPath. */
  components: { definition: string; expression: string }[];
  url: string;
  description: string;
}

interface RawSearchParameter {
  url: string;
  code: string;
  base: string[];
  type: SearchParamType;
  expression?: string;
  target?: string[];
  component?: { definition: string; expression: string }[];
  description?: string;
}

/** Splits a FHIRPath union at its top-level `|` operators. */
export function splitUnion(expression: string): string[] {
  const parts: string[] = [];
  let depth = 0;
  let quoted = false;
  let current = '';
  for (const ch of expression) {
    if (ch === "'") quoted = !quoted;
    if (!quoted && ch === '(') depth++;
    if (!quoted && ch === ')') depth--;
    if (!quoted && depth === 0 && ch === '|') {
      parts.push(current.trim());
      current = '';
    } else {
      current += ch;
    }
  }
  parts.push(current.trim());
  return parts.filter(Boolean);
}

function rootType(part: string): string {
  return /^\(*\s*([A-Za-z]+)/.exec(part)?.[1] ?? '';
}

export function expressionForType(expression: string, resourceType: string): string | undefined {
  const parts = splitUnion(expression).filter((p) => {
    const root = rootType(p);
    return root === resourceType || root === 'Resource' || root === 'DomainResource';
  });
  return parts.length ? parts.join(' | ') : undefined;
}

let byType: Map<string, Map<string, SearchParameterDef>> | undefined;

function load(): Map<string, Map<string, SearchParameterDef>> {
  const bundle = JSON.parse(readFileSync(definitionsPath('search-parameters.json'), 'utf8')) as { entry: { resource: RawSearchParameter }[] };
  const types = allResourceTypes();
  const result = new Map<string, Map<string, SearchParameterDef>>([...types].map((t) => [t, new Map()]));
  for (const { resource: sp } of bundle.entry) {
    const bases = sp.base.flatMap((b) => (b === 'Resource' || b === 'DomainResource' ? [...types].filter((t) => b === 'Resource' || t !== 'Bundle' && t !== 'Binary' && t !== 'Parameters') : [b]));
    for (const type of bases) {
      const params = result.get(type);
      if (!params) continue;
      const expression = sp.expression ? expressionForType(sp.expression, type) : undefined;
      const def: SearchParameterDef = {
        code: sp.code,
        type: sp.type,
        target: sp.target ?? [],
        components: sp.component ?? [],
        url: sp.url,
        description: sp.description ?? '',
      };
      if (expression) def.expression = expression;
      params.set(sp.code, def);
    }
  }
  return result;
}

export function searchParameters(resourceType: string): ReadonlyMap<string, SearchParameterDef> {
  byType ??= load();
  return byType.get(resourceType) ?? new Map();
}

/** A parameter by its definition URL (composites name their components this way). */
export function searchParameterByUrl(resourceType: string, url: string): SearchParameterDef | undefined {
  for (const def of searchParameters(resourceType).values()) if (def.url === url) return def;
  return undefined;
}

/** Parameter types whose entries depend only on the expression (references also feed ownership and _include). */
const ALIASABLE = new Set<SearchParamType>(['string', 'token', 'date', 'number', 'quantity', 'uri', 'composite']);

let unionsByType: Map<string, Map<string, string[]>> | undefined;

/**
 * What makes two parameters' entries the same: their type, and for composites the type and
 * expression of each component (the base expression is compared part by part).
 */
function signature(resourceType: string, def: SearchParameterDef): string | undefined {
  if (def.type !== 'composite') return def.type;
  const components = def.components.map((c) => {
    const component = searchParameterByUrl(resourceType, c.definition);
    return component && component.type !== 'composite' ? `${component.type}~${c.expression}` : undefined;
  });
  return components.every(Boolean) ? `composite(${components.join(',')})` : undefined;
}

function findUnions(resourceType: string): Map<string, string[]> {
  const defs = [...searchParameters(resourceType).values()].filter((d) => d.expression && ALIASABLE.has(d.type));
  const shapes = new Map<string, { parts: string[]; signature: string; order: number }>();
  defs.forEach((def, order) => {
    const sig = signature(resourceType, def);
    if (sig) shapes.set(def.code, { parts: splitUnion(def.expression!), signature: sig, order });
  });
  const unions = new Map<string, string[]>();
  // Shorter expressions first, so that a parameter's parts are settled before longer ones use them.
  const byLength = [...shapes].sort(([, a], [, b]) => a.parts.length - b.parts.length || a.order - b.order);
  for (const [code, shape] of byLength) {
    const leaves: string[] = [];
    let at = 0;
    while (at < shape.parts.length) {
      let best: { code: string; length: number } | undefined;
      for (const [other, candidate] of shapes) {
        if (other === code || candidate.signature !== shape.signature) continue;
        const length = candidate.parts.length;
        // The same expression: the parameter defined first keeps the entries.
        if (length === shape.parts.length && candidate.order > shape.order) continue;
        if (length > shape.parts.length - at || (best && best.length >= length)) continue;
        if (candidate.parts.every((part, i) => part === shape.parts[at + i])) best = { code: other, length };
      }
      if (!best) break;
      for (const leaf of unions.get(best.code) ?? [best.code]) if (!leaves.includes(leaf)) leaves.push(leaf);
      at += best.length;
    }
    if (at === shape.parts.length && leaves.length > 0) unions.set(code, leaves);
  }
  return unions;
}

/**
 * When a parameter's expression is a union of other parameters' expressions of the same type
 * (Observation `combo-code` is `code | component-code`), or the same as an earlier one's
 * (Patient `phonetic` is `name`), its entries would repeat theirs: those parameters (never
 * themselves such a union) are indexed instead, and searches on it look at theirs. Undefined
 * for a parameter indexed under its own name.
 */
export function unionOf(resourceType: string, code: string): readonly string[] | undefined {
  unionsByType ??= new Map();
  let unions = unionsByType.get(resourceType);
  if (!unions) {
    unions = findUnions(resourceType);
    unionsByType.set(resourceType, unions);
  }
  return unions.get(code);
}
