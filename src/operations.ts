import { OPERATIONS, type OperationSpec } from './participation/operations.js';
import { BULK_OPERATIONS } from './http/routes/bulk-operations.js';
import { RECORD_OPERATIONS } from './http/routes/record-operations.js';

/**
 * Every operation the server offers, for the CapabilityStatement and the public
 * OperationDefinition route: the participation operations and the FHIR ones (bundles, bulk
 * data, $everything, $validate), each list kept beside the code that implements it.
 */
export const ALL_OPERATIONS: OperationSpec[] = [...OPERATIONS, ...RECORD_OPERATIONS, ...BULK_OPERATIONS];
