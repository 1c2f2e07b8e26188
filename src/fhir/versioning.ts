import { badRequest } from './outcome.js';

/** Weak ETags carry the version id: W/"3". */
export const etag = (versionId: number): string => `W/"${versionId}"`;

/** The version an If-Match header asks for; undefined when the header is absent. */
export function parseIfMatch(header: string | undefined): number | undefined {
  if (header === undefined) return undefined;
  const m = /^\s*(?:W\/)?"(\d{1,10})"\s*$/.exec(header);
  if (!m) throw badRequest('If-Match must be a version ETag such as W/"3"', ['If-Match']);
  return Number(m[1]);
}
