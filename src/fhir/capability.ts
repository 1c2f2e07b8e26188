import type { CapabilityStatement, CapabilityStatementRestResource } from 'fhir/r4.js';
import { allResourceTypes, topLevelElements } from './definitions.js';
import { CONDITIONAL_PARAMETERS } from './criteria.js';

/**
 * The CapabilityStatement, generated from what this server implements. The repository's
 * capability-statement.json is this document; a test fails when they drift.
 */

export interface SoftwareInfo {
  name: string;
  version: string;
  /** The release date of this version, so the document is stable between runs. */
  releaseDate: string;
}

const TYPE_INTERACTIONS = ['read', 'vread', 'update', 'patch', 'delete', 'history-instance', 'history-type', 'create'] as const;

function resourceCapability(type: string): CapabilityStatementRestResource {
  const hasIdentifier = topLevelElements(type)?.all.has('identifier') ?? false;
  const criteria = CONDITIONAL_PARAMETERS.filter((p) => p === '_id' || hasIdentifier);
  return {
    type,
    profile: `http://hl7.org/fhir/StructureDefinition/${type}`,
    interaction: TYPE_INTERACTIONS.map((code) => ({ code })),
    versioning: 'versioned-update',
    readHistory: true,
    updateCreate: true,
    conditionalCreate: true,
    conditionalRead: 'not-supported',
    conditionalUpdate: true,
    conditionalDelete: 'single',
    documentation: `Conditional create, update and delete accept the criteria ${criteria.join(', ')}.`,
  };
}

export function capabilityStatement(software: SoftwareInfo): CapabilityStatement {
  return {
    resourceType: 'CapabilityStatement',
    status: 'active',
    date: software.releaseDate,
    publisher: 'eHealth FHIR server project',
    kind: 'instance',
    software: { name: software.name, version: software.version, releaseDate: software.releaseDate },
    implementation: { description: 'FHIR R4 server for consent-governed territory-wide health record sharing' },
    fhirVersion: '4.0.1',
    format: ['application/fhir+json', 'application/json'],
    patchFormat: ['application/json-patch+json'],
    rest: [
      {
        mode: 'server',
        documentation:
          'Every version of every resource is kept. Weak ETags (W/"n") carry the version; If-Match gives 412 on a stale version. ' +
          'Prefer: return=minimal|representation|OperationOutcome is honoured; _summary and _elements apply to reads.',
        resource: [...allResourceTypes()].map(resourceCapability),
        interaction: [{ code: 'history-system' }],
      },
    ],
  };
}
