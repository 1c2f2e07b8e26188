import { createRequire } from 'node:module';
import fhirpath from 'fhirpath';
import type { IndexEntry, IndexValue, ResourceIndex, SortKey } from '../../store/port.js';
import { normalise } from './normalize.js';
import { searchParameterByUrl, searchParameters, splitUnion, type SearchParameterDef } from './registry.js';
import { compileRelativePath, compileSimplePath } from './simple-path.js';

/**
 * Index at write time: evaluate every search parameter of the resource's type once, and keep
 * the normalised values (and sort keys) beside the resource. Searches never read bodies.
 */

const model = createRequire(import.meta.url)('fhirpath/fhir-context/r4') as never;

/** Parameters answered from the store's own columns, not from index entries. */
const BUILT_IN = new Set(['_id', '_lastUpdated']);
const MAX_COMPOSITE_COMBINATIONS = 64;

interface Typed {
  value: unknown;
  type: string;
  /** Where the value sits, for evaluating composite components relative to it. */
  path?: string;
}

type Evaluator = (resource: object) => Typed[];

interface ResourceNodeLike {
  data: unknown;
  path?: string;
}

function isNode(x: unknown): x is ResourceNodeLike {
  return typeof x === 'object' && x !== null && 'data' in x && 'path' in x;
}

function compile(expression: string | { base: string; expression: string }): Evaluator {
  const fn = fhirpath.compile(expression as never, model, { resolveInternalTypes: false }) as (r: object, env: object) => unknown[];
  return (resource) => {
    // Some definitions refer to %resource (e.g. to the resource's own contained resources).
    const results = fn(resource, { resource, rootResource: resource });
    const types = fhirpath.types(results) as string[];
    return results.map((r, i) => ({
      value: isNode(r) ? r.data : r,
      type: (types[i] ?? '').replace(/^(FHIR|System)\./, ''),
      ...(isNode(r) && r.path !== undefined && { path: r.path }),
    }));
  };
}

/**
 * `where(resolve() is Patient)` needs the referenced resource; a reference's own text says its
 * type, which is what indexing can know at write time.
 */
function withoutResolve(expression: string): string {
  return expression.replace(/\.where\(resolve\(\) is ([A-Za-z]+)\)/g, (_m, type: string) => `.where(reference.matches('(^|/)${type}/[^/]+(/_history/[^/]+)?$'))`);
}

/** Plain-path parts of a union run on the fast walker; the rest on fhirpath.js. */
function compileForIndexing(expression: string, resourceType: string): Evaluator {
  const parts = splitUnion(expression);
  const fast = parts.map((p) => compileSimplePath(p, resourceType));
  if (fast.every(Boolean)) {
    const evaluators = fast as NonNullable<(typeof fast)[number]>[];
    return (resource) => evaluators.flatMap((e) => e(resource as Record<string, unknown>));
  }
  const slow = parts.filter((_, i) => !fast[i]);
  const general = compile(withoutResolve(slow.join(' | ')));
  const quick = fast.filter(Boolean) as NonNullable<(typeof fast)[number]>[];
  return (resource) => [...quick.flatMap((e) => e(resource as Record<string, unknown>)), ...general(resource)];
}

interface CompiledComponent {
  def: SearchParameterDef;
  /** Evaluates the component on one base element. */
  evaluate: (base: Typed, resource: object) => Typed[];
}

interface CompiledParameter {
  def: SearchParameterDef;
  evaluate: Evaluator;
  /** Composite parameters: how to evaluate each component on an element the expression found. */
  components?: CompiledComponent[];
}

const relativeEvaluators = new Map<string, Evaluator>();

/** General-engine evaluation of `expression` relative to an element found at `base.path`. */
function evaluateRelative(base: Typed, expression: string): Typed[] {
  if (base.path === undefined || typeof base.value !== 'object' || base.value === null) return [];
  const key = `${base.path}\u0000${expression}`;
  let evaluator = relativeEvaluators.get(key);
  if (!evaluator) {
    evaluator = compile({ base: base.path, expression });
    relativeEvaluators.set(key, evaluator);
  }
  return evaluator(base.value as object);
}

const PLAIN_PATH = /^[A-Z][A-Za-z]+(\.[a-z][A-Za-z0-9]*)*$/;

function compileComposite(def: SearchParameterDef, resourceType: string): { evaluate: Evaluator; components: CompiledComponent[] } | undefined {
  const parts = def.components.map((c) => ({ def: searchParameterByUrl(resourceType, c.definition), expression: c.expression }));
  if (parts.some((p) => !p.def)) return undefined; // a component this type does not define
  const expression = def.expression!;
  if (PLAIN_PATH.test(expression)) {
    const base = compileSimplePath(expression, resourceType);
    const fast = parts.map((p) => compileRelativePath(p.expression, expression));
    if (base && fast.every(Boolean)) {
      return {
        evaluate: (resource) => base(resource as Record<string, unknown>),
        components: parts.map((p, i) => ({ def: p.def!, evaluate: (b) => fast[i]!(b.value as Record<string, unknown>) })),
      };
    }
  }
  return {
    evaluate: compile(withoutResolve(expression)),
    components: parts.map((p) => ({ def: p.def!, evaluate: (b) => evaluateRelative(b, p.expression) })),
  };
}

const compiledByType = new Map<string, CompiledParameter[]>();

function compiledParameters(resourceType: string): CompiledParameter[] {
  let compiled = compiledByType.get(resourceType);
  if (compiled) return compiled;
  compiled = [];
  for (const def of searchParameters(resourceType).values()) {
    if (!def.expression || BUILT_IN.has(def.code) || def.type === 'special') continue;
    if (def.type === 'composite') {
      const composite = compileComposite(def, resourceType);
      if (composite) compiled.push({ def, ...composite });
    } else {
      compiled.push({ def, evaluate: compileForIndexing(def.expression, resourceType) });
    }
  }
  compiledByType.set(resourceType, compiled);
  return compiled;
}

function compositeEntries(resource: object, parameter: CompiledParameter, bases: Typed[]): IndexEntry[] {
  const entries: IndexEntry[] = [];
  for (const base of bases) {
    const perComponent = parameter.components!.map(({ def, evaluate }) =>
      evaluate(base, resource).flatMap((v) => normalise(def.type, v.value, v.type).values),
    );
    if (perComponent.some((values) => values.length === 0)) continue;
    let combinations: IndexValue[][] = [[]];
    for (const values of perComponent) {
      combinations = combinations.flatMap((prefix) => values.map((v) => [...prefix, v])).slice(0, MAX_COMPOSITE_COMBINATIONS);
    }
    for (const values of combinations) entries.push({ param: parameter.def.code, values: values as IndexEntry['values'] });
  }
  return entries;
}

function sortValue(def: SearchParameterDef, v: IndexValue, end: 'low' | 'high'): string | number | undefined {
  switch (def.type) {
    case 'date':
    case 'number':
    case 'quantity':
      return v.text === 'canonical' ? undefined : v[end];
    case 'reference':
      return v.system ? `${v.system}/${v.value}` : v.value;
    default:
      return v.value;
  }
}

function sortKeyOf(def: SearchParameterDef, values: IndexValue[]): SortKey | undefined {
  let min: string | number | undefined;
  let max: string | number | undefined;
  for (const v of values) {
    const lo = sortValue(def, v, 'low');
    const hi = sortValue(def, v, 'high');
    if (lo !== undefined && (min === undefined || lo < min)) min = lo;
    if (hi !== undefined && (max === undefined || hi > max)) max = hi;
  }
  return min === undefined || max === undefined ? undefined : { min, max };
}

export interface IndexOptions {
  /** This server's base URL: absolute references to it are indexed as relative ones. */
  localBase?: string;
  /** Entries derived by the layers above from the whole resource (e.g. its sharable data type). */
  derived?: (resource: Record<string, unknown> & { resourceType: string }) => IndexEntry[];
}

export function indexResource(resource: Record<string, unknown> & { resourceType: string }, options: IndexOptions = {}): ResourceIndex {
  const entries: IndexEntry[] = [];
  const sortKeys: Record<string, SortKey> = {};
  for (const parameter of compiledParameters(resource.resourceType)) {
    const found = parameter.evaluate(resource);
    if (found.length === 0) continue;
    if (parameter.components) {
      entries.push(...compositeEntries(resource, parameter, found));
      continue;
    }
    const values: IndexValue[] = [];
    for (const item of found) {
      const normalised = normalise(parameter.def.type, item.value, item.type, options.localBase);
      values.push(...normalised.values);
      for (const d of normalised.derived ?? []) {
        entries.push({ param: `${parameter.def.code}:${d.suffix}`, values: d.components as IndexEntry['values'] });
      }
    }
    const seen = new Set<string>();
    for (const v of values) {
      const key = JSON.stringify(v);
      if (seen.has(key)) continue;
      seen.add(key);
      entries.push({ param: parameter.def.code, values: [v] });
    }
    // The element is there but holds nothing searchable (a contained or display-only reference):
    // an empty entry records that it is present, for :missing.
    if (values.length === 0) entries.push({ param: parameter.def.code, values: [{}] });
    const key = sortKeyOf(parameter.def, values);
    if (key) sortKeys[parameter.def.code] = key;
  }
  if (options.derived) entries.push(...options.derived(resource));
  return { entries, sortKeys };
}

/** Where a resource's reference parameter points: `Type/id` pairs (for _include). */
export function referencesOf(resource: Record<string, unknown> & { resourceType: string }, param: string, localBase?: string): { type: string; id: string }[] {
  const parameters = compiledParameters(resource.resourceType).filter((p) => p.def.type === 'reference' && (param === '*' || p.def.code === param));
  const found: { type: string; id: string }[] = [];
  for (const parameter of parameters) {
    for (const item of parameter.evaluate(resource)) {
      for (const v of normalise('reference', item.value, item.type, localBase).values) {
        if (v.system && v.value) found.push({ type: v.system, id: v.value });
      }
    }
  }
  return found;
}
