import type { BodyCodec } from '../../store/codec.js';
import type { ResourceStore, SearchCursor } from '../../store/port.js';
import { allResourceTypes } from '../definitions.js';
import { indexResource, type IndexOptions } from './indexer.js';

/**
 * Recomputes the search index of every current resource, e.g. after the search parameter
 * definitions changed. Pages through the store by cursor, so it runs in bounded memory and
 * leaves alone any resource written again meanwhile (its index is already new).
 */
export async function reindexAll(store: ResourceStore, codec: BodyCodec, options: IndexOptions & { onProgress?: (done: number) => void } = {}): Promise<number> {
  const resourceTypes = [...allResourceTypes()];
  let after: SearchCursor | undefined;
  let done = 0;
  for (;;) {
    const hits = await store.search({ resourceTypes, where: [], sort: [], limit: 500, ...(after && { after }) });
    // A page at once: the embedded store commits it as one transaction instead of 500.
    await Promise.all(
      hits.map(({ version }) => {
        const resource = JSON.parse(codec.decode(version.body!)) as Record<string, unknown> & { resourceType: string };
        return store.reindex(version.resourceType, version.id, version.versionId, indexResource(resource, options));
      }),
    );
    done += hits.length;
    options.onProgress?.(done);
    if (hits.length < 500) return done;
    after = hits[hits.length - 1]!.cursor;
  }
}
