import { FhirError } from '../outcome.js';

/**
 * ValueSet.compose.include.filter evaluated on a CodeSystem stored with all its concepts: the
 * codes each filter selects, all filters of one include together (they are ANDed). The
 * hierarchy is the concepts' nesting and any `parent` / `child` concept properties. Operators:
 * = is-a descendent-of is-not-a generalizes regex in not-in exists (FHIR R4 filter-operator).
 */

type Json = Record<string, unknown>;

export interface CodeFilter {
  property: string;
  op: string;
  value: string;
}

interface Concept {
  code: string;
  display?: string;
  /** Concept property values as text, by property code. */
  properties: Map<string, string[]>;
}

/** A CodeSystem's concepts, read once for all the filters that look at it. */
export class ConceptIndex {
  private readonly concepts = new Map<string, Concept>();
  private readonly children = new Map<string, Set<string>>();
  private readonly parents = new Map<string, Set<string>>();

  constructor(codeSystem: Json) {
    this.add(array(codeSystem.concept), undefined);
    // A hierarchy may also be told by properties rather than by nesting.
    for (const concept of this.concepts.values()) {
      for (const parent of concept.properties.get('parent') ?? []) this.link(parent, concept.code);
      for (const child of concept.properties.get('child') ?? []) this.link(concept.code, child);
    }
  }

  /** The codes all `filters` select (`label` names the ValueSet in errors). */
  select(filters: CodeFilter[], label: string): Set<string> {
    let selected: Set<string> | undefined;
    for (const filter of filters) {
      const codes = this.one(filter, label);
      selected = selected ? new Set([...selected].filter((code) => codes.has(code))) : codes;
    }
    return selected ?? new Set();
  }

  private one({ property, op, value }: CodeFilter, label: string): Set<string> {
    switch (op) {
      case 'is-a':
        return this.concepts.has(value) ? new Set([value, ...this.below(value)]) : new Set();
      case 'descendent-of':
        return this.below(value);
      case 'is-not-a': {
        const excluded = this.concepts.has(value) ? new Set([value, ...this.below(value)]) : new Set<string>();
        return this.where((concept) => !excluded.has(concept.code));
      }
      case 'generalizes':
        return this.concepts.has(value) ? new Set([value, ...this.above(value)]) : new Set();
      case '=':
        return this.where((concept) => this.valuesOf(concept, property).includes(value));
      case 'in': {
        const wanted = new Set(value.split(',').map((v) => v.trim()));
        return this.where((concept) => this.valuesOf(concept, property).some((v) => wanted.has(v)));
      }
      case 'not-in': {
        const unwanted = new Set(value.split(',').map((v) => v.trim()));
        return this.where((concept) => !this.valuesOf(concept, property).some((v) => unwanted.has(v)));
      }
      case 'regex': {
        const pattern = regexOf(value, label);
        return this.where((concept) => this.valuesOf(concept, property).some((v) => pattern.test(v)));
      }
      case 'exists': {
        if (value !== 'true' && value !== 'false') throw FhirError.of(400, 'invalid', `ValueSet '${label}': the exists filter on '${property}' takes true or false`);
        return this.where((concept) => (this.valuesOf(concept, property).length > 0) === (value === 'true'));
      }
      default:
        throw FhirError.of(400, 'not-supported', `ValueSet '${label}' filters by '${op}', which this server cannot evaluate; store it with its expansion`);
    }
  }

  private add(concepts: Json[], parent: string | undefined): void {
    for (const raw of concepts) {
      const code = text(raw.code);
      if (!code) continue;
      if (!this.concepts.has(code)) this.concepts.set(code, { code, ...(text(raw.display) && { display: text(raw.display)! }), properties: propertiesOf(raw) });
      if (parent !== undefined) this.link(parent, code);
      this.add(array(raw.concept), code);
    }
  }

  private link(parent: string, child: string): void {
    (this.children.get(parent) ?? this.children.set(parent, new Set()).get(parent)!).add(child);
    (this.parents.get(child) ?? this.parents.set(child, new Set()).get(child)!).add(parent);
  }

  /** Every code under `code`, however deep (a cycle in bad data ends where it repeats). */
  private below(code: string): Set<string> {
    return this.reach(code, this.children);
  }

  private above(code: string): Set<string> {
    return this.reach(code, this.parents);
  }

  private reach(code: string, edges: Map<string, Set<string>>): Set<string> {
    const found = new Set<string>();
    const queue = [...(edges.get(code) ?? [])];
    while (queue.length > 0) {
      const next = queue.pop()!;
      if (found.has(next) || next === code) continue;
      found.add(next);
      queue.push(...(edges.get(next) ?? []));
    }
    return found;
  }

  private where(test: (concept: Concept) => boolean): Set<string> {
    const codes = new Set<string>();
    for (const concept of this.concepts.values()) if (test(concept)) codes.add(concept.code);
    return codes;
  }

  /** What a filter's property names on a concept: its code, its display, or a property's values. */
  private valuesOf(concept: Concept, property: string): string[] {
    if (property === 'code' || property === 'concept') return [concept.code];
    if (property === 'display') return concept.display === undefined ? [] : [concept.display];
    return concept.properties.get(property) ?? [];
  }
}

/** The longest regex filter accepted: it runs against every concept of the system. */
const MAX_REGEX_LENGTH = 200;

/** A quantified group that holds a quantifier, as in (a+)+: the classic catastrophic backtracking. */
const NESTED_QUANTIFIER = /\([^()]*[+*}][^()]*\)[+*{]/;

function regexOf(value: string, label: string): RegExp {
  if (value.length > MAX_REGEX_LENGTH) throw FhirError.of(400, 'too-costly', `ValueSet '${label}': a regex filter may be at most ${MAX_REGEX_LENGTH} characters`);
  // It runs on the request thread: a pattern that can backtrack without end would stall every request.
  if (NESTED_QUANTIFIER.test(value)) throw FhirError.of(400, 'too-costly', `ValueSet '${label}': a regex filter may not repeat a group that repeats itself, such as (a+)+`);
  try {
    // The whole value matches, as in XML Schema patterns (which FHIR's regex filter follows).
    return new RegExp(`^(?:${value})$`, 'u');
  } catch {
    throw FhirError.of(400, 'invalid', `ValueSet '${label}': '${value.slice(0, 64)}' is not a regular expression`);
  }
}

function propertiesOf(concept: Json): Map<string, string[]> {
  const properties = new Map<string, string[]>();
  for (const property of array(concept.property)) {
    const code = text(property.code);
    if (!code) continue;
    const value = propertyValue(property);
    if (value === undefined) continue;
    (properties.get(code) ?? properties.set(code, []).get(code)!).push(value);
  }
  return properties;
}

function propertyValue(property: Json): string | undefined {
  for (const key of ['valueCode', 'valueString', 'valueDateTime']) if (typeof property[key] === 'string') return property[key] as string;
  for (const key of ['valueInteger', 'valueBoolean', 'valueDecimal']) if (property[key] !== undefined) return String(property[key]);
  const coding = property.valueCoding as Json | undefined;
  return text(coding?.code);
}

const array = (value: unknown): Json[] => (Array.isArray(value) ? (value as Json[]) : []);
const text = (value: unknown): string | undefined => (typeof value === 'string' && value !== '' ? value : undefined);
