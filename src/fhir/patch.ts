import jsonpatch from 'fast-json-patch';
import { badRequest, unprocessable } from './outcome.js';

/** JSON Patch (RFC 6902) applied to a resource, with the errors the FHIR spec asks for. */

// The patch document itself is malformed: the client must fix the request.
const MALFORMED = new Set([
  'SEQUENCE_NOT_AN_ARRAY',
  'OPERATION_NOT_AN_OBJECT',
  'OPERATION_OP_INVALID',
  'OPERATION_PATH_INVALID',
  'OPERATION_FROM_REQUIRED',
  'OPERATION_VALUE_REQUIRED',
  'OPERATION_VALUE_CANNOT_CONTAIN_UNDEFINED',
]);

export function applyJsonPatch(resource: Record<string, unknown>, patch: unknown): Record<string, unknown> {
  if (!Array.isArray(patch)) throw badRequest('A JSON Patch document must be an array of operations');
  try {
    // Validate the whole patch first, apply to a copy, and refuse prototype tricks.
    const result = jsonpatch.applyPatch(structuredClone(resource), patch as jsonpatch.Operation[], true, true, true);
    return result.newDocument;
  } catch (error) {
    if (error instanceof jsonpatch.JsonPatchError) {
      const index = typeof error.index === 'number' ? ` (operation ${error.index})` : '';
      if (MALFORMED.has(error.name)) throw badRequest(`Invalid JSON Patch${index}: ${error.name.toLowerCase().replace(/_/g, ' ')}`);
      throw unprocessable(`The patch cannot be applied${index}: ${error.name.toLowerCase().replace(/_/g, ' ')}`);
    }
    throw badRequest('Invalid JSON Patch document');
  }
}
