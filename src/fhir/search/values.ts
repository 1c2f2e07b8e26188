import type { FieldTest } from '../../store/port.js';
import { badRequest } from '../outcome.js';
import { dateRange } from './dates.js';
import { fold } from './fold.js';
import { CANONICAL, UCUM_SYSTEM, canonicalUcum } from './ucum.js';

/**
 * One search value of one parameter type → the alternatives of field tests that an index
 * entry must pass (an OR of ANDs), on component `slot` (0 except inside composites).
 */

export type Alternatives = FieldTest[][];
type Slot = 0 | 1 | 2;

export const PREFIXES = ['eq', 'ne', 'gt', 'lt', 'ge', 'le', 'sa', 'eb', 'ap'] as const;
export type Prefix = (typeof PREFIXES)[number];

export function splitPrefix(value: string): { prefix: Prefix; rest: string } {
  const m = /^(eq|ne|gt|lt|ge|le|sa|eb|ap)(.*)$/.exec(value);
  if (m && /^[-+0-9]/.test(m[2] ?? '')) return { prefix: m[1] as Prefix, rest: m[2]! };
  return { prefix: 'eq', rest: value };
}

/** Splits on separators not escaped with a backslash; the parts keep their escapes. */
export function splitUnescaped(value: string, separator: string): string[] {
  const parts: string[] = [];
  let current = '';
  for (let i = 0; i < value.length; i++) {
    const ch = value[i]!;
    if (ch === '\\' && i + 1 < value.length) {
      current += ch + value[++i]!;
    } else if (ch === separator) {
      parts.push(current);
      current = '';
    } else {
      current += ch;
    }
  }
  parts.push(current);
  return parts;
}

/** Removes the escaping backslash the specification puts before a backslash, comma, dollar or bar. */
export function unescapeValue(value: string): string {
  return value.replace(/\\([\\,$|])/g, '$1');
}

const t = (slot: Slot, field: FieldTest['field'], op: 'eq' | 'ne' | 'lt' | 'le' | 'gt' | 'ge', value: string | number): FieldTest =>
  ({ slot, field, op, value }) as FieldTest;

/**
 * Dates, with the specification's range semantics: the resource's [low, high] against the
 * search value's range [sl, sh] (both inclusive).
 */
export function dateAlternatives(raw: string, param: string, slot: Slot = 0): Alternatives {
  const { prefix, rest } = splitPrefix(raw);
  const range = dateRange(rest);
  if (!range) throw badRequest(`Parameter '${param}': '${raw}' is not a valid date search value`, [param]);
  const { low: sl, high: sh } = range;
  const within: FieldTest[] = [t(slot, 'low', 'ge', sl), t(slot, 'high', 'le', sh)];
  switch (prefix) {
    case 'eq':
      return [within];
    case 'ne':
      return [[t(slot, 'low', 'lt', sl)], [t(slot, 'high', 'gt', sh)]];
    case 'gt':
      return [[t(slot, 'high', 'gt', sh)]];
    case 'lt':
      return [[t(slot, 'low', 'lt', sl)]];
    // Each alternative of ge implies high >= sl (of le: low <= sh); stating it in both lets the
    // store narrow by index before checking the alternatives.
    case 'ge':
      return [[t(slot, 'high', 'ge', sl), t(slot, 'high', 'gt', sh)], [t(slot, 'high', 'ge', sl), ...within]];
    case 'le':
      return [[t(slot, 'low', 'le', sh), t(slot, 'low', 'lt', sl)], [t(slot, 'low', 'le', sh), ...within]];
    case 'sa':
      return [[t(slot, 'low', 'gt', sh)]];
    case 'eb':
      return [[t(slot, 'high', 'lt', sl)]];
    case 'ap': {
      const margin = Math.max(Math.abs(Date.now() - sl) * 0.1, 86_400_000);
      return [[t(slot, 'low', 'le', sh + margin), t(slot, 'high', 'ge', sl - margin)]];
    }
  }
}

interface SearchNumber {
  value: number;
  /** The implicit precision range: 5.4 means [5.35, 5.45). */
  low: number;
  high: number;
}

/** Numbers and quantities: eq and ne use the implicit precision range, the others the value. */
function numericAlternatives(prefix: Prefix, n: SearchNumber, slot: Slot, unit: FieldTest[]): Alternatives {
  const alternatives = ((): Alternatives => {
    switch (prefix) {
      case 'eq':
        return [[t(slot, 'low', 'ge', n.low), t(slot, 'high', 'lt', n.high)]];
      case 'ne':
        return [[t(slot, 'low', 'lt', n.low)], [t(slot, 'high', 'ge', n.high)]];
      case 'gt':
        return [[t(slot, 'high', 'gt', n.value)]];
      case 'lt':
        return [[t(slot, 'low', 'lt', n.value)]];
      case 'ge':
        return [[t(slot, 'high', 'ge', n.value)]];
      case 'le':
        return [[t(slot, 'low', 'le', n.value)]];
      case 'sa':
        return [[t(slot, 'low', 'gt', n.value)]];
      case 'eb':
        return [[t(slot, 'high', 'lt', n.value)]];
      case 'ap': {
        const margin = Math.abs(n.value) * 0.1;
        return [[t(slot, 'low', 'le', n.value + margin), t(slot, 'high', 'ge', n.value - margin)]];
      }
    }
  })();
  return alternatives.map((alt) => [...unit, ...alt]);
}

/** The point-valued form of date tests, for lastUpdated (the store's own column). */
export function instantTests(raw: string, param: string): { op: 'lt' | 'le' | 'gt' | 'ge' | 'eq' | 'ne'; value: number }[][] {
  const { prefix, rest } = splitPrefix(raw);
  const range = dateRange(rest);
  if (!range) throw badRequest(`Parameter '${param}': '${raw}' is not a valid date search value`, [param]);
  const margin = Math.max(Math.abs(Date.now() - range.low) * 0.1, 86_400_000);
  switch (prefix) {
    case 'eq':
      return [[{ op: 'ge', value: range.low }, { op: 'le', value: range.high }]];
    case 'ne':
      return [[{ op: 'lt', value: range.low }], [{ op: 'gt', value: range.high }]];
    case 'gt':
    case 'sa':
      return [[{ op: 'gt', value: range.high }]];
    case 'lt':
    case 'eb':
      return [[{ op: 'lt', value: range.low }]];
    case 'ge':
      return [[{ op: 'ge', value: range.low }]];
    case 'le':
      return [[{ op: 'le', value: range.high }]];
    case 'ap':
      return [[{ op: 'ge', value: range.low - margin }, { op: 'le', value: range.high + margin }]];
  }
}

function parseNumber(text: string, param: string): SearchNumber {
  if (!/^[-+]?(\d+(\.\d*)?|\.\d+)([eE][-+]?\d+)?$/.test(text)) {
    throw badRequest(`Parameter '${param}': '${text}' is not a number`, [param]);
  }
  const value = Number(text);
  // Implicit precision: 5.4 means [5.35, 5.45); 1e2 means [50, 150).
  const [mantissa = '', exponent = '0'] = text.toLowerCase().split('e');
  const decimals = mantissa.includes('.') ? mantissa.split('.')[1]!.length : 0;
  const half = 0.5 * 10 ** (Number(exponent) - decimals);
  return { value, low: value - half, high: value + half };
}

export function numberAlternatives(raw: string, param: string, slot: Slot = 0): Alternatives {
  const { prefix, rest } = splitPrefix(raw);
  return numericAlternatives(prefix, parseNumber(rest, param), slot, []);
}

/** `[prefix]number|system|code`; UCUM units this server knows are compared in canonical units. */
export function quantityAlternatives(raw: string, param: string, slot: Slot = 0): Alternatives {
  const parts = splitUnescaped(raw, '|').map(unescapeValue);
  if (parts.length > 3) throw badRequest(`Parameter '${param}': a quantity is number|system|code`, [param]);
  const [number = '', system = '', code = ''] = parts;
  const { prefix, rest } = splitPrefix(number);
  const n = parseNumber(rest, param);
  const scale = system === UCUM_SYSTEM && code ? canonicalUcum(1, code) : undefined;
  if (scale) {
    const convert = (x: number) => Number((x * scale.value).toPrecision(12));
    const canonical = { value: convert(n.value), low: convert(n.low), high: convert(n.high) };
    return numericAlternatives(prefix, canonical, slot, [t(slot, 'text', 'eq', CANONICAL), t(slot, 'value', 'eq', scale.code)]);
  }
  // Rows as stored (not converted) have text null or the human unit; the UCUM-converted row has text 'canonical'.
  const asStored: FieldTest[][] = [[{ slot, field: 'text', op: 'isNull' }], [t(slot, 'text', 'ne', CANONICAL)]];
  const units = asStored.map((row) => [...row, ...(system ? [t(slot, 'system', 'eq', system)] : []), ...(code ? [t(slot, 'value', 'eq', code)] : [])]);
  // Without a system, `code` may be the human unit (Quantity.unit) too.
  if (!system && code && code !== CANONICAL) units.push([t(slot, 'text', 'eq', code)]);
  return units.flatMap((unit) => numericAlternatives(prefix, n, slot, unit));
}

export function tokenAlternatives(raw: string, param: string, slot: Slot = 0): Alternatives {
  const parts = splitUnescaped(raw, '|').map(unescapeValue);
  if (parts.length > 2) throw badRequest(`Parameter '${param}': a token is [system|]code`, [param]);
  if (parts.length === 1) {
    if (!parts[0]) throw badRequest(`Parameter '${param}' has an empty value`, [param]);
    return [[t(slot, 'value', 'eq', parts[0])]];
  }
  const [system, code] = parts as [string, string];
  if (!system && !code) throw badRequest(`Parameter '${param}' has an empty value`, [param]);
  const tests: FieldTest[] = [system ? t(slot, 'system', 'eq', system) : { slot, field: 'system', op: 'isNull' }];
  if (code) tests.push(t(slot, 'value', 'eq', code));
  return [tests];
}

export function stringAlternatives(raw: string, modifier: string | undefined, slot: Slot = 0): Alternatives {
  const value = unescapeValue(raw);
  // The folded value narrows by index; the exact text decides.
  if (modifier === 'exact') return [[t(slot, 'value', 'eq', fold(value)), t(slot, 'text', 'eq', value)]];
  if (modifier === 'contains') return [[{ slot, field: 'value', op: 'contains', value: fold(value) }]];
  return [[{ slot, field: 'value', op: 'startsWith', value: fold(value) }]];
}

export function uriAlternatives(raw: string, modifier: string | undefined, slot: Slot = 0): Alternatives {
  const value = unescapeValue(raw);
  if (modifier === 'below') return [[{ slot, field: 'value', op: 'startsWith', value }]];
  if (modifier === 'above') {
    const prefixes: string[] = [];
    for (let v = value; v.length > 0; v = v.slice(0, Math.max(0, v.lastIndexOf('/')))) {
      prefixes.push(v);
      if (!v.includes('/') || /^[a-z]+:\/\/[^/]*$/.test(v)) break;
    }
    return [[{ slot, field: 'value', op: 'in', value: prefixes }]];
  }
  return [[t(slot, 'value', 'eq', value)]];
}

/**
 * A reference search value: `Type/id`, a bare `id`, or an absolute URL (ours becomes
 * relative; anyone else's, or a canonical, is compared as text).
 */
export function referenceAlternatives(raw: string, typeModifier: string | undefined, baseUrl: string, slot: Slot = 0): Alternatives {
  let value = unescapeValue(raw);
  if (value.startsWith(`${baseUrl}/`)) value = value.slice(baseUrl.length + 1);
  const relative = /^([A-Z][A-Za-z]+)\/([A-Za-z0-9\-.]{1,64})(?:\/_history\/[^/]+)?$/.exec(value);
  if (relative) {
    if (typeModifier && typeModifier !== relative[1]) return [];
    return [[t(slot, 'system', 'eq', relative[1]!), t(slot, 'value', 'eq', relative[2]!)]];
  }
  if (value.includes(':') || value.includes('/')) return [[{ slot, field: 'system', op: 'isNull' }, t(slot, 'value', 'eq', value.split('|')[0]!)]];
  const tests: FieldTest[] = [t(slot, 'value', 'eq', value)];
  if (typeModifier) tests.unshift(t(slot, 'system', 'eq', typeModifier));
  return [tests];
}


/**
 * The alternatives with lists for values: those that differ only in the value they name
 * (`code=a,b,c`, `subject=Patient/1,Patient/2`) become one, whose value is one of a list. The
 * stores look a list up (an index seek per value) where they would weigh each alternative of an
 * OR: a thousand codes cost what a thousand seeks cost. An alternative alone keeps its `eq`.
 */
export function withValueLists(anyOf: Alternatives): Alternatives {
  if (anyOf.length < 2) return anyOf;
  interface Group {
    tests: FieldTest[];
    /** Where in `tests` the value is named. */
    at: number;
    values: Set<string>;
  }
  const groups = new Map<string, Group>();
  const result: (FieldTest[] | Group)[] = [];
  for (const tests of anyOf) {
    const named = tests.filter((t) => t.slot === 0 && t.field === 'value' && t.op === 'eq' && typeof t.value === 'string');
    if (named.length !== 1) {
      result.push(tests);
      continue;
    }
    const at = tests.indexOf(named[0]!);
    const value = (named[0] as { value: string }).value;
    const key = JSON.stringify([at, tests.filter((_, i) => i !== at)]);
    const group = groups.get(key);
    if (group) {
      group.values.add(value);
    } else {
      const created: Group = { tests, at, values: new Set([value]) };
      groups.set(key, created);
      result.push(created);
    }
  }
  return result.map((r) => {
    if (Array.isArray(r)) return r;
    if (r.values.size === 1) return r.tests;
    return r.tests.map((t, i): FieldTest => (i === r.at ? { slot: 0, field: 'value', op: 'in', value: [...r.values] } : t));
  });
}
