import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { expect, it } from 'vitest';
import { describeEachStore } from '../store/stores.js';
import { exportAll, importNdjson } from './bulk-client.js';
import { indexResource } from '../../src/fhir/search/indexer.js';
import type { JsonResource } from '../../src/fhir/resource-input.js';
import { useServer } from './harness.js';

/** The Synthea sample loaded, exported with $export and compared with its source resource by resource, then imported into a fresh server with $import and exported again. */

const SYNTHEA = '/work/shared/data/synthea-10-patients';

export function syntheaSample(): Map<string, Record<string, any>[]> {
  const byType = new Map<string, Record<string, any>[]>();
  for (const file of readdirSync(SYNTHEA).filter((f) => /^[A-Z]\w+\.\d+\.ndjson$/.test(f))) {
    const resources = readFileSync(join(SYNTHEA, file), 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l) as Record<string, any>);
    const type = file.split('.')[0]!;
    byType.set(type, [...(byType.get(type) ?? []), ...resources]);
  }
  return byType;
}

/** What the server adds to a stored resource: its version and time. */
export function withoutServerMeta(resource: Record<string, any>): Record<string, any> {
  const { meta, ...rest } = resource;
  const { versionId: _v, lastUpdated: _l, ...kept } = (meta ?? {}) as Record<string, unknown>;
  return Object.keys(kept).length ? { ...rest, meta: kept } : rest;
}

const byId = (list: Record<string, any>[]) => new Map(list.map((r) => [r.id as string, r]));

describeEachStore('Bulk Data round trip of the Synthea sample', (open) => {
  const server = useServer(open);
  const fresh = useServer(open);
  const source = syntheaSample();
  let exported: Map<string, Record<string, any>[]> | undefined;

  it('exports exactly what was loaded', { timeout: 600_000 }, async () => {
    // FerretDB (CI's MongoDB) stores search entries one document each, slowly: there the patients and the smaller types only.
    if (server.store.kind === 'mongo') for (const type of [...source.keys()]) if ((source.get(type)?.length ?? 0) > 200) source.delete(type);
    const types = [...source.keys()];
    // Written straight into the store (as a create would, index included), in batches.
    const all = [...source.values()].flat();
    for (let start = 0; start < all.length; start += 500) {
      await server.store.writeMany(all.slice(start, start + 500).map((resource) => ({
        resourceType: resource.resourceType as string,
        id: resource.id as string,
        renderBody: (versionId: number, lastUpdated: number) => JSON.stringify({ ...resource, meta: { ...resource.meta, versionId: String(versionId), lastUpdated: new Date(lastUpdated).toISOString() } }),
        index: indexResource(resource as JsonResource, { localBase: 'http://fhir.test/fhir' }),
      })));
    }
    const { manifest, resources } = await exportAll(server, `/fhir/$export?_type=${types.join(',')}`);
    expect(Object.fromEntries(manifest.output.map((o) => [o.type, o.count]))).toEqual(Object.fromEntries([...source].map(([t, l]) => [t, l.length])));
    for (const [type, list] of source) {
      const exported = byId(resources.get(type) ?? []);
      for (const [id, original] of byId(list)) expect(withoutServerMeta(exported.get(id)!), `${type}/${id}`).toEqual(original);
    }
    exported = resources;
  });

  it('imports the exported NDJSON into a fresh server, which then exports the same resources', { timeout: 600_000 }, async () => {
    expect(exported).toBeDefined();
    const ndjson = [...exported!.values()].flat().map((r) => JSON.stringify(r)).join('\n');
    const imported = await importNdjson(fresh, ndjson);
    expect(imported.error).toEqual([]);
    expect(Object.fromEntries(imported.output.map((o) => [o.type, o.count]))).toEqual(Object.fromEntries([...source].map(([t, l]) => [t, l.length])));
    const { resources } = await exportAll(fresh, `/fhir/$export?_type=${[...source.keys()].join(',')}`);
    for (const [type, list] of source) {
      const again = byId(resources.get(type) ?? []);
      expect(again.size, type).toBe(list.length);
      for (const [id, original] of byId(list)) expect(withoutServerMeta(again.get(id)!), `${type}/${id}`).toEqual(original);
    }
  });
});
