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

/**
 * A conditional read (RFC 9110 13.1.2 and 13.1.3): the client's copy is current when
 * If-None-Match names this version's ETag (or is *), or, without If-None-Match, when the
 * resource was last changed no later than If-Modified-Since. An If-Modified-Since that is no
 * date is ignored, as the RFC asks.
 */
export function clientCopyIsCurrent(ifNoneMatch: string | undefined, ifModifiedSince: string | undefined, stored: { versionId: number; lastUpdated: number }): boolean {
  if (ifNoneMatch !== undefined) {
    return ifNoneMatch.split(',').some((tag) => {
      const t = tag.trim();
      return t === '*' || t.replace(/^W\//, '') === `"${stored.versionId}"`;
    });
  }
  if (ifModifiedSince === undefined) return false;
  const since = Date.parse(ifModifiedSince);
  if (Number.isNaN(since)) return false;
  // A date in whole seconds (every HTTP date) stands for all of that second.
  return (since % 1000 === 0 ? Math.floor(stored.lastUpdated / 1000) * 1000 : stored.lastUpdated) <= since;
}
