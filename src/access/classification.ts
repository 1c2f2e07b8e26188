import { readFileSync } from 'node:fs';

/**
 * Which of eHealth's eleven sharable data types a resource belongs to. The mapping is data,
 * kept in profiles/sharable-types.json for the privacy officer to review; this module loads it
 * once, refuses an inconsistent table, and applies it:
 *
 *  1. the table's rules, in file order, first match wins. Within one resource type they run from
 *     most to least specific (checked at load): coded rules on the resource's own code/type
 *     element, text rules on it, coded rules on category, text rules on category;
 *  2. else the resource type's default: a sharable type, or out of scope with a stated reason;
 *  3. else the resource type is outside the sharable scope (`outOfScopeReason`).
 *
 * The answer depends on the resource alone, never throws, and is the same every time.
 */

export const SHARABLE_TYPE_CODES = [
  'demographics',
  'allergies',
  'diagnosis-procedure-medication',
  'encounters',
  'clinical-notes',
  'birth-immunisation',
  'lab-radiology',
  'other-investigations',
  'referrals',
  'medical-certificates',
  'observations-lifestyle',
] as const;
export type SharableTypeCode = (typeof SHARABLE_TYPE_CODES)[number];

export type Classification = { type: SharableTypeCode; rule?: string } | { type: undefined; reason: string };

/** The elements a rule may read; each is a CodeableConcept or a list of them. */
const ELEMENTS = ['code', 'type', 'category'] as const;
type Element = (typeof ELEMENTS)[number];

export interface SharableType {
  code: SharableTypeCode;
  number: number;
  display: string;
}

interface Rule {
  id: string;
  resourceTypes: string[];
  element: Element;
  codings?: string[];
  text?: string[];
  type: SharableTypeCode;
  note?: string;
}

type Default = { type: SharableTypeCode; note?: string } | { outOfScope: string; note?: string };

interface Table {
  types: SharableType[];
  rules: Rule[];
  defaults: Record<string, Default>;
  outOfScopeReason: string;
}

interface CompiledRule {
  id: string;
  element: Element;
  codings: ReadonlySet<string>;
  text: readonly string[];
  type: SharableTypeCode;
}

/** What resources of one type can be classified as, whatever their content. */
export interface PossibleTypes {
  types: ReadonlySet<SharableTypeCode>;
  /** Some resources of this type may fall outside the sharable scope. */
  outOfScope: boolean;
}

export interface Classifier {
  readonly types: readonly SharableType[];
  classify(resource: unknown): Classification;
  possibleTypes(resourceType: string): PossibleTypes;
}

class TableError extends Error {
  constructor(message: string) {
    super(`profiles/sharable-types.json: ${message}`);
  }
}

const isRecord = (value: unknown): value is Record<string, unknown> => typeof value === 'object' && value !== null && !Array.isArray(value);
const isStringList = (value: unknown): value is string[] => Array.isArray(value) && value.every((item) => typeof item === 'string' && item.length > 0);

/** Lower is more specific; rules of one resource type must not go back to a lower rank. */
const rank = (rule: Rule) => (rule.element === 'category' ? 2 : 0) + (rule.codings ? 0 : 1);

function validate(raw: unknown): Table {
  if (!isRecord(raw)) throw new TableError('not a JSON object');
  const { types, rules, defaults, outOfScopeReason } = raw;
  if (!Array.isArray(types)) throw new TableError('"types" must be a list');
  const known = new Set<string>(SHARABLE_TYPE_CODES);
  const seen = new Set<string>();
  for (const type of types) {
    if (!isRecord(type) || typeof type.code !== 'string' || typeof type.display !== 'string' || typeof type.number !== 'number') {
      throw new TableError(`every type needs code, number and display: ${JSON.stringify(type)}`);
    }
    if (!known.has(type.code)) throw new TableError(`unknown sharable type "${type.code}"`);
    if (seen.has(type.code)) throw new TableError(`sharable type "${type.code}" is listed twice`);
    seen.add(type.code);
  }
  const missing = SHARABLE_TYPE_CODES.filter((code) => !seen.has(code));
  if (missing.length > 0) throw new TableError(`sharable types missing: ${missing.join(', ')}`);

  const checkType = (type: unknown, where: string) => {
    if (typeof type !== 'string' || !seen.has(type)) throw new TableError(`${where}: unknown sharable type ${JSON.stringify(type)}`);
  };

  if (!Array.isArray(rules)) throw new TableError('"rules" must be a list');
  const ids = new Set<string>();
  const lastRank = new Map<string, { rank: number; id: string }>();
  for (const rule of rules) {
    if (!isRecord(rule) || typeof rule.id !== 'string') throw new TableError(`every rule needs an id: ${JSON.stringify(rule)}`);
    const where = `rule "${rule.id}"`;
    if (ids.has(rule.id)) throw new TableError(`${where} is listed twice`);
    ids.add(rule.id);
    checkType(rule.type, where);
    if (!isStringList(rule.resourceTypes) || rule.resourceTypes.length === 0) throw new TableError(`${where}: "resourceTypes" must be a non-empty list`);
    if (!ELEMENTS.includes(rule.element as Element)) throw new TableError(`${where}: "element" must be one of ${ELEMENTS.join(', ')}`);
    const hasCodings = rule.codings !== undefined;
    const hasText = rule.text !== undefined;
    if (hasCodings === hasText) throw new TableError(`${where}: give either "codings" or "text"`);
    if (hasCodings) {
      if (!isStringList(rule.codings) || rule.codings.length === 0) throw new TableError(`${where}: "codings" must be a non-empty list`);
      for (const coding of rule.codings) {
        const bar = coding.lastIndexOf('|');
        if (bar <= 0 || bar === coding.length - 1) throw new TableError(`${where}: coding "${coding}" is not "system|code"`);
      }
    }
    if (hasText && (!isStringList(rule.text) || rule.text.length === 0)) throw new TableError(`${where}: "text" must be a non-empty list`);
    for (const resourceType of rule.resourceTypes) {
      const r = rank(rule as unknown as Rule);
      const before = lastRank.get(resourceType);
      if (before && before.rank > r) {
        throw new TableError(`${where} is more specific than rule "${before.id}" for ${resourceType}, so it must come first`);
      }
      lastRank.set(resourceType, { rank: r, id: rule.id });
    }
  }

  if (!isRecord(defaults)) throw new TableError('"defaults" must be an object');
  for (const [resourceType, entry] of Object.entries(defaults)) {
    const where = `default for ${resourceType}`;
    if (!isRecord(entry)) throw new TableError(`${where} must be an object`);
    if ((entry.type === undefined) === (entry.outOfScope === undefined)) throw new TableError(`${where}: give either "type" or "outOfScope"`);
    if (entry.type !== undefined) checkType(entry.type, where);
    else if (typeof entry.outOfScope !== 'string' || entry.outOfScope === '') throw new TableError(`${where}: "outOfScope" must be a reason`);
  }
  for (const resourceType of lastRank.keys()) {
    if (!(resourceType in defaults)) throw new TableError(`rules name ${resourceType}, which has no default`);
  }
  if (typeof outOfScopeReason !== 'string' || !outOfScopeReason.includes('{resourceType}')) {
    throw new TableError('"outOfScopeReason" must be a text containing {resourceType}');
  }
  return raw as unknown as Table;
}

/** What the rules test in one element: its codings as `system|code`, and its texts lower-cased. */
interface ElementFacts {
  codings: string[];
  texts: string[];
}

/** The facts of an element's CodeableConcepts, tolerating any shape a client may send. */
function factsOf(resource: Record<string, unknown>, element: Element): ElementFacts {
  const facts: ElementFacts = { codings: [], texts: [] };
  const value = resource[element];
  if (Array.isArray(value)) for (const concept of value) addConcept(concept, facts);
  else addConcept(value, facts);
  return facts;
}

function addConcept(concept: unknown, facts: ElementFacts): void {
  if (!isRecord(concept)) return;
  if (typeof concept.text === 'string') facts.texts.push(concept.text.toLowerCase());
  if (!Array.isArray(concept.coding)) return;
  for (const coding of concept.coding) {
    if (!isRecord(coding)) continue;
    if (typeof coding.system === 'string' && typeof coding.code === 'string') facts.codings.push(`${coding.system}|${coding.code}`);
    if (typeof coding.display === 'string') facts.texts.push(coding.display.toLowerCase());
  }
}

function matches(rule: CompiledRule, facts: ElementFacts): boolean {
  if (rule.codings.size > 0 && facts.codings.some((coding) => rule.codings.has(coding))) return true;
  return rule.text.length > 0 && rule.text.some((needle) => facts.texts.some((text) => text.includes(needle)));
}

/** Builds a classifier from a table (exported for tests of the table's validation). */
export function createClassifier(raw: unknown): Classifier {
  const table = validate(raw);
  const byResourceType = new Map<string, CompiledRule[]>();
  for (const rule of table.rules) {
    const compiled: CompiledRule = {
      id: rule.id,
      element: rule.element,
      codings: new Set(rule.codings ?? []),
      text: (rule.text ?? []).map((t) => t.toLowerCase()),
      type: rule.type,
    };
    for (const resourceType of rule.resourceTypes) {
      const list = byResourceType.get(resourceType) ?? [];
      list.push(compiled);
      byResourceType.set(resourceType, list);
    }
  }
  const defaults = new Map(Object.entries(table.defaults));
  const types = Object.freeze(table.types.map((type) => Object.freeze({ ...type })));

  const possible = (resourceType: string): PossibleTypes => {
    const found = new Set<SharableTypeCode>((byResourceType.get(resourceType) ?? []).map((rule) => rule.type));
    const fallback = defaults.get(resourceType);
    if (fallback && !('outOfScope' in fallback)) found.add(fallback.type);
    return { types: found, outOfScope: !fallback || 'outOfScope' in fallback };
  };

  return {
    types,
    possibleTypes: possible,
    classify(resource: unknown): Classification {
      if (!isRecord(resource) || typeof resource.resourceType !== 'string' || resource.resourceType === '') {
        return { type: undefined, reason: 'Not a FHIR resource: it has no resourceType' };
      }
      const resourceType = resource.resourceType;
      // Every write is classified, against several rules on the same elements: each element is read once.
      const facts = new Map<Element, ElementFacts>();
      for (const rule of byResourceType.get(resourceType) ?? []) {
        let found = facts.get(rule.element);
        if (!found) facts.set(rule.element, (found = factsOf(resource, rule.element)));
        if (matches(rule, found)) return { type: rule.type, rule: rule.id };
      }
      const fallback = defaults.get(resourceType);
      if (fallback === undefined) return { type: undefined, reason: table.outOfScopeReason.replaceAll('{resourceType}', resourceType) };
      if ('outOfScope' in fallback) return { type: undefined, reason: fallback.outOfScope };
      return { type: fallback.type };
    },
  };
}

const TABLE_URL = new URL('../../profiles/sharable-types.json', import.meta.url);

/** The table in profiles/sharable-types.json, loaded and checked once. */
export const CLASSIFIER: Classifier = createClassifier(JSON.parse(readFileSync(TABLE_URL, 'utf8')));

/** The sharable data type of a resource, or why it has none. */
export function classify(resource: unknown): Classification {
  return CLASSIFIER.classify(resource);
}

export const SHARABLE_TYPES: readonly SharableType[] = CLASSIFIER.types;

export const possibleTypes = (resourceType: string): PossibleTypes => CLASSIFIER.possibleTypes(resourceType);
