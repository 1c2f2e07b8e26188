import type { OperationDefinitionParameter } from 'fhir/r4.js';
import type { OperationSpec } from '../../participation/operations.js';

/** $everything and $validate as data, for the CapabilityStatement and their OperationDefinitions. */

const param = (name: string, use: 'in' | 'out', type: string, min: number, max: string, documentation: string): OperationDefinitionParameter => ({ name, use, min, max, type, documentation });

export const RECORD_OPERATIONS: OperationSpec[] = [
  {
    id: 'Patient-everything', code: 'everything', resource: 'Patient', level: 'instance', method: 'GET',
    canonical: 'http://hl7.org/fhir/OperationDefinition/Patient-everything',
    title: "Fetch a patient's whole record",
    description:
      'GET, or POST with a Parameters body. The patient and every resource in their Patient compartment (R4 CompartmentDefinition), as a searchset Bundle ordered by type and id, ' +
      'with an exact total and signed paging links (self, first, previous, next) bound to the query. Resources of types outside the compartment that a ' +
      "page's resources reference through their search parameters (practitioners, organisations, locations, medications, devices) come with that page " +
      '(search.mode include, as _include brings them: not counted in the total, repeated on each page that references them); conditional references are ' +
      'not resolved. start and end are not supported: they are reported as ignored in the ' +
      'Bundle (Prefer: handling=strict makes them a 400). Runs under the caller: an HCProf account gets exactly the records its sharing consents, care ' +
      'relationships, professional group and restricted-access grants let it see, and a patient it may not reach is not found (404); principals limited ' +
      'to some resource types (the registration office, auditors, accounts without clinical access, clients without a wildcard read scope) and patients get 403. ' +
      'Every returned record is audited and its patient notified as for a search.',
    parameters: [
      param('_since', 'in', 'instant', 0, '1', 'Only resources last updated at or after this instant (a date or dateTime counts from its start)'),
      param('_type', 'in', 'string', 0, '*', 'Comma-separated resource types: only these (types outside the compartment are reported and return nothing)'),
      param('_count', 'in', 'integer', 0, '1', 'Page size (default and maximum as for searches)'),
      param('start', 'in', 'date', 0, '1', 'Not supported: ignored and reported'),
      param('end', 'in', 'date', 0, '1', 'Not supported: ignored and reported'),
      param('return', 'out', 'Bundle', 1, '1', 'A searchset Bundle, one page'),
    ],
  },
  {
    id: 'Resource-validate', code: 'validate', resource: 'Resource', level: 'type', alsoAt: ['instance'], method: 'POST', affectsState: false,
    canonical: 'http://hl7.org/fhir/OperationDefinition/Resource-validate',
    title: 'Validate a resource',
    description:
      'POST /{type}/$validate or /{type}/{id}/$validate with the resource as the body, or a Parameters body (resource, mode, profile; mode and profile ' +
      'may also be URL parameters). Makes the checks a create, update (the default at instance level) or delete would make, and stores nothing: the FHIR R4 JSON ' +
      "schema and format rules, the id rules of an update, the participation rules, and for an HCProf account the upload rules (sharable scope, the group's " +
      'upload rights, a reachable patient, only the contributing HCP amends or deletes). Answers 200 with an OperationOutcome: an informational issue when ' +
      'nothing is wrong, else issues with expressions naming the elements. Only the base StructureDefinition of the type is checked: a profile parameter ' +
      'naming any other profile gets a warning issue saying it was not checked, and meta.profile claims are not checked either. The caller needs the right ' +
      'to make the write it validates (403 otherwise); mode update or delete on an instance the caller cannot see is 404; a body that is not JSON, a resource ' +
      "of another type than the URL's, or an unknown mode is 400.",
    parameters: [
      param('resource', 'in', 'Resource', 0, '1', 'The resource to validate (required except for mode delete)'),
      param('mode', 'in', 'code', 0, '1', 'create | update | delete (no mode: the checks of a create)'),
      param('profile', 'in', 'uri', 0, '1', 'Only the base definition of the type is checked; any other profile gets a warning'),
      param('return', 'out', 'OperationOutcome', 1, '1', 'The findings'),
    ],
  },
];
