import { createRequire } from 'node:module';

/**
 * A fast evaluator for the FHIRPath expressions that are plain paths (`Patient.name`,
 * `Observation.effective`, `(Observation.value.ofType(Quantity))`): most search parameters.
 * It walks the JSON directly with the R4 model's type information, which is several times
 * faster than the general engine; anything else is left to fhirpath.js.
 */

interface Model {
  path2Type: Record<string, string>;
  choiceTypePaths: Record<string, string[]>;
  type2Parent: Record<string, string>;
}

const model = createRequire(import.meta.url)('fhirpath/fhir-context/r4') as Model;

export interface TypedValue {
  value: unknown;
  /** The FHIR type name: HumanName, dateTime, code, ... */
  type: string;
}

const PRIMITIVES = new Set([
  'boolean', 'integer', 'string', 'decimal', 'uri', 'url', 'canonical', 'base64Binary', 'instant', 'date', 'dateTime',
  'time', 'code', 'oid', 'id', 'markdown', 'unsignedInt', 'positiveInt', 'uuid',
]);

function fhirTypeOfSuffix(suffix: string): string {
  const lower = suffix.charAt(0).toLowerCase() + suffix.slice(1);
  return PRIMITIVES.has(lower) ? lower : suffix;
}

function fhirType(modelType: string): string {
  if (modelType === 'System.String') return 'string';
  if (modelType === 'System.Boolean') return 'boolean';
  if (modelType === 'System.Integer') return 'integer';
  if (modelType === 'System.Decimal') return 'decimal';
  return modelType;
}

const SIMPLE = /^\(?\s*([A-Z][A-Za-z]+)((?:\.[a-z][A-Za-z0-9]*)*)(?:\.ofType\(([A-Za-z]+)\))?\s*\)?(?:\.where\((.+)\))?$/;
/** `(Observation.value.ofType(CodeableConcept)).text`: a path through a choice narrowed to one type. */
const THROUGH_CHOICE = /^\(\s*([A-Z][A-Za-z]+)((?:\.[a-z][A-Za-z0-9]*)+)\.ofType\(([A-Za-z]+)\)\s*\)((?:\.[a-z][A-Za-z0-9]*)+)$/;
const RELATIVE = /^([a-z][A-Za-z0-9]*(?:\.[a-z][A-Za-z0-9]*)*)(?:\.ofType\(([A-Za-z]+)\))?$/;
const RESOLVE_IS = /^resolve\(\) is ([A-Z][A-Za-z]+)$/;
const FIELD_EQUALS = /^([a-z][A-Za-z0-9]*)\s*=\s*'([^'\\]*)'$/;

type Filter = (value: unknown) => boolean;

/** The `where(...)` conditions the fast path understands: a reference's type, and field = 'literal'. */
function compileFilter(condition: string | undefined): Filter | null | undefined {
  if (condition === undefined) return null;
  const resolveIs = RESOLVE_IS.exec(condition.trim());
  if (resolveIs) {
    // The reference's own text says what it points to; that is all indexing can know.
    const pattern = new RegExp(`(^|/)${resolveIs[1]}/[^/]+(/_history/[^/]+)?$`);
    return (v) => typeof v === 'object' && v !== null && typeof (v as { reference?: unknown }).reference === 'string' && pattern.test((v as { reference: string }).reference);
  }
  const equals = FIELD_EQUALS.exec(condition.trim());
  if (equals) {
    const [, field, literal] = equals;
    return (v) => typeof v === 'object' && v !== null && (v as Record<string, unknown>)[field!] === literal;
  }
  return undefined;
}

/** FHIRPath's ofType() also keeps specialisations: canonical is a kind of uri. */
function isKindOf(type: string, wanted: string): boolean {
  for (let t: string | undefined = type; t; t = model.type2Parent[t]) if (t.toLowerCase() === wanted.toLowerCase()) return true;
  return false;
}

type Compiled = (resource: Record<string, unknown>) => TypedValue[];

/** One step of a walk: a property, or for a choice element its allowed `name + suffix` properties. */
interface WalkStep {
  name: string;
  /** Choice elements: the property names to look at, each with the FHIR type it holds. */
  choices?: { property: string; type: string }[];
  /** Not a choice: the FHIR type the property holds. */
  type?: string;
}

/**
 * Resolves every step's type once, at compile time. `ofType` narrows the last name of `names`;
 * `then` continues from there (`(Observation.value.ofType(CodeableConcept)).text`), which needs
 * the narrowed element to have a single complex type.
 */
function resolveSteps(start: string, names: string[], ofType?: string, then: string[] = []): WalkStep[] | undefined {
  const steps: WalkStep[] = [];
  let context = start;
  const all = [...names, ...then];
  for (let i = 0; i < all.length; i++) {
    const name = all[i]!;
    const path = `${context}.${name}`;
    const narrowed = i === names.length - 1 ? ofType : undefined;
    const last = i === all.length - 1;
    const choices = model.choiceTypePaths[path];
    if (choices) {
      const allowed = narrowed ? choices.filter((c) => isKindOf(fhirTypeOfSuffix(c), narrowed)) : choices;
      if (!last) {
        // Only a choice narrowed to one complex type can be walked through.
        if (!narrowed || allowed.length !== 1 || PRIMITIVES.has(fhirTypeOfSuffix(allowed[0]!))) return undefined;
        steps.push({ name: name + allowed[0]!, type: allowed[0]! });
        context = allowed[0]!;
        continue;
      }
      steps.push({ name, choices: allowed.map((suffix) => ({ property: name + suffix, type: fhirTypeOfSuffix(suffix) })) });
      continue;
    }
    const type = model.path2Type[path];
    if (!type) return undefined;
    if (narrowed && fhirType(type).toLowerCase() !== narrowed.toLowerCase()) return undefined;
    steps.push({ name, type: fhirType(type) });
    context = type === 'BackboneElement' || type === 'Element' ? path : type;
  }
  return steps;
}

function compileSteps(start: string, names: string[], ofType?: string, filter: Filter | null = null, then: string[] = []): Compiled | undefined {
  const steps = resolveSteps(start, names, ofType, then);
  if (!steps) return undefined;
  if (steps.length === 0) return (resource) => [{ value: resource, type: start }];
  const inner = steps.slice(0, -1).map((s) => s.name);
  const final = steps[steps.length - 1]!;
  // Runs for every search parameter of every resource written, most of them absent: arrays are
  // made only once something is found.
  return (resource) => {
    // The elements the inner steps reach (undefined: the resource itself); arrays are flattened at each step.
    let nodes: unknown[] | undefined;
    for (const name of inner) {
      let next: unknown[] | undefined;
      if (nodes === undefined) next = stepInto(resource, name, next);
      else for (const node of nodes) next = stepInto(node, name, next);
      if (next === undefined) return [];
      nodes = next;
    }
    let found: TypedValue[] | undefined;
    if (nodes === undefined) found = finalValues(resource, final, found);
    else for (const node of nodes) found = finalValues(node, final, found);
    if (found === undefined) return [];
    return filter ? found.filter((t) => filter(t.value)) : found;
  };
}

/** Adds what `node[name]` holds to `next` (made when there is something to add). */
function stepInto(node: unknown, name: string, next: unknown[] | undefined): unknown[] | undefined {
  if (typeof node !== 'object' || node === null) return next;
  const v = (node as Record<string, unknown>)[name];
  if (v === undefined) return next;
  const out = next ?? [];
  if (Array.isArray(v)) for (const item of v) out.push(item);
  else out.push(v);
  return out;
}

/** Adds the values of the final step found on `node`, each with its FHIR type, to `found` (made when there is something to add). */
function finalValues(node: unknown, final: WalkStep, found: TypedValue[] | undefined): TypedValue[] | undefined {
  if (typeof node !== 'object' || node === null) return found;
  const o = node as Record<string, unknown>;
  if (final.choices) {
    for (const { property, type } of final.choices) found = typedInto(o[property], type, found);
    return found;
  }
  return typedInto(o[final.name], final.type!, found);
}

function typedInto(v: unknown, type: string, found: TypedValue[] | undefined): TypedValue[] | undefined {
  if (v === undefined) return found;
  const out = found ?? [];
  if (Array.isArray(v)) for (const item of v) out.push({ value: item, type });
  else out.push({ value: v, type });
  return out;
}

/** A fast evaluator for `expression` on `resourceType`, or undefined when it is not a plain path. */
export function compileSimplePath(expression: string, resourceType: string): Compiled | undefined {
  const through = THROUGH_CHOICE.exec(expression.trim());
  if (through) {
    const [, root, dotted, ofType, rest] = through;
    if (root !== resourceType) return undefined;
    return compileSteps(root, dotted!.slice(1).split('.'), ofType, null, rest!.slice(1).split('.'));
  }
  const m = SIMPLE.exec(expression.trim());
  if (!m) return undefined;
  const [, root, dotted, ofType, condition] = m;
  if (root !== resourceType && root !== 'Resource' && root !== 'DomainResource') return undefined;
  const filter = compileFilter(condition);
  if (filter === undefined) return undefined;
  const names = dotted ? dotted.slice(1).split('.') : [];
  return compileSteps(root === resourceType ? resourceType : root!, names, ofType, filter);
}

/** The same for an expression relative to an element at `contextPath` (composite components). */
export function compileRelativePath(expression: string, contextPath: string): Compiled | undefined {
  const m = RELATIVE.exec(expression.trim());
  if (!m) return undefined;
  const [, dotted, ofType] = m;
  return compileSteps(contextPath, dotted!.split('.'), ofType);
}
