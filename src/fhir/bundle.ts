import type { Bundle, BundleEntry, BundleLink, FhirResource } from 'fhir/r4.js';
import type { HistoryPage } from './history.js';
import { etag } from './versioning.js';

/** Builds the Bundle of a history listing; `urlFor` turns parameters into an absolute link. */
export function historyBundle(
  page: HistoryPage,
  baseUrl: string,
  urlFor: (params: Record<string, string>) => string,
): Bundle {
  const link: BundleLink[] = [
    { relation: 'self', url: urlFor(page.queryParams) },
    { relation: 'first', url: urlFor(page.queryParams) },
  ];
  if (page.next) link.push({ relation: 'next', url: urlFor({ ...page.queryParams, _page: page.next }) });
  const entry: BundleEntry[] = page.entries.map(({ stored, json }) => {
    const lastModified = new Date(stored.lastUpdated).toISOString();
    const e: BundleEntry = { fullUrl: `${baseUrl}/${stored.resourceType}/${stored.id}` };
    if (json !== undefined) e.resource = JSON.parse(json) as FhirResource;
    if (stored.deleted) {
      e.request = { method: 'DELETE', url: `${stored.resourceType}/${stored.id}` };
      e.response = { status: '204 No Content', etag: etag(stored.versionId), lastModified };
    } else if (stored.versionId === 1) {
      e.request = { method: 'POST', url: stored.resourceType };
      e.response = { status: '201 Created', etag: etag(stored.versionId), lastModified };
    } else {
      e.request = { method: 'PUT', url: `${stored.resourceType}/${stored.id}` };
      e.response = { status: '200 OK', etag: etag(stored.versionId), lastModified };
    }
    return e;
  });
  return { resourceType: 'Bundle', type: 'history', ...(page.total !== undefined && { total: page.total }), link, ...(entry.length && { entry }) };
}
