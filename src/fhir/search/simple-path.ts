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

interface Step {
  name: string;
  /** For choice elements: the allowed type suffixes (capitalised), narrowed by ofType(). */
  choices?: string[];
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

function compileSteps(start: string, names: string[], ofType?: string, filter: Filter | null = null): Compiled | undefined {
  // Resolve every step's type once, at compile time.
  const steps: { step: Step; typeOf: (suffix?: string) => string }[] = [];
  let context = start;
  for (let i = 0; i < names.length; i++) {
    const name = names[i]!;
    const path = `${context}.${name}`;
    const last = i === names.length - 1;
    const choices = model.choiceTypePaths[path];
    if (choices) {
      if (!last) return undefined; // paths through a choice element are left to fhirpath.js
      const allowed = ofType ? choices.filter((c) => isKindOf(fhirTypeOfSuffix(c), ofType)) : choices;
      steps.push({ step: { name, choices: allowed }, typeOf: (suffix) => fhirTypeOfSuffix(suffix!) });
      continue;
    }
    const type = model.path2Type[path];
    if (!type) return undefined;
    if (ofType && last && fhirType(type).toLowerCase() !== ofType.toLowerCase()) return undefined;
    steps.push({ step: { name }, typeOf: () => fhirType(type) });
    context = type === 'BackboneElement' || type === 'Element' ? path : type;
  }
  if (steps.length === 0) return (resource) => [{ value: resource, type: start }];
  return (resource) => {
    let nodes: unknown[] = [resource];
    let types: string[] = [];
    for (const { step, typeOf } of steps) {
      const next: unknown[] = [];
      const nextTypes: string[] = [];
      for (const node of nodes) {
        if (typeof node !== 'object' || node === null) continue;
        const o = node as Record<string, unknown>;
        if (step.choices) {
          for (const suffix of step.choices) {
            const v = o[step.name + suffix];
            if (v === undefined) continue;
            for (const item of Array.isArray(v) ? v : [v]) {
              next.push(item);
              nextTypes.push(typeOf(suffix));
            }
          }
        } else {
          const v = o[step.name];
          if (v === undefined) continue;
          for (const item of Array.isArray(v) ? v : [v]) {
            next.push(item);
            nextTypes.push(typeOf());
          }
        }
      }
      nodes = next;
      types = nextTypes;
    }
    const typed = nodes.map((value, i) => ({ value, type: types[i]! }));
    return filter ? typed.filter((t) => filter(t.value)) : typed;
  };
}

/** A fast evaluator for `expression` on `resourceType`, or undefined when it is not a plain path. */
export function compileSimplePath(expression: string, resourceType: string): Compiled | undefined {
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
