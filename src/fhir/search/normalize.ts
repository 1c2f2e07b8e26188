import type { IndexValue } from '../../store/port.js';
import { MAX_INSTANT, MIN_INSTANT, dateRange } from './dates.js';
import { fold } from './fold.js';
import type { SearchParamType } from './registry.js';
import { CANONICAL, UCUM_SYSTEM, canonicalUcum } from './ucum.js';

/**
 * Turns one value found by a search parameter's expression into the normalised index values
 * the stores compare. `type` is the value's FHIR type (Coding, dateTime, HumanName, ...).
 * Each function returns the values for the parameter itself; token parameters may also
 * return extra values keyed by a derived parameter name (display text, identifier type).
 */

export interface Normalised {
  /** Values of the parameter itself. */
  values: IndexValue[];
  /** Entries of derived parameters (`code:text`, `identifier:of-type`): each item is one entry's components. */
  derived?: { suffix: string; components: IndexValue[] }[];
}

type Json = Record<string, unknown>;

const str = (v: unknown): string | undefined => (typeof v === 'string' && v !== '' ? v : undefined);
const arr = (v: unknown): unknown[] => (Array.isArray(v) ? v : v === undefined || v === null ? [] : [v]);

const ASCII_NO_CONTROL = /^[\x20-\x7e]*$/;

/** fold(), without its Unicode work for the usual plain-ASCII text (same result). */
function folded(text: string): string {
  return ASCII_NO_CONTROL.test(text) ? text.toLowerCase() : fold(text);
}

function stringValue(text: string): IndexValue {
  return { value: folded(text), text };
}

/** Adds the non-empty strings among `v` (one value or an array of them). */
function addStrings(out: IndexValue[], v: unknown): void {
  if (typeof v === 'string') {
    if (v !== '') out.push(stringValue(v));
  } else if (Array.isArray(v)) {
    for (const item of v) if (typeof item === 'string' && item !== '') out.push(stringValue(item));
  }
}

function strings(value: unknown, type: string): IndexValue[] {
  if (typeof value === 'string') return [stringValue(value)];
  if (typeof value !== 'object' || value === null) return [];
  const o = value as Json;
  const out: IndexValue[] = [];
  if (type === 'HumanName') {
    for (const v of [o.text, o.family]) if (typeof v === 'string') addStrings(out, v);
    for (const v of [o.given, o.prefix, o.suffix]) addStrings(out, v);
  } else if (type === 'Address') {
    if (typeof o.text === 'string') addStrings(out, o.text);
    addStrings(out, o.line);
    for (const v of [o.city, o.district, o.state, o.postalCode, o.country]) if (typeof v === 'string') addStrings(out, v);
  }
  return out;
}

type Derived = { suffix: string; components: IndexValue[] };

/** A display text for :text, folded, as the value of a derived `param:text` entry. */
function addTextEntry(derived: Derived[], text: unknown): Derived[] {
  if (typeof text === 'string' && text !== '') derived.push({ suffix: 'text', components: [{ value: folded(text) }] });
  return derived;
}

function codingValue(coding: Json): IndexValue | undefined {
  const code = str(coding.code);
  const system = str(coding.system) ?? null;
  if (code === undefined && system === null) return undefined;
  const v: IndexValue = { system };
  if (code !== undefined) v.value = code;
  return v;
}

function tokens(value: unknown, type: string): Normalised {
  if (typeof value === 'boolean' || typeof value === 'number') return { values: [{ system: null, value: String(value) }] };
  if (typeof value === 'string') return { values: value ? [{ system: null, value }] : [] };
  if (typeof value !== 'object' || value === null) return { values: [] };
  const o = value as Json;
  switch (type) {
    case 'Coding': {
      const v = codingValue(o);
      return { values: v ? [v] : [], derived: addTextEntry([], o.display) };
    }
    case 'CodeableConcept': {
      const codings = arr(o.coding) as Json[];
      const values: IndexValue[] = [];
      const derived = addTextEntry([], o.text);
      for (const c of codings) {
        const v = codingValue(c);
        if (v) values.push(v);
      }
      for (const c of codings) addTextEntry(derived, c.display);
      return { values, derived };
    }
    case 'Identifier': {
      const idValue = str(o.value);
      const values: IndexValue[] = idValue === undefined ? [] : [{ system: str(o.system) ?? null, value: idValue }];
      const idType = o.type as Json | undefined;
      const typeCodings = arr(idType?.coding) as Json[];
      // :of-type matches the type's system|code and the value together: one entry, two components.
      const ofType = idValue === undefined ? [] : typeCodings.flatMap((c) => {
        const coding = codingValue(c);
        return coding ? [{ suffix: 'of-type', components: [coding, { value: idValue }] }] : [];
      });
      return { values, derived: [...addTextEntry([], idType?.text), ...ofType] };
    }
    case 'ContactPoint': {
      const v = str(o.value);
      return { values: v === undefined ? [] : [{ system: str(o.system) ?? null, value: v }] };
    }
    default:
      return { values: [] };
  }
}

function dates(value: unknown, type: string): IndexValue[] {
  if (typeof value === 'string') {
    const r = dateRange(value);
    return r ? [{ low: r.low, high: r.high }] : [];
  }
  if (typeof value !== 'object' || value === null) return [];
  const o = value as Json;
  if (type === 'Period') {
    const start = str(o.start) ? dateRange(o.start as string) : undefined;
    const end = str(o.end) ? dateRange(o.end as string) : undefined;
    if (!start && !end) return [];
    return [{ low: start?.low ?? MIN_INSTANT, high: end?.high ?? MAX_INSTANT }];
  }
  if (type === 'Timing') {
    const events = (arr(o.event) as string[]).flatMap((e) => dateRange(e) ?? []);
    const bounds = (o.repeat as Json | undefined)?.boundsPeriod;
    const boundRange = bounds ? dates(bounds, 'Period') : [];
    const ranges = [...events, ...boundRange.map((b) => ({ low: b.low!, high: b.high! }))];
    if (!ranges.length) return [];
    return [{ low: Math.min(...ranges.map((r) => r.low)), high: Math.max(...ranges.map((r) => r.high)) }];
  }
  return [];
}

function quantities(value: unknown, type: string): IndexValue[] {
  if (typeof value === 'number') return [{ low: value, high: value }];
  if (typeof value !== 'object' || value === null) return [];
  const o = value as Json;
  if (type === 'Range') {
    const low = (o.low as Json | undefined)?.value;
    const high = (o.high as Json | undefined)?.value;
    if (typeof low !== 'number' && typeof high !== 'number') return [];
    const unit = (o.low ?? o.high) as Json;
    return [{ system: str(unit.system) ?? null, value: str(unit.code) ?? str(unit.unit) ?? '', low: typeof low === 'number' ? low : -Number.MAX_VALUE, high: typeof high === 'number' ? high : Number.MAX_VALUE }];
  }
  const amount = o.value;
  if (typeof amount !== 'number') return [];
  const system = str(o.system) ?? null;
  const code = str(o.code) ?? str(o.unit);
  const primary: IndexValue = { system, value: code ?? '', low: amount, high: amount };
  // `value||unit` matches the code or the human unit: a unit unlike the code rides in text (no extra row to index).
  const unit = str(o.unit);
  if (unit !== undefined && unit !== code && unit !== CANONICAL) primary.text = unit;
  const result: IndexValue[] = [primary];
  if (system === UCUM_SYSTEM && str(o.code)) {
    const canonical = canonicalUcum(amount, o.code as string);
    // Marked by text so that unit-converted searches compare only converted values.
    if (canonical) result.push({ system, value: canonical.code, text: CANONICAL, low: canonical.value, high: canonical.value });
  }
  return result;
}

const RELATIVE_REFERENCE = /^([A-Z][A-Za-z]+)\/([A-Za-z0-9\-.]{1,64})(?:\/_history\/[^/]+)?$/;

function references(value: unknown, type: string, localBase: string | undefined): Normalised {
  if (typeof value === 'string') {
    // canonical and uri elements used as reference parameters: match by URL, without |version.
    return { values: value ? [{ system: null, value: value.split('|')[0]! }] : [] };
  }
  if (typeof value !== 'object' || value === null || type !== 'Reference') return { values: [] };
  const o = value as Json;
  const values: IndexValue[] = [];
  let reference = str(o.reference);
  // An absolute reference to this server is the same as a relative one.
  if (reference && localBase && reference.startsWith(`${localBase}/`)) reference = reference.slice(localBase.length + 1);
  if (reference && !reference.startsWith('#')) {
    const relative = RELATIVE_REFERENCE.exec(reference);
    if (relative) values.push({ system: relative[1]!, value: relative[2]! });
    else values.push({ system: null, value: reference });
  }
  const identifier = o.identifier as Json | undefined;
  const identifierValue = identifier && str(identifier.value);
  return {
    values,
    derived: identifierValue ? [{ suffix: 'identifier', components: [{ system: str(identifier!.system) ?? null, value: identifierValue }] }] : [],
  };
}

function uris(value: unknown): IndexValue[] {
  return typeof value === 'string' && value ? [{ value }] : [];
}

function numbers(value: unknown, type: string): IndexValue[] {
  if (typeof value === 'number') return [{ low: value, high: value }];
  return quantities(value, type);
}

/** `localBase`: this server's base URL, so that absolute references to it index as relative ones. */
export function normalise(paramType: SearchParamType, value: unknown, type: string, localBase?: string): Normalised {
  switch (paramType) {
    case 'string':
      return { values: strings(value, type) };
    case 'token':
      return tokens(value, type);
    case 'date':
      return { values: dates(value, type) };
    case 'number':
      return { values: numbers(value, type) };
    case 'quantity':
      return { values: quantities(value, type) };
    case 'reference':
      return references(value, type, localBase);
    case 'uri':
      return { values: uris(value) };
    default:
      return { values: [] };
  }
}
