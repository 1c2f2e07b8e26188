import type { SearchCriterion } from '../../store/port.js';
import { FhirError, badRequest } from '../outcome.js';
import { searchParameterByUrl, searchParameters, unionOf, type SearchParameterDef } from './registry.js';
import {
  dateAlternatives,
  instantTests,
  numberAlternatives,
  quantityAlternatives,
  referenceAlternatives,
  splitUnescaped,
  stringAlternatives,
  tokenAlternatives,
  unescapeValue,
  uriAlternatives,
  withValueLists,
  type Alternatives,
} from './values.js';
import type { ValueSetCodes } from './value-sets.js';
import { NOTHING } from './visibility.js';

/**
 * Turns one selection parameter (`name[:modifier][.chain]=value`) into a criterion of the
 * store-neutral IR. Comma-separated values OR together; a repeated parameter becomes one more
 * criterion (AND) at the caller.
 */

export interface CriteriaContext {
  /** The endpoint's base URL: absolute references to it are compared as relative ones. */
  baseUrl: string;
  /**
   * Codes of a ValueSet stored on this server, by canonical URL or `ValueSet/{id}` (for :in and
   * :not-in); undefined when none is; a 400 when it cannot be expanded here.
   */
  valueSetCodes(reference: string): Promise<ValueSetCodes | undefined>;
}

const MODIFIERS: Record<string, string[]> = {
  string: ['exact', 'contains', 'missing'],
  token: ['not', 'text', 'of-type', 'in', 'not-in', 'missing'],
  date: ['missing'],
  number: ['missing'],
  quantity: ['missing'],
  reference: ['identifier', 'missing'],
  uri: ['below', 'above', 'missing'],
  composite: ['missing'],
};

const MAX_CHAIN_DEPTH = 4;

function unsupportedModifier(name: string, modifier: string): FhirError {
  return FhirError.of(400, 'not-supported', `Modifier ':${modifier}' is not supported on parameter '${name}'`, [name]);
}

function entry(param: string, anyOf: Alternatives): SearchCriterion {
  return { kind: 'entry', param, anyOf: withValueLists(anyOf) };
}

/**
 * Entries derived from a value that may be there without it (a reference by identifier only,
 * a concept with text only): such an element is present through them, with no entry of its own.
 */
const DERIVED_ALONE: Partial<Record<string, string[]>> = { token: ['text'], reference: ['identifier'] };

function missingCriterion(def: SearchParameterDef, missing: boolean): SearchCriterion {
  const names = [def.code, ...(DERIVED_ALONE[def.type] ?? []).map((suffix) => `${def.code}:${suffix}`)];
  const each = names.map((param): SearchCriterion => ({ kind: 'missing', param, missing }));
  if (each.length === 1) return each[0]!;
  // Missing: no entry under any of the names; present: an entry under one of them.
  return missing ? { kind: 'or', anyOf: [each] } : { kind: 'or', anyOf: each.map((c) => [c]) };
}

/** `name` is the parameter as sent, modifier included. */
export function parseMissing(value: string, name: string): boolean {
  if (value !== 'true' && value !== 'false') throw badRequest(`Parameter '${name}' takes true or false`, [name]);
  return value === 'true';
}

/**
 * Alternatives for an entry whose code is one of a ValueSet's: a code of its system, or any
 * code of a system the ValueSet includes whole. An entry without a system matches on its code
 * alone: it is of a `code` element (Patient.gender, Observation.status), whose system is the one
 * its binding implies and the index does not keep (HAPI indexes the binding's system instead),
 * or a Coding that names none; where the ValueSet lists codes of several systems, any of them.
 */
function inValueSet({ codes, wholeSystems }: ValueSetCodes): Alternatives {
  const alternatives: Alternatives = [];
  const withoutSystem = new Set<string>();
  for (const [system, listed] of codes) {
    alternatives.push([{ slot: 0, field: 'system', op: 'eq', value: system }, { slot: 0, field: 'value', op: 'in', value: [...listed] }]);
    for (const code of listed) withoutSystem.add(code);
  }
  // Entries without a system cannot be matched to a system whose codes are not listed.
  for (const system of wholeSystems) alternatives.push([{ slot: 0, field: 'system', op: 'eq', value: system }]);
  if (withoutSystem.size) alternatives.push([{ slot: 0, field: 'system', op: 'isNull' }, { slot: 0, field: 'value', op: 'in', value: [...withoutSystem] }]);
  return alternatives;
}

/** The issues of `error`, a FhirError, naming the parameter where they name nothing. */
function aboutParameter(error: unknown, name: string): unknown {
  if (!(error instanceof FhirError)) return error;
  return new FhirError(error.status, (error.outcome.issue ?? []).map((i) => ({ ...i, expression: i.expression ?? [name] })));
}

async function tokenCriterion(def: SearchParameterDef, name: string, modifier: string | undefined, values: string[], context: CriteriaContext): Promise<SearchCriterion> {
  switch (modifier) {
    case undefined:
      return entry(def.code, values.flatMap((v) => tokenAlternatives(v, name)));
    case 'not':
      return { kind: 'not', criterion: entry(def.code, values.flatMap((v) => tokenAlternatives(v, name))) };
    case 'text':
      return entry(`${def.code}:text`, values.flatMap((v) => stringAlternatives(v, undefined)));
    case 'of-type':
      // Only Identifiers have a type to match (their parameters' paths all name one); elsewhere it would find nothing, silently.
      if (!/[iI]dentifier/.test(def.expression ?? '')) throw unsupportedModifier(name, modifier);
      return entry(
        `${def.code}:of-type`,
        values.map((v) => {
          const parts = splitUnescaped(v, '|').map(unescapeValue);
          if (parts.length !== 3 || parts.some((p) => !p)) throw badRequest(`Parameter '${name}' takes type-system|type-code|value`, [name]);
          return [
            { slot: 0, field: 'system', op: 'eq', value: parts[0]! },
            { slot: 0, field: 'value', op: 'eq', value: parts[1]! },
            { slot: 1, field: 'value', op: 'eq', value: parts[2]! },
          ];
        }),
      );
    case 'in':
    case 'not-in': {
      const anyOf: Alternatives = [];
      for (const reference of values.map(unescapeValue)) {
        const codes = await context.valueSetCodes(reference).catch((error: unknown) => {
          throw aboutParameter(error, name);
        });
        if (!codes) throw FhirError.of(400, 'not-found', `Parameter '${name}': no ValueSet '${reference}' is stored on this server`, [name]);
        anyOf.push(...inValueSet(codes));
      }
      const inSet = entry(def.code, anyOf);
      return modifier === 'in' ? inSet : { kind: 'not', criterion: inSet };
    }
    default:
      throw unsupportedModifier(name, modifier);
  }
}

async function compositeCriterion(resourceType: string, def: SearchParameterDef, name: string, values: string[]): Promise<SearchCriterion> {
  const components = def.components.map((c) => searchParameterByUrl(resourceType, c.definition));
  const anyOf: Alternatives = [];
  for (const value of values) {
    const parts = splitUnescaped(value, '$');
    if (parts.length !== components.length) throw badRequest(`Parameter '${name}' takes ${components.length} values joined by '$'`, [name]);
    // Each component gives alternatives; the composite needs one from each, on its own slot.
    let combined: Alternatives = [[]];
    parts.forEach((part, i) => {
      const component = components[i];
      if (!component) throw badRequest(`Parameter '${name}' cannot be searched on ${resourceType}`, [name]);
      const slot = i as 0 | 1 | 2;
      const alternatives = valueAlternatives(component, name, undefined, part, slot, '');
      combined = combined.flatMap((prefix) => alternatives.map((alt) => [...prefix, ...alt]));
    });
    anyOf.push(...combined);
  }
  return entry(def.code, anyOf);
}

/** Alternatives for one value of a simple (non-composite, non-token-modifier) parameter. */
function valueAlternatives(def: SearchParameterDef, name: string, modifier: string | undefined, value: string, slot: 0 | 1 | 2, baseUrl: string): Alternatives {
  switch (def.type) {
    case 'string':
      return stringAlternatives(value, modifier, slot);
    case 'token':
      return tokenAlternatives(value, name, slot);
    case 'date':
      return dateAlternatives(value, name, slot);
    case 'number':
      return numberAlternatives(value, name, slot);
    case 'quantity':
      return quantityAlternatives(value, name, slot);
    case 'uri':
      return uriAlternatives(value, modifier, slot);
    case 'reference':
      return referenceAlternatives(value, modifier, baseUrl, slot);
    default:
      throw FhirError.of(400, 'not-supported', `Parameter '${name}' cannot be searched here`, [name]);
  }
}

export interface ParsedName {
  code: string;
  modifier?: string;
  /** For chains: the rest after the first '.', e.g. `name` in `subject:Patient.name`. */
  chain?: string;
}

export function parseName(name: string): ParsedName {
  const dot = name.indexOf('.');
  const head = dot < 0 ? name : name.slice(0, dot);
  const [code = '', modifier] = head.split(':', 2);
  const parsed: ParsedName = { code };
  if (modifier !== undefined) parsed.modifier = modifier;
  if (dot >= 0) parsed.chain = name.slice(dot + 1);
  return parsed;
}

/**
 * The criterion for one parameter occurrence on `resourceType`, or undefined when the type
 * has no such parameter (the caller reports it). Throws a 400 for malformed values.
 */
export async function parameterCriterion(resourceType: string, name: string, rawValue: string, context: CriteriaContext, depth = 0): Promise<SearchCriterion | undefined> {
  const criterion = await criterionAsNamed(resourceType, name, rawValue, context, depth);
  return criterion && onIndexedParameters(resourceType, criterion);
}

/**
 * A parameter that is a union of others is not indexed under its own name (see unionOf): its
 * criterion looks at their entries instead. (Chains and _has have done so for their own types.)
 */
function onIndexedParameters(resourceType: string, criterion: SearchCriterion): SearchCriterion {
  switch (criterion.kind) {
    case 'entry': {
      const colon = criterion.param.indexOf(':');
      const parts = unionOf(resourceType, colon < 0 ? criterion.param : criterion.param.slice(0, colon));
      if (!parts) return criterion;
      // Derived entries (`:text`) are named after their parameter.
      const suffix = colon < 0 ? '' : criterion.param.slice(colon);
      const alternatives = parts.map((part): SearchCriterion[] => [{ ...criterion, param: `${part}${suffix}` }]);
      return alternatives.length === 1 ? alternatives[0]![0]! : { kind: 'or', anyOf: alternatives };
    }
    case 'missing': {
      const colon = criterion.param.indexOf(':');
      const parts = unionOf(resourceType, colon < 0 ? criterion.param : criterion.param.slice(0, colon));
      if (!parts) return criterion;
      const suffix = colon < 0 ? '' : criterion.param.slice(colon);
      const each = parts.map((part): SearchCriterion => ({ kind: 'missing', param: `${part}${suffix}`, missing: criterion.missing }));
      // Missing when every part is; present when some part is.
      return criterion.missing ? { kind: 'or', anyOf: [each] } : { kind: 'or', anyOf: each.map((c) => [c]) };
    }
    case 'not':
      return { kind: 'not', criterion: onIndexedParameters(resourceType, criterion.criterion) };
    case 'or':
      return { kind: 'or', anyOf: criterion.anyOf.map((all) => all.map((c) => onIndexedParameters(resourceType, c))) };
    default:
      return criterion;
  }
}

async function criterionAsNamed(resourceType: string, name: string, rawValue: string, context: CriteriaContext, depth: number): Promise<SearchCriterion | undefined> {
  if (name.startsWith('_has:')) return hasCriterion(resourceType, name, rawValue, context, depth);
  const { code, modifier, chain } = parseName(name);
  if (code === '_list' && chain === undefined) return listCriterion(resourceType, name, modifier, rawValue, context, depth);
  const def = searchParameters(resourceType).get(code);
  if (!def) return undefined;
  const values = splitUnescaped(rawValue, ',').filter((v) => v !== '');
  if (values.length === 0) throw badRequest(`Parameter '${name}' has no value`, [name]);

  if (modifier === 'missing') {
    const missing = parseMissing(rawValue, name);
    // Every resource has an id and a lastUpdated, and neither is an index entry.
    if (code === '_id' || code === '_lastUpdated') return missing ? { kind: 'or', anyOf: [] } : { kind: 'lastUpdated', tests: [] };
    return missingCriterion(def, missing);
  }
  if (chain !== undefined) return chainCriterion(resourceType, def, name, modifier, chain, rawValue, context, depth);

  if (code === '_id') {
    if (modifier) throw unsupportedModifier(name, modifier);
    return { kind: 'id', ids: values.map(unescapeValue) };
  }
  if (code === '_lastUpdated') {
    if (modifier) throw unsupportedModifier(name, modifier);
    const alternatives = values.flatMap((v) => instantTests(v, name));
    const criteria = alternatives.map((tests): SearchCriterion[] => [{ kind: 'lastUpdated', tests }]);
    return criteria.length === 1 ? criteria[0]![0]! : { kind: 'or', anyOf: criteria };
  }
  if (modifier !== undefined && !(MODIFIERS[def.type] ?? []).includes(modifier) && !(def.type === 'reference' && /^[A-Z]/.test(modifier))) {
    throw unsupportedModifier(name, modifier);
  }
  if (def.type === 'token') return tokenCriterion(def, name, modifier, values, context);
  if (def.type === 'composite') return compositeCriterion(resourceType, def, name, values);
  if (def.type === 'reference' && modifier === 'identifier') {
    return entry(`${code}:identifier`, values.flatMap((v) => tokenAlternatives(v, name)));
  }
  if (def.type === 'reference' && modifier !== undefined && !def.target.includes(modifier)) {
    throw badRequest(`Parameter '${code}' cannot refer to a ${modifier}`, [name]);
  }
  return entry(code, values.flatMap((v) => valueAlternatives(def, name, modifier, v, 0, context.baseUrl)));
}

async function chainCriterion(
  resourceType: string,
  def: SearchParameterDef,
  name: string,
  modifier: string | undefined,
  chain: string,
  rawValue: string,
  context: CriteriaContext,
  depth: number,
): Promise<SearchCriterion> {
  if (def.type !== 'reference') throw badRequest(`Parameter '${def.code}' is not a reference and cannot be chained`, [name]);
  if (depth >= MAX_CHAIN_DEPTH) throw badRequest(`Chains may be at most ${MAX_CHAIN_DEPTH} levels deep`, [name]);
  const targets = modifier ? [modifier] : def.target;
  if (modifier && !def.target.includes(modifier)) throw badRequest(`Parameter '${def.code}' cannot refer to a ${modifier}`, [name]);
  const alternatives: SearchCriterion[][] = [];
  for (const targetType of targets) {
    const inner = await parameterCriterion(targetType, chain, rawValue, context, depth + 1);
    if (inner) alternatives.push([{ kind: 'references', param: def.code, targetType, where: [inner] }]);
  }
  if (alternatives.length === 0) throw badRequest(`Chained parameter '${chain}' is not known on any type '${def.code}' refers to`, [name]);
  return alternatives.length === 1 ? alternatives[0]![0]! : { kind: 'or', anyOf: alternatives };
}

/**
 * `_list=42`: the resources List/42 holds (List.entry.item), read as `_has:List:item:_id=42`
 * reads them, so a List the caller may not see holds nothing for it. Functional lists
 * (`$current-problems`) are not kept here.
 */
async function listCriterion(resourceType: string, name: string, modifier: string | undefined, rawValue: string, context: CriteriaContext, depth: number): Promise<SearchCriterion> {
  if (modifier) throw unsupportedModifier(name, modifier);
  const values = splitUnescaped(rawValue, ',').filter((v) => v !== '');
  if (values.length === 0) throw badRequest(`Parameter '${name}' has no value`, [name]);
  const functional = values.find((v) => v.startsWith('$'));
  if (functional !== undefined) {
    throw FhirError.of(400, 'not-supported', `Functional lists such as '${functional.slice(0, 64)}' are not supported: _list takes the id of a List stored here`, [name]);
  }
  const item = searchParameters('List').get('item');
  if (item?.target.length && !item.target.includes(resourceType)) return NOTHING;
  return hasCriterion(resourceType, '_has:List:item:_id', rawValue, context, depth);
}

/** `_has:Observation:patient:code=1234` and nested `_has:...:_has:...`. */
async function hasCriterion(resourceType: string, name: string, rawValue: string, context: CriteriaContext, depth: number): Promise<SearchCriterion> {
  const m = /^_has:([A-Z][A-Za-z]+):([a-z][a-z0-9-]*):(.+)$/.exec(name);
  if (!m) throw badRequest(`'${name}' is not a valid _has parameter (_has:Type:reference:parameter)`, [name]);
  const [, sourceType, param, rest] = m as unknown as [string, string, string, string];
  if (depth >= MAX_CHAIN_DEPTH) throw badRequest(`_has may be nested at most ${MAX_CHAIN_DEPTH} levels deep`, [name]);
  const reference = searchParameters(sourceType).get(param);
  if (!reference || reference.type !== 'reference') throw badRequest(`'${param}' is not a reference parameter of ${sourceType}`, [name]);
  if (reference.target.length && !reference.target.includes(resourceType)) {
    throw badRequest(`${sourceType}.${param} cannot refer to a ${resourceType}`, [name]);
  }
  const inner = await parameterCriterion(sourceType, rest, rawValue, context, depth + 1);
  if (!inner) throw badRequest(`'${rest}' is not a search parameter of ${sourceType}`, [name]);
  return { kind: 'referencedBy', sourceType, param, where: [inner] };
}
