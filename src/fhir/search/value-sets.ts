import { FhirError } from '../outcome.js';
import { ConceptIndex, type CodeFilter } from './code-system-filters.js';

/**
 * The codes of a ValueSet stored on this server, for :in and :not-in. Its expansion when it
 * holds a whole one; otherwise its compose, evaluated here: includes (codes listed, a system
 * whole, other ValueSets, intersected within one include as the specification says) less
 * excludes, and filters on a CodeSystem stored with all its concepts (code-system-filters.ts).
 * What cannot be evaluated here (a filter on a system whose concepts are not all stored, codes
 * left out of a system whose codes this server cannot list) is a 400 naming the ValueSet, never a
 * wider or narrower set of codes.
 * Versions (of an include's system, of a ValueSet a canonical does not pin) are not told apart.
 */

/** Codes by system, and the systems included whole. */
export interface ValueSetCodes {
  codes: Map<string, Set<string>>;
  /** Systems included whole whose codes are not listed here (their CodeSystem is not stored with all its concepts). */
  wholeSystems: Set<string>;
}

type Json = Record<string, unknown>;

/** Where definitions are read from: the current resources stored on this server. */
export interface TerminologySource {
  valueSetById(id: string): Promise<Json | undefined>;
  valueSetByUrl(url: string, version: string | undefined): Promise<Json | undefined>;
  codeSystemByUrl(url: string): Promise<Json | undefined>;
}

/** ValueSets including ValueSets including …: deeper than this is refused rather than followed. */
const MAX_NESTING = 16;

const empty = (): ValueSetCodes => ({ codes: new Map(), wholeSystems: new Set() });
const array = (value: unknown): Json[] => (Array.isArray(value) ? (value as Json[]) : []);
const text = (value: unknown): string | undefined => (typeof value === 'string' && value !== '' ? value : undefined);

function addCode(set: ValueSetCodes, system: string, code: string): void {
  const codes = set.codes.get(system);
  if (codes) codes.add(code);
  else set.codes.set(system, new Set([code]));
}

function union(a: ValueSetCodes, b: ValueSetCodes): ValueSetCodes {
  const result = empty();
  for (const system of [...a.wholeSystems, ...b.wholeSystems]) result.wholeSystems.add(system);
  for (const set of [a, b]) {
    for (const [system, codes] of set.codes) if (!result.wholeSystems.has(system)) for (const code of codes) addCode(result, system, code);
  }
  return result;
}

function intersection(a: ValueSetCodes, b: ValueSetCodes): ValueSetCodes {
  const result = empty();
  for (const system of a.wholeSystems) if (b.wholeSystems.has(system)) result.wholeSystems.add(system);
  const within = (codes: Set<string>, system: string, other: ValueSetCodes) => {
    for (const code of codes) if (other.wholeSystems.has(system) || other.codes.get(system)?.has(code)) addCode(result, system, code);
  };
  for (const [system, codes] of a.codes) within(codes, system, b);
  // Codes of b within a system a has whole (those a lists were taken above).
  for (const [system, codes] of b.codes) if (a.wholeSystems.has(system)) within(codes, system, a);
  return result;
}

/** The codes a ValueSet's expansion holds, when it holds all of them (not one page of them). */
function expansionCodes(valueSet: Json): ValueSetCodes | undefined {
  const expansion = valueSet.expansion as Json | undefined;
  if (!expansion) return undefined;
  const result = empty();
  let count = 0;
  const walk = (contains: Json[]) => {
    for (const c of contains) {
      const system = text(c.system);
      const code = text(c.code);
      if (system && code) {
        addCode(result, system, code);
        count++;
      }
      walk(array(c.contains));
    }
  };
  walk(array(expansion.contains));
  const total = typeof expansion.total === 'number' ? expansion.total : undefined;
  const offset = typeof expansion.offset === 'number' ? expansion.offset : 0;
  if (count === 0 && total !== 0) return undefined;
  if (offset > 0 || (total !== undefined && total > count)) return undefined;
  return result;
}

function allConcepts(concepts: Json[], into: Set<string>): Set<string> {
  for (const concept of concepts) {
    const code = text(concept.code);
    if (code) into.add(code);
    allConcepts(array(concept.concept), into);
  }
  return into;
}

const notSupported = (diagnostics: string) => FhirError.of(400, 'not-supported', diagnostics);

/** Expands the ValueSets one search names; each is read and expanded once per search. */
export class ValueSetExpander {
  private readonly byCanonical = new Map<string, Promise<ValueSetCodes>>();
  private readonly systems = new Map<string, Promise<ValueSetCodes>>();
  private readonly conceptIndexes = new Map<string, Promise<ConceptIndex | undefined>>();

  constructor(
    private readonly source: TerminologySource,
    private readonly baseUrl: string,
  ) {}

  /**
   * The codes of the ValueSet `reference` names: `ValueSet/{id}` (or that on this server's base),
   * or a canonical URL (`|version` optional). Undefined when no such ValueSet is stored.
   */
  async codesOf(reference: string): Promise<ValueSetCodes | undefined> {
    const local = reference.startsWith(`${this.baseUrl}/`) ? reference.slice(this.baseUrl.length + 1) : reference;
    const literal = /^ValueSet\/([A-Za-z0-9\-.]{1,64})$/.exec(local);
    if (literal && local === reference) {
      const valueSet = await this.source.valueSetById(literal[1]!);
      return valueSet && this.expand(valueSet, reference, []);
    }
    if (!this.byCanonical.has(reference)) {
      const [url = '', version] = reference.split('|');
      const valueSet = await this.source.valueSetByUrl(url, version);
      // A URL on this server's base that is no ValueSet's canonical is a reference by id.
      const found = valueSet ?? (literal ? await this.source.valueSetById(literal[1]!) : undefined);
      if (!found) return undefined;
      if (!this.byCanonical.has(reference)) this.byCanonical.set(reference, this.expand(found, reference, []));
    }
    return this.byCanonical.get(reference);
  }

  private async expand(valueSet: Json, label: string, path: string[]): Promise<ValueSetCodes> {
    // An expansion is what its publisher says the ValueSet holds; preferred whenever it is whole.
    const expanded = expansionCodes(valueSet);
    if (expanded) return expanded;
    const compose = valueSet.compose as Json | undefined;
    if (!compose) throw notSupported(`ValueSet '${label}' has neither a compose nor a whole expansion to take its codes from`);
    let result = empty();
    for (const include of array(compose.include)) result = union(result, await this.selection(include, label, path));
    for (const exclude of array(compose.exclude)) result = this.without(result, await this.selection(exclude, label, path), label);
    return result;
  }

  /** What one include (or exclude) selects: its system's codes, and its ValueSets', all at once. */
  private async selection(part: Json, label: string, path: string[]): Promise<ValueSetCodes> {
    const system = text(part.system);
    const filters = array(part.filter);
    if (filters.length && !system) throw FhirError.of(400, 'invalid', `ValueSet '${label}' filters codes without naming their system`);
    const selected: ValueSetCodes[] = [];
    if (system) {
      const concepts = array(part.concept);
      if (filters.length) {
        selected.push(await this.filtered(system, filters, label));
      } else if (concepts.length) {
        const listed = empty();
        for (const concept of concepts) if (text(concept.code)) addCode(listed, system, text(concept.code)!);
        selected.push(listed);
      } else {
        selected.push(await this.wholeSystem(system));
      }
    }
    for (const canonical of Array.isArray(part.valueSet) ? (part.valueSet as unknown[]) : []) {
      if (typeof canonical === 'string') selected.push(await this.included(canonical, label, path));
    }
    return selected.length ? selected.reduce(intersection) : empty();
  }

  /** A ValueSet another includes, by canonical, guarded against cycles. */
  private async included(canonical: string, label: string, path: string[]): Promise<ValueSetCodes> {
    const chain = [...path, label];
    if (chain.includes(canonical)) throw FhirError.of(400, 'invalid', `ValueSet '${canonical}' includes itself (${[...chain, canonical].join(' > ')})`);
    if (chain.length > MAX_NESTING) throw FhirError.of(400, 'too-costly', `ValueSet '${chain[0]}' includes ValueSets more than ${MAX_NESTING} levels deep`);
    let codes = this.byCanonical.get(canonical);
    if (!codes) {
      const [url = '', version] = canonical.split('|');
      const valueSet = await this.source.valueSetByUrl(url, version);
      if (!valueSet) throw FhirError.of(400, 'not-found', `ValueSet '${label}' includes ValueSet '${canonical}', which is not stored on this server`);
      codes = this.expand(valueSet, canonical, chain);
      this.byCanonical.set(canonical, codes);
    }
    return codes;
  }

  /** The codes of `system` the filters select, all of them together; its CodeSystem must be stored with all its concepts. */
  private async filtered(system: string, filters: Json[], label: string): Promise<ValueSetCodes> {
    let index = this.conceptIndexes.get(system);
    if (!index) {
      index = this.source.codeSystemByUrl(system).then((codeSystem) => (codeSystem?.content === 'complete' ? new ConceptIndex(codeSystem) : undefined));
      this.conceptIndexes.set(system, index);
    }
    const concepts = await index;
    if (!concepts) {
      throw notSupported(`ValueSet '${label}' selects codes of ${system} by a filter, and this server does not hold that CodeSystem with all its concepts; store it so, or the ValueSet with its expansion`);
    }
    const parsed = filters.map((filter): CodeFilter => {
      const [property, op, value] = [text(filter.property), text(filter.op), typeof filter.value === 'string' ? filter.value : undefined];
      if (!property || !op || value === undefined) throw FhirError.of(400, 'invalid', `ValueSet '${label}' has a filter without its property, op or value`);
      return { property, op, value };
    });
    const result = empty();
    result.codes.set(system, concepts.select(parsed, label));
    return result;
  }

  /** A whole system: its codes when its CodeSystem is stored with all of them, otherwise the system itself. */
  private wholeSystem(system: string): Promise<ValueSetCodes> {
    let codes = this.systems.get(system);
    if (!codes) {
      codes = this.source.codeSystemByUrl(system).then((codeSystem) => {
        const result = empty();
        if (codeSystem?.content === 'complete') result.codes.set(system, allConcepts(array(codeSystem.concept), new Set()));
        else result.wholeSystems.add(system);
        return result;
      });
      this.systems.set(system, codes);
    }
    return codes;
  }

  private without(from: ValueSetCodes, excluded: ValueSetCodes, label: string): ValueSetCodes {
    const result = empty();
    for (const system of from.wholeSystems) {
      if (excluded.wholeSystems.has(system)) continue;
      if (excluded.codes.has(system)) {
        throw notSupported(`ValueSet '${label}' leaves out some codes of ${system}, whose codes this server cannot list; store its CodeSystem with all its concepts, or the ValueSet with its expansion`);
      }
      result.wholeSystems.add(system);
    }
    for (const [system, codes] of from.codes) {
      if (excluded.wholeSystems.has(system)) continue;
      const left = excluded.codes.get(system);
      for (const code of codes) if (!left?.has(code)) addCode(result, system, code);
    }
    return result;
  }
}
