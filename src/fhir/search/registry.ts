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
