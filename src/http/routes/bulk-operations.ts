import type { OperationDefinitionParameter } from 'fhir/r4.js';
import type { OperationSpec } from '../../participation/operations.js';

/** The Bulk Data (IG v2) operations this server offers, and its bulk import, for the CapabilityStatement. */

const BULK = 'http://hl7.org/fhir/uv/bulkdata/OperationDefinition';
const input = (name: string, type: string, max: string, documentation: string): OperationDefinitionParameter => ({ name, use: 'in', min: 0, max, type, documentation });

const exportParameters = (level: 'system' | 'patient' | 'group'): OperationDefinitionParameter[] => [
  input('_outputFormat', 'string', '1', 'application/fhir+ndjson (also application/ndjson or ndjson); anything else is refused'),
  input('_since', 'instant', '1', 'Only resources changed at or after this instant'),
  input('_type', 'string', '*', 'Comma-separated resource types to export (default: every type the level covers; a caller that may not search one of them is refused)'),
  input('_typeFilter', 'string', '*', 'Type?search-parameters: only resources of that type matching one of its queries'),
  ...(level === 'system' ? [] : [input('patient', 'Reference', '*', 'POST only: limit the export to these patients')]),
];

const howItWorks =
  'Asynchronous (Prefer: respond-async): 202 with Content-Location to a status URL, polled for X-Progress until the completion manifest; DELETE there cancels. One NDJSON file per type, served by this server to the client that asked only (requiresAccessToken), removed when they expire. ' +
  "Runs under the caller's rights: each type must be one it may search, and an HCProf account's export holds only what the same account's searches would. Jobs resume after a server restart. Every export is audited.";

export const BULK_OPERATIONS: OperationSpec[] = [
  {
    id: 'export', code: 'export', resource: 'System', level: 'system', method: 'GET', canonical: `${BULK}/export`,
    title: 'Export every resource (Bulk Data system export)',
    description: `Every resource of the requested types. ${howItWorks}`,
    parameters: exportParameters('system'),
  },
  {
    id: 'patient-export', code: 'export', resource: 'Patient', level: 'type', method: 'GET', canonical: `${BULK}/patient-export`,
    title: "Export all patients' records (Bulk Data patient export)",
    description: `The Patient resources and the resources in their compartments. ${howItWorks}`,
    parameters: exportParameters('patient'),
  },
  {
    id: 'group-export', code: 'export', resource: 'Group', level: 'instance', method: 'GET', canonical: `${BULK}/group-export`,
    title: "Export a group's records (Bulk Data group export)",
    description: `The Patient resources of the group's active members (Group.member.entity) and the resources in their compartments. ${howItWorks}`,
    parameters: exportParameters('group'),
  },
  {
    id: 'import', code: 'import', resource: 'System', level: 'system', method: 'POST',
    title: 'Load NDJSON (bulk import)',
    description:
      'The Bulk Data import pattern: a Parameters manifest (inputFormat application/fhir+ndjson; input with type and url, fetched only from the locations this server is configured to import from, never any other URL), or the NDJSON itself as an application/fhir+ndjson body. ' +
      "Asynchronous like $export (Prefer: respond-async, 202 with Content-Location, X-Progress, a manifest whose output counts what was written per type and whose error file holds an OperationOutcome per bad line, naming it). " +
      "Each line is a resource with its id, validated and written as an update by the same caller would be (rights, sharing and upload rules); a resource identical to the stored one gets no new version, so importing a file again changes nothing. Backend clients and HCProf accounts.",
    parameters: [
      input('inputFormat', 'code', '1', 'application/fhir+ndjson'),
      { name: 'input', use: 'in', min: 0, max: '*', documentation: 'One NDJSON file', part: [input('type', 'code', '1', 'The resource type the file holds'), { ...input('url', 'uri', '1', 'Where the server fetches it from (an allowed location)'), min: 1 }] },
    ],
  },
];
