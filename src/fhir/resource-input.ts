import { isResourceType } from './definitions.js';
import { FhirError, badRequest, notFound } from './outcome.js';
import { validateResource } from './validation.js';

/** Checks that turn a request body into a resource the server may store. */

export const ID_PATTERN = /^[A-Za-z0-9\-.]{1,64}$/;

export function requireKnownType(resourceType: string): void {
  if (!isResourceType(resourceType)) throw notFound(`Unknown resource type '${resourceType}'`);
}

export function requireValidId(id: string, where = 'id'): void {
  if (!ID_PATTERN.test(id)) {
    throw badRequest(`'${id.slice(0, 80)}' is not a valid resource id (1-64 of A-Z a-z 0-9 - .)`, [where]);
  }
}

export type JsonResource = Record<string, unknown> & { resourceType: string };

/**
 * Validates a body for `resourceType`. `urlId` is the id from the URL for an update (the body
 * must carry the same id); for a create it is undefined and any id in the body is ignored.
 */
export function checkResource(body: unknown, resourceType: string, urlId?: string): JsonResource {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) {
    throw badRequest('The request body must be a FHIR resource (a JSON object)');
  }
  const resource = body as Record<string, unknown>;
  if (resource.resourceType !== resourceType) {
    throw badRequest(
      `The resource's resourceType (${JSON.stringify(resource.resourceType ?? null)}) does not match the URL's type '${resourceType}'`,
      [`${resourceType}.resourceType`],
    );
  }
  if (urlId !== undefined) {
    if (resource.id === undefined) throw badRequest('An update must carry the resource id in the body', [`${resourceType}.id`]);
    if (resource.id !== urlId) {
      throw badRequest(`The body's id does not match the id in the URL ('${urlId}')`, [`${resourceType}.id`]);
    }
  }
  if (resource.id !== undefined && (typeof resource.id !== 'string' || !ID_PATTERN.test(resource.id))) {
    throw badRequest('id must be 1-64 characters of A-Z a-z 0-9 - .', [`${resourceType}.id`]);
  }
  const issues = validateResource(resource);
  if (issues.length) throw new FhirError(400, issues);
  return resource as JsonResource;
}
