import type {
  CapabilityStatement,
  CapabilityStatementRestResource,
  CapabilityStatementRestResourceOperation,
  CapabilityStatementRestSecurity,
  CapabilityStatementRestResourceSearchParam,
} from 'fhir/r4.js';
import { allResourceTypes } from './definitions.js';
import { searchParameters, type SearchParameterDef } from './search/registry.js';

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

const TYPE_INTERACTIONS = ['read', 'vread', 'update', 'patch', 'delete', 'history-instance', 'history-type', 'create', 'search-type'] as const;

/** Modifiers each parameter type accepts (the statement has no field for them: they go in documentation). */
export const SUPPORTED_MODIFIERS: Record<string, string[]> = {
  string: ['exact', 'contains', 'missing'],
  token: ['not', 'text', 'of-type (identifier)', 'in', 'not-in', 'missing'],
  date: ['missing'],
  number: ['missing'],
  quantity: ['missing'],
  reference: ['[type]', 'identifier', 'missing'],
  uri: ['below', 'above', 'missing'],
  composite: ['missing'],
};

/** Parameters whose values the server takes from its own records rather than the index. */
const SEARCHABLE = (def: SearchParameterDef) => def.type !== 'special' && (def.expression !== undefined || def.code === '_id' || def.code === '_lastUpdated');

function searchParam(def: SearchParameterDef): CapabilityStatementRestResourceSearchParam {
  const modifiers = SUPPORTED_MODIFIERS[def.type] ?? [];
  const chaining = def.type === 'reference' ? ' Chaining and _has are supported.' : '';
  return {
    name: def.code,
    definition: def.url,
    type: def.type as CapabilityStatementRestResourceSearchParam['type'],
    documentation: `${def.description.split('\n')[0]!.trim()} (modifiers: ${modifiers.join(', ')}).${chaining}`,
  };
}

/** `_list`, defined by the search page rather than by a SearchParameter. */
const LIST_PARAM: CapabilityStatementRestResourceSearchParam = {
  name: '_list',
  type: 'special',
  documentation:
    'The resources a List stored here holds (List.entry.item), among those the caller may see; a List the caller may not see holds nothing. ' +
    'The same as _has:List:item:_id. Functional lists ($current-problems and the like) are not supported (400).',
};

let revIncludesByTarget: Map<string, string[]> | undefined;

function revIncludes(type: string): string[] {
  if (!revIncludesByTarget) {
    revIncludesByTarget = new Map();
    for (const source of allResourceTypes()) {
      for (const def of searchParameters(source).values()) {
        if (def.type !== 'reference' || !def.expression) continue;
        for (const target of def.target) revIncludesByTarget.set(target, [...(revIncludesByTarget.get(target) ?? []), `${source}:${def.code}`]);
      }
    }
  }
  return revIncludesByTarget.get(type) ?? [];
}

/** What the rooms above FHIR add to the statement: their operations and the security service. */
export interface CapabilityAdditions {
  /** Operations by resource type; 'System' for system-level ones. */
  operations: Map<string, CapabilityStatementRestResourceOperation[]>;
  security: CapabilityStatementRestSecurity;
  /** The store applies a transaction all or none; without it only batches are offered. */
  transactions?: boolean;
}

function resourceCapability(type: string, operations: CapabilityStatementRestResourceOperation[] | undefined): CapabilityStatementRestResource {
  const params = [...searchParameters(type).values()].filter(SEARCHABLE);
  const references = params.filter((p) => p.type === 'reference' && p.expression);
  return {
    type,
    profile: `http://hl7.org/fhir/StructureDefinition/${type}`,
    interaction: TYPE_INTERACTIONS.map((code) => ({ code })),
    versioning: 'versioned-update',
    readHistory: true,
    updateCreate: true,
    conditionalCreate: true,
    conditionalRead: 'full-support',
    conditionalUpdate: true,
    conditionalDelete: 'single',
    searchInclude: ['*', ...references.map((p) => `${type}:${p.code}`)],
    searchRevInclude: revIncludes(type),
    searchParam: params.map(searchParam),
    ...(operations?.length && { operation: operations }),
  };
}

export function capabilityStatement(software: SoftwareInfo, additions?: CapabilityAdditions): CapabilityStatement {
  const common = [...searchParameters('Patient').values()].filter((d) => d.code.startsWith('_') && SEARCHABLE(d));
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
          'Every version of every resource is kept. Weak ETags (W/"n") carry the version; If-Match gives 412 on a stale version; ' +
          'If-None-Match and If-Modified-Since give 304 on a read while the client\'s copy is current. ' +
          'Prefer: return=minimal|representation|OperationOutcome is honoured; _summary and _elements apply to reads and searches. ' +
          'Search: every R4 search parameter, indexed at write time; _sort, _count, _total, _include/_revinclude (with :iterate), ' +
          'chaining, _has, _list, compartment search on Patient, and cursor paging (self, first, next, previous). Unknown parameters are ' +
          'reported in the searchset (Prefer: handling=strict makes them a 400). Conditional operations use the full search. ' +
          (additions?.transactions === false
            ? 'Batch Bundles are accepted at the base URL; transactions are refused (501) because this deployment of the store cannot apply several writes all or none.'
            : 'Batch and transaction Bundles are accepted at the base URL: every entry method with its conditional forms, urn:uuid and ' +
              'urn:oid placeholders and conditional references resolved; a transaction stores all of its entries or none. Conditional ' +
              'criteria inside a transaction are judged against the data as it was before the transaction; its GET entries run after ' +
              'its writes and see them.'),
        ...(additions && { security: additions.security }),
        resource: [...allResourceTypes()].map((type) => resourceCapability(type, additions?.operations.get(type))),
        interaction: [{ code: 'history-system' }, { code: 'search-system' }, { code: 'batch' }, ...(additions?.transactions === false ? [] : [{ code: 'transaction' as const }])],
        searchParam: [...common.map(searchParam), LIST_PARAM],
        ...(additions?.operations.get('System') && { operation: additions.operations.get('System') }),
      },
    ],
  };
}
