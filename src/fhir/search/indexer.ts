import { createRequire } from 'node:module';
import fhirpath from 'fhirpath';
import type { IndexEntry, IndexValue, ResourceIndex, SortKey } from '../../store/port.js';
import { ownersOf, PATIENT_OWNERSHIP } from './compartments.js';
import { normalise } from './normalize.js';
import { searchParameterByUrl, searchParameters, splitUnion, unionOf, type SearchParameterDef } from './registry.js';
import { compileRelativePath, compileSimplePath } from './simple-path.js';
import { CANONICAL } from './ucum.js';

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
  /** Fast composites: which part of the base expression's union found the value. */
  part?: number;
}

type Evaluator = (resource: object) => Typed[];

interface ResourceNodeLike {
  data: unknown;
  path?: string;
}

function isNode(x: unknown): x is ResourceNodeLike {
  return typeof x === 'object' && x !== null && 'data' in x && 'path' in x;
}

/** fhirpath.js holds decimals as its own objects ({ value, asStr, ... }); the index wants the JSON number. */
function plain(data: unknown): unknown {
  if (typeof data !== 'object' || data === null || !('asStr' in data)) return data;
  const { value } = data as { value?: unknown };
  return typeof value === 'number' ? value : data;
}

function compile(expression: string | { base: string; expression: string }): Evaluator {
  const fn = fhirpath.compile(expression as never, model, { resolveInternalTypes: false }) as (r: object, env: object) => unknown[];
  return (resource) => {
    // Some definitions refer to %resource (e.g. to the resource's own contained resources).
    const results = fn(resource, { resource, rootResource: resource });
    const types = fhirpath.types(results) as string[];
    return results.map((r, i) => ({
      value: plain(isNode(r) ? r.data : r),
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

const DECEASED = /^([A-Z][A-Za-z]+)\.deceased\.exists\(\) and \1\.deceased != false$/;

/**
 * Patient's `deceased` (`Patient.deceased.exists() and Patient.deceased != false`): the usual
 * shapes answered directly (as fhirpath.js answers them: absent → false, a boolean → itself, a
 * dateTime → true); anything else (primitive extensions, odd values) on fhirpath.js.
 */
function compileDeceased(expression: string): Evaluator {
  const general = compile(expression);
  return (resource) => {
    const r = resource as Record<string, unknown>;
    const b = r.deceasedBoolean;
    const d = r.deceasedDateTime;
    if (r._deceasedBoolean === undefined && r._deceasedDateTime === undefined) {
      if (b === undefined && d === undefined) return [{ value: false, type: 'Boolean' }];
      if (d === undefined && typeof b === 'boolean') return [{ value: b, type: 'Boolean' }];
      if (b === undefined && typeof d === 'string') return [{ value: true, type: 'Boolean' }];
    }
    return general(resource);
  };
}

/** Plain-path parts of a union run on the fast walker; the rest on fhirpath.js. */
function compileForIndexing(expression: string, resourceType: string, useGeneral: boolean): Evaluator {
  if (useGeneral) return compile(withoutResolve(expression));
  if (DECEASED.test(expression)) return compileDeceased(expression);
  const parts = splitUnion(expression);
  const fast = parts.map((p) => compileSimplePath(p, resourceType));
  if (fast.every(Boolean)) {
    const evaluators = fast as NonNullable<(typeof fast)[number]>[];
    if (evaluators.length === 1) return evaluators[0] as Evaluator;
    return (resource) => {
      const found: Typed[] = [];
      for (const evaluate of evaluators) for (const t of evaluate(resource as Record<string, unknown>)) found.push(t);
      return found;
    };
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

/** Structural equality of JSON values (key order aside): what a FHIRPath union dedupes by. */
function sameJson(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (typeof a !== 'object' || typeof b !== 'object' || a === null || b === null) return false;
  if (Array.isArray(a)) {
    if (!Array.isArray(b) || a.length !== b.length) return false;
    for (let i = 0; i < a.length; i++) if (!sameJson(a[i], b[i])) return false;
    return true;
  }
  if (Array.isArray(b)) return false;
  const ka = Object.keys(a);
  if (ka.length !== Object.keys(b).length) return false;
  for (const k of ka) if (!Object.hasOwn(b, k) || !sameJson((a as Record<string, unknown>)[k], (b as Record<string, unknown>)[k])) return false;
  return true;
}

/** A union's result: duplicates removed, first occurrence kept, as FHIRPath's `|` does. */
function distinct<T extends { value: unknown }>(items: T[]): T[] {
  if (items.length < 2) return items;
  const kept: T[] = [];
  for (const item of items) if (!kept.some((k) => sameJson(k.value, item.value))) kept.push(item);
  return kept;
}

type Walker = NonNullable<ReturnType<typeof compileRelativePath>>;

/**
 * Composites whose base is a union of plain paths (`Observation | Observation.component`) and
 * whose components are unions of relative plain paths (`value.ofType(Quantity) | value.ofType(Range)`)
 * run on the fast walker; undefined when some part is not of that shape.
 */
function compileFastComposite(
  expression: string,
  parts: { def: SearchParameterDef; expression: string }[],
  resourceType: string,
): { evaluate: Evaluator; components: CompiledComponent[] } | undefined {
  const baseParts = splitUnion(expression);
  if (!baseParts.every((p) => PLAIN_PATH.test(p) && (p === resourceType || p.startsWith(`${resourceType}.`)))) return undefined;
  const bases = baseParts.map((p) => compileSimplePath(p, resourceType));
  if (!bases.every(Boolean)) return undefined;
  // For each base part, for each component, the walkers of the component's union parts.
  const walkers: Walker[][][] = [];
  for (const base of baseParts) {
    const perComponent: Walker[][] = [];
    for (const component of parts) {
      const union = splitUnion(component.expression).map((e) => compileRelativePath(e, base));
      if (!union.every(Boolean)) return undefined;
      perComponent.push(union as Walker[]);
    }
    walkers.push(perComponent);
  }
  const baseWalkers = bases as Walker[];
  const evaluate: Evaluator =
    baseWalkers.length === 1
      ? (resource) => baseWalkers[0]!(resource as Record<string, unknown>)
      : (resource) => {
          const found: Typed[] = [];
          baseWalkers.forEach((walk, part) => {
            for (const t of walk(resource as Record<string, unknown>)) found.push({ value: t.value, type: t.type, part });
          });
          return distinct(found);
        };
  return {
    evaluate,
    components: parts.map((p, c) => ({
      def: p.def!,
      evaluate: (b) => {
        const union = walkers[b.part ?? 0]![c]!;
        const value = b.value as Record<string, unknown>;
        return union.length === 1 ? union[0]!(value) : distinct(union.flatMap((walk) => walk(value)));
      },
    })),
  };
}

function compileComposite(def: SearchParameterDef, resourceType: string, general: boolean): { evaluate: Evaluator; components: CompiledComponent[] } | undefined {
  const parts = def.components.map((c) => ({ def: searchParameterByUrl(resourceType, c.definition), expression: c.expression }));
  if (parts.some((p) => !p.def)) return undefined; // a component this type does not define
  const expression = def.expression!;
  if (!general) {
    const fast = compileFastComposite(expression, parts as { def: SearchParameterDef; expression: string }[], resourceType);
    if (fast) return fast;
  }
  return {
    evaluate: compile(withoutResolve(expression)),
    components: parts.map((p) => ({ def: p.def!, evaluate: (b) => evaluateRelative(b, p.expression) })),
  };
}

const compiledByType = new Map<string, CompiledParameter[]>();
const compiledGeneralByType = new Map<string, CompiledParameter[]>();
/** Per type: the parameters indexed as others taken together, with those others (for sort keys). */
const unionsByType = new Map<string, { code: string; parts: readonly string[] }[]>();

function unionsOf(resourceType: string): { code: string; parts: readonly string[] }[] {
  let unions = unionsByType.get(resourceType);
  if (!unions) {
    unions = [];
    for (const def of searchParameters(resourceType).values()) {
      const parts = unionOf(resourceType, def.code);
      if (parts && def.type !== 'composite') unions.push({ code: def.code, parts });
    }
    unionsByType.set(resourceType, unions);
  }
  return unions;
}

function compiledParameters(resourceType: string, general = false): CompiledParameter[] {
  const cache = general ? compiledGeneralByType : compiledByType;
  let compiled = cache.get(resourceType);
  if (compiled) return compiled;
  compiled = [];
  for (const def of searchParameters(resourceType).values()) {
    if (!def.expression || BUILT_IN.has(def.code) || def.type === 'special') continue;
    // Its entries would repeat those of the parameters it is a union of (see unionOf).
    if (unionOf(resourceType, def.code)) continue;
    if (def.type === 'composite') {
      const composite = compileComposite(def, resourceType, general);
      if (composite) compiled.push({ def, ...composite });
    } else {
      compiled.push({ def, evaluate: compileForIndexing(def.expression, resourceType, general) });
    }
  }
  cache.set(resourceType, compiled);
  return compiled;
}

function compositeEntries(resource: object, parameter: CompiledParameter, bases: Typed[], entries: IndexEntry[]): void {
  const components = parameter.components!;
  for (const base of bases) {
    // Every component is found before any is normalised: most composites of a resource lack one
    // (an Observation's code-value-date, -string, -concept beside its valueQuantity).
    const found: Typed[][] = [];
    for (const { evaluate } of components) {
      const typed = evaluate(base, resource);
      if (typed.length === 0) break;
      found.push(typed);
    }
    if (found.length < components.length) continue;
    const perComponent: IndexValue[][] = [];
    for (let c = 0; c < found.length; c++) {
      const values: IndexValue[] = [];
      for (const v of found[c]!) for (const n of normalise(components[c]!.def.type, v.value, v.type).values) values.push(n);
      if (values.length === 0) break;
      perComponent.push(values);
    }
    if (perComponent.length < components.length) continue;
    let combinations: IndexValue[][] = [[]];
    for (const values of perComponent) {
      const next: IndexValue[][] = [];
      outer: for (const prefix of combinations) {
        for (const v of values) {
          if (next.length === MAX_COMPOSITE_COMBINATIONS) break outer;
          next.push([...prefix, v]);
        }
      }
      combinations = next;
    }
    for (const values of combinations) entries.push({ param: parameter.def.code, values: values as IndexEntry['values'] });
  }
}

function sortValue(def: SearchParameterDef, v: IndexValue, end: 'low' | 'high'): string | number | undefined {
  switch (def.type) {
    case 'date':
    case 'number':
    case 'quantity':
      return v.text === CANONICAL ? undefined : v[end];
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

/** Index values are flat: equal fields, equal values (null and absent differ; JSON would say the same). */
function sameValue(a: IndexValue, b: IndexValue): boolean {
  return a.system === b.system && a.value === b.value && a.text === b.text && sameNumber(a.low, b.low) && sameNumber(a.high, b.high);
}

/** Numbers as JSON compares them: NaN and the infinities all serialise as null. */
function sameNumber(a: number | undefined, b: number | undefined): boolean {
  if (a === b) return true;
  if (a === undefined || b === undefined) return false;
  return !Number.isFinite(a) && !Number.isFinite(b);
}

/** The values without repeats, first occurrence kept. */
function distinctValues(values: IndexValue[]): IndexValue[] {
  if (values.length < 2) return values;
  if (values.length > 16) {
    // Many values (an AuditEvent's entities): keyed, not compared pairwise.
    const seen = new Set<string>();
    return values.filter((v) => {
      const key = JSON.stringify(v);
      if (seen.has(key)) return false;
      seen.add(key);
      return true;
    });
  }
  const kept: IndexValue[] = [];
  for (const v of values) {
    let repeated = false;
    for (const k of kept) {
      if (sameValue(k, v)) {
        repeated = true;
        break;
      }
    }
    if (!repeated) kept.push(v);
  }
  return kept;
}

export interface IndexOptions {
  /** This server's base URL: absolute references to it are indexed as relative ones. */
  localBase?: string;
  /** Entries derived by the layers above from the whole resource (e.g. its sharable data type). */
  derived?: (resource: Record<string, unknown> & { resourceType: string }) => IndexEntry[];
  /** Evaluate every expression with fhirpath.js, without the fast walker (tests compare the two). */
  general?: boolean;
}

function distinctEntries(entries: IndexEntry[]): IndexEntry[] {
  if (entries.length < 2) return entries;
  const seen = new Set<string>();
  return entries.filter((entry) => {
    const key = `${entry.param}\u0000${JSON.stringify(entry.values)}`;
    if (seen.has(key)) return false;
    seen.add(key);
    return true;
  });
}

export function indexResource(resource: Record<string, unknown> & { resourceType: string }, options: IndexOptions = {}): ResourceIndex {
  const entries: IndexEntry[] = [];
  const sortKeys: Record<string, SortKey> = {};
  for (const parameter of compiledParameters(resource.resourceType, options.general)) {
    const found = parameter.evaluate(resource);
    if (found.length === 0) continue;
    if (parameter.components) {
      compositeEntries(resource, parameter, found, entries);
      continue;
    }
    const code = parameter.def.code;
    let values: IndexValue[] = [];
    let derived: IndexEntry[] | undefined;
    for (const item of found) {
      const normalised = normalise(parameter.def.type, item.value, item.type, options.localBase);
      if (values.length === 0) values = normalised.values;
      else for (const v of normalised.values) values.push(v);
      if (normalised.derived) for (const d of normalised.derived) (derived ??= []).push({ param: `${code}:${d.suffix}`, values: d.components as IndexEntry['values'] });
    }
    // Several codings often share one display: one `:text` entry finds the resource as well as three.
    if (derived) for (const entry of distinctEntries(derived)) entries.push(entry);
    for (const v of distinctValues(values)) entries.push({ param: code, values: [v] });
    // The element is there but holds nothing searchable (a contained or display-only reference):
    // an empty entry records that it is present, for :missing (which also counts derived entries:
    // a reference by identifier only is present through its `:identifier` entry).
    if (values.length === 0 && !derived) entries.push({ param: parameter.def.code, values: [{}] });
    const key = sortKeyOf(parameter.def, values);
    if (key) sortKeys[parameter.def.code] = key;
  }
  // A union's values are its parts' values together: its sort key spans theirs.
  for (const { code, parts } of unionsOf(resource.resourceType)) {
    let key: SortKey | undefined;
    for (const part of parts) {
      const k = sortKeys[part];
      if (!k) continue;
      key = key ? { min: k.min < key.min ? k.min : key.min, max: k.max > key.max ? k.max : key.max } : { ...k };
    }
    if (key) sortKeys[code] = key;
  }
  if (options.derived) entries.push(...options.derived(resource));
  const patients = ownersOf(PATIENT_OWNERSHIP, resource.resourceType, typeof resource.id === 'string' ? resource.id : undefined, (param) => referencesIn(entries, param));
  return { entries, sortKeys, patients };
}

/** The `Type/id` targets of a reference parameter's entries (as referencesOf finds them in the resource). */
function referencesIn(entries: IndexEntry[], param: string): { type: string; id: string }[] {
  const found: { type: string; id: string }[] = [];
  for (const entry of entries) {
    const v = entry.values[0];
    if (entry.param === param && v.system && v.value) found.push({ type: v.system, id: v.value });
  }
  return found;
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
