import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  VersionConflictError,
  type HistoryCursor,
  type HistoryQuery,
  type ResourceStore,
  type StoredVersion,
  type WriteRequest,
} from '../../src/store/port.js';
import { atTime, clockPast, codeIs, indexOf, render, token } from './fixtures.js';
import { describeEachStore } from './stores.js';

/** The history order spelled out: newest first, then type, id and version, all descending. */
function newestFirst(a: StoredVersion, b: StoredVersion): number {
  const key = (v: StoredVersion) => [v.lastUpdated, v.resourceType, v.id, v.versionId] as const;
  const [ka, kb] = [key(a), key(b)];
  for (let i = 0; i < ka.length; i++) {
    if (ka[i]! < kb[i]!) return 1;
    if (ka[i]! > kb[i]!) return -1;
  }
  return 0;
}

const ref = (v: StoredVersion) => `${v.resourceType}/${v.id}/_history/${v.versionId}`;
const cursorOf = (v: StoredVersion): HistoryCursor => ({
  lastUpdated: v.lastUpdated,
  resourceType: v.resourceType,
  id: v.id,
  versionId: v.versionId,
});

describeEachStore('ResourceStore conformance', (open) => {
  let store: ResourceStore;
  beforeEach(async () => {
    store = await open();
  });
  afterEach(async () => {
    await store.close();
  });

  const put = (resourceType: string, id: string, extra: Partial<WriteRequest> = {}) =>
    store.write({ resourceType, id, renderBody: render(`${resourceType}/${id}`), ...extra });
  const remove = (resourceType: string, id: string) => store.write({ resourceType, id });

  async function pageThrough(query: Omit<HistoryQuery, 'after'>, between?: () => Promise<void>) {
    const seen: StoredVersion[] = [];
    let after: HistoryCursor | undefined;
    // Bounded, so a cursor that fails to advance fails the test instead of hanging it.
    for (let pages = 0; pages < 200; pages++) {
      const page = await store.history({ ...query, ...(after && { after }) });
      expect(page.length).toBeLessThanOrEqual(query.limit);
      seen.push(...page);
      if (page.length < query.limit) return seen;
      after = cursorOf(page[page.length - 1]!);
      await between?.();
    }
    throw new Error('history paging did not end');
  }

  describe('create, read, vread', () => {
    it('creates version 1 and reads it back as current and by version', async () => {
      const before = Date.now();
      const created = await put('Patient', 'p1');
      expect(created).toMatchObject({ resourceType: 'Patient', id: 'p1', versionId: 1, deleted: false });
      expect(created.lastUpdated).toBeGreaterThanOrEqual(before);
      expect(created.lastUpdated).toBeLessThanOrEqual(Date.now());
      expect(JSON.parse(created.body!)).toEqual({
        label: 'Patient/p1',
        versionId: 1,
        lastUpdated: created.lastUpdated,
      });
      expect(await store.readCurrent('Patient', 'p1')).toEqual(created);
      expect(await store.readVersion('Patient', 'p1', 1)).toEqual(created);
    });

    it('answers undefined for what was never written', async () => {
      await put('Patient', 'p1');
      expect(await store.readCurrent('Patient', 'nobody')).toBeUndefined();
      expect(await store.readVersion('Patient', 'p1', 2)).toBeUndefined();
      expect(await store.readVersion('Patient', 'nobody', 1)).toBeUndefined();
    });

    it('keeps resource types apart even with equal ids', async () => {
      await put('Patient', 'same');
      await put('Patient', 'same');
      const observation = await put('Observation', 'same');
      expect(observation.versionId).toBe(1);
      expect((await store.readCurrent('Patient', 'same'))?.versionId).toBe(2);
      expect(await store.readCurrent('Observation', 'same')).toEqual(observation);
    });

    it("keeps bodies beyond MongoDB's 16 MiB document limit, characters cut at chunk edges included", async () => {
      // 8 UTF-8 bytes per repetition (1 + 3 + 4), so chunk edges fall inside characters.
      const body = 'a€😀'.repeat(2_300_000);
      const written = await store.write({ resourceType: 'Binary', id: 'big', renderBody: () => body, index: indexOf(token('kind', null, 'big')) });
      expect(written.body).toBe(body);
      expect((await store.readCurrent('Binary', 'big'))?.body).toBe(body);
      expect((await store.readVersion('Binary', 'big', 1))?.body).toBe(body);
      expect((await store.history({ resourceType: 'Binary', limit: 10 }))[0]?.body).toBe(body);
      const [hit] = await store.search({ resourceTypes: ['Binary'], where: [codeIs('kind', 'big')], sort: [], limit: 10 });
      expect(hit?.version.body).toBe(body);
    });

    it('numbers versions 1, 2, 3 and keeps every one readable', async () => {
      const written = [await put('Patient', 'p1'), await put('Patient', 'p1'), await put('Patient', 'p1')];
      expect(written.map((v) => v.versionId)).toEqual([1, 2, 3]);
      for (const version of written) {
        expect(await store.readVersion('Patient', 'p1', version.versionId)).toEqual(version);
        expect(JSON.parse(version.body!).versionId).toBe(version.versionId);
      }
      expect(await store.readCurrent('Patient', 'p1')).toEqual(written[2]);
    });
  });

  describe('tombstones', () => {
    it('stores a deletion as a new version without a body, keeping the older ones', async () => {
      const first = await put('Patient', 'p1');
      const tombstone = await remove('Patient', 'p1');
      expect(tombstone).toMatchObject({ resourceType: 'Patient', id: 'p1', versionId: 2, deleted: true });
      expect(tombstone).not.toHaveProperty('body');
      expect(await store.readCurrent('Patient', 'p1')).toEqual(tombstone);
      expect(await store.readVersion('Patient', 'p1', 2)).toEqual(tombstone);
      expect(await store.readVersion('Patient', 'p1', 1)).toEqual(first);
    });

    it('lets a deleted resource be written again as the next version', async () => {
      await put('Patient', 'p1');
      await remove('Patient', 'p1');
      const revived = await put('Patient', 'p1');
      expect(revived).toMatchObject({ versionId: 3, deleted: false });
      expect(await store.readCurrent('Patient', 'p1')).toEqual(revived);
    });

    it('readHead, where a store has it, says what readCurrent says without the body', async ({ skip }) => {
      if (!store.readHead) skip();
      const withoutBody = ({ body: _body, ...head }: StoredVersion) => head;
      expect(await store.readHead!('Patient', 'h1')).toBeUndefined();
      await put('Patient', 'h1');
      const second = await put('Patient', 'h1');
      expect(await store.readHead!('Patient', 'h1')).toEqual(withoutBody(second));
      const tombstone = await remove('Patient', 'h1');
      expect(await store.readHead!('Patient', 'h1')).toEqual(tombstone);
      expect(await store.readHead!('Observation', 'h1')).toBeUndefined();
    });

    it('can delete what never existed, as version 1', async () => {
      const tombstone = await remove('Patient', 'ghost');
      expect(tombstone).toMatchObject({ versionId: 1, deleted: true });
      expect(await store.readCurrent('Patient', 'ghost')).toEqual(tombstone);
    });
  });

  describe('expectedVersion', () => {
    async function conflictOf(write: Promise<unknown>): Promise<VersionConflictError> {
      const error = await write.then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(error).toBeInstanceOf(VersionConflictError);
      return error as VersionConflictError;
    }

    it('null creates when nothing exists', async () => {
      expect((await put('Patient', 'p1', { expectedVersion: null })).versionId).toBe(1);
    });

    it('null conflicts with an existing resource and reports its version', async () => {
      await put('Patient', 'p1');
      await put('Patient', 'p1');
      const conflict = await conflictOf(put('Patient', 'p1', { expectedVersion: null }));
      expect(conflict).toMatchObject({ resourceType: 'Patient', id: 'p1', currentVersion: 2 });
    });

    it('null conflicts with a deleted resource too', async () => {
      await put('Patient', 'p1');
      await remove('Patient', 'p1');
      const conflict = await conflictOf(put('Patient', 'p1', { expectedVersion: null }));
      expect(conflict.currentVersion).toBe(2);
    });

    it('the current number succeeds', async () => {
      await put('Patient', 'p1');
      expect((await put('Patient', 'p1', { expectedVersion: 1 })).versionId).toBe(2);
      await remove('Patient', 'p1');
      expect((await put('Patient', 'p1', { expectedVersion: 3 })).versionId).toBe(4);
    });

    it('a stale number conflicts and writes nothing', async () => {
      await put('Patient', 'p1');
      await put('Patient', 'p1');
      const conflict = await conflictOf(put('Patient', 'p1', { expectedVersion: 1 }));
      expect(conflict.currentVersion).toBe(2);
      expect((await store.readCurrent('Patient', 'p1'))?.versionId).toBe(2);
      expect(await store.countHistory({ resourceType: 'Patient', id: 'p1' })).toBe(2);
    });

    it('a number for a resource that does not exist conflicts with currentVersion null', async () => {
      const conflict = await conflictOf(put('Patient', 'p1', { expectedVersion: 1 }));
      expect(conflict.currentVersion).toBeNull();
      expect(await store.readCurrent('Patient', 'p1')).toBeUndefined();
    });
  });

  describe('concurrent writers', () => {
    const WRITERS = 10;

    it('with the same expectedVersion: exactly one wins, the rest conflict', async () => {
      await put('Patient', 'p1');
      const results = await Promise.allSettled(
        Array.from({ length: WRITERS }, () => put('Patient', 'p1', { expectedVersion: 1 })),
      );
      const won = results.filter((r) => r.status === 'fulfilled');
      const lost = results.filter((r) => r.status === 'rejected');
      expect(won).toHaveLength(1);
      expect(won[0]!.value.versionId).toBe(2);
      for (const loss of lost) {
        expect(loss.reason).toBeInstanceOf(VersionConflictError);
        expect((loss.reason as VersionConflictError).currentVersion).toBe(2);
      }
      expect(await store.countHistory({ resourceType: 'Patient', id: 'p1' })).toBe(2);
    });

    it('creating with expectedVersion null: exactly one wins', async () => {
      const results = await Promise.allSettled(
        Array.from({ length: WRITERS }, () => put('Patient', 'p1', { expectedVersion: null })),
      );
      expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(1);
      expect(await store.countHistory({ resourceType: 'Patient', id: 'p1' })).toBe(1);
    });

    it('without expectedVersion: all succeed as versions 1..n with no gaps, and search sees the last', async () => {
      // Several resources at once, a few rounds: losing the pointer race is rare on any one.
      const RESOURCES = 5;
      for (let round = 0; round < 3; round++) {
        const writers = Array.from({ length: RESOURCES * WRITERS }, (_, writer) => ({
          id: `r${round}-${writer % RESOURCES}`,
          code: `writer-${round}-${writer}`,
        }));
        const results = await Promise.all(
          writers.map(({ id, code }) => put('Patient', id, { index: indexOf(token('name', null, code)) })),
        );

        for (let resource = 0; resource < RESOURCES; resource++) {
          const id = `r${round}-${resource}`;
          const mine = results.filter((r) => r.id === id);
          const versionIds = mine.map((r) => r.versionId).sort((a, b) => a - b);
          expect(versionIds).toEqual(Array.from({ length: WRITERS }, (_, i) => i + 1));

          const history = await store.history({ resourceType: 'Patient', id, limit: 100 });
          expect(history.map((v) => v.versionId)).toEqual([...versionIds].reverse());
          for (let i = 1; i < history.length; i++) {
            expect(history[i - 1]!.lastUpdated).toBeGreaterThanOrEqual(history[i]!.lastUpdated);
          }
          expect((await store.readCurrent('Patient', id))?.versionId).toBe(WRITERS);
        }

        // Whichever writer got the last version owns the search index; no earlier one may.
        for (const [writer, { code }] of writers.entries()) {
          const found = await store.search({ resourceTypes: ['Patient'], where: [codeIs('name', code)], sort: [], limit: 10 });
          expect(found.map((hit) => hit.version.versionId)).toEqual(results[writer]!.versionId === WRITERS ? [WRITERS] : []);
        }
      }
    });
  });

  describe('writeMany', () => {
    const create = (resourceType: string, id: string, extra: Partial<WriteRequest> = {}): WriteRequest => ({
      resourceType,
      id,
      renderBody: render(`${resourceType}/${id}`),
      ...extra,
    });

    it('writes a batch in order, answers in the same order, and each version reads back and is searchable', async () => {
      const requests = Array.from({ length: 25 }, (_, i) =>
        create('AuditEvent', `a${String(i).padStart(3, '0')}`, { expectedVersion: null, index: indexOf(token('seq', null, `s${i}`)) }),
      );
      const written = await store.writeMany(requests);
      expect(written.map((v) => v.id)).toEqual(requests.map((r) => r.id));
      for (const version of written) {
        expect(version).toMatchObject({ resourceType: 'AuditEvent', versionId: 1, deleted: false });
        expect(JSON.parse(version.body!)).toEqual({ label: `AuditEvent/${version.id}`, versionId: 1, lastUpdated: version.lastUpdated });
        expect(await store.readCurrent('AuditEvent', version.id)).toEqual(version);
      }
      const found = await store.search({ resourceTypes: ['AuditEvent'], where: [codeIs('seq', 's7')], sort: [], limit: 10 });
      expect(found.map((hit) => hit.version.id)).toEqual(['a007']);
      expect(await store.count({ resourceTypes: ['AuditEvent'], where: [] })).toBe(25);
      const history = await store.history({ resourceType: 'AuditEvent', limit: 100 });
      expect(history).toHaveLength(25);
    });

    it('answers an empty batch with nothing', async () => {
      expect(await store.writeMany([])).toEqual([]);
      expect(await store.countHistory({})).toBe(0);
    });

    it('continues existing resources, takes the same resource twice in turn, and writes tombstones', async () => {
      await put('Patient', 'p1');
      await put('Patient', 'p2');
      const written = await store.writeMany([
        create('Patient', 'p1', { expectedVersion: 1 }),
        create('Patient', 'p1'),
        { resourceType: 'Patient', id: 'p2' },
        create('Patient', 'p3'),
      ]);
      expect(written.map(ref)).toEqual(['Patient/p1/_history/2', 'Patient/p1/_history/3', 'Patient/p2/_history/2', 'Patient/p3/_history/1']);
      expect(written[2]).toMatchObject({ deleted: true });
      expect(written[2]).not.toHaveProperty('body');
      expect((await store.readCurrent('Patient', 'p1'))?.versionId).toBe(3);
      expect((await store.readCurrent('Patient', 'p2'))?.deleted).toBe(true);
    });

    it('rejects with the version conflict and writes nothing after the failing request (the embedded store: nothing at all)', async () => {
      await put('Patient', 'taken');
      const error = await store
        .writeMany([create('Patient', 'first', { expectedVersion: null }), create('Patient', 'taken', { expectedVersion: null }), create('Patient', 'after', { expectedVersion: null })])
        .then(
          () => undefined,
          (e: unknown) => e,
        );
      expect(error).toBeInstanceOf(VersionConflictError);
      expect(error).toMatchObject({ resourceType: 'Patient', id: 'taken', currentVersion: 1 });
      expect(await store.readCurrent('Patient', 'after')).toBeUndefined();
      expect((await store.readCurrent('Patient', 'taken'))?.versionId).toBe(1);
      // All or none where the store has transactions; an ordered prefix otherwise (see the port).
      const first = await store.readCurrent('Patient', 'first');
      if (store.kind === 'sqlite') expect(first).toBeUndefined();
      else expect(first?.versionId).toBe(1);
      const search = await store.search({ resourceTypes: ['Patient'], where: [], sort: [{ param: '_id', descending: false }], limit: 10 });
      expect(search.map((hit) => hit.version.id)).toEqual(store.kind === 'sqlite' ? ['taken'] : ['first', 'taken']);
    });

    it('concurrent batches creating the same resources: exactly one batch wins', async () => {
      const ids = ['x1', 'x2', 'x3', 'x4'];
      const results = await Promise.allSettled(
        Array.from({ length: 5 }, (_, writer) =>
          store.writeMany(ids.map((id) => create('Observation', id, { expectedVersion: null, index: indexOf(token('writer', null, `w${writer}`)) }))),
        ),
      );
      const won = results.filter((r) => r.status === 'fulfilled');
      expect(won).toHaveLength(1);
      for (const loss of results.filter((r) => r.status === 'rejected')) expect(loss.reason).toBeInstanceOf(VersionConflictError);
      for (const id of ids) expect(await store.countHistory({ resourceType: 'Observation', id })).toBe(1);
      const winner = results.findIndex((r) => r.status === 'fulfilled');
      expect(await store.count({ resourceTypes: ['Observation'], where: [codeIs('writer', `w${winner}`)] })).toBe(ids.length);
    });

    it('concurrent batches and single writes on new resources all succeed', async () => {
      const batches = Array.from({ length: 8 }, (_, b) => store.writeMany(Array.from({ length: 10 }, (_, i) => create('AuditEvent', `b${b}-${i}`, { expectedVersion: null }))));
      const singles = Array.from({ length: 10 }, (_, i) => put('Patient', `s${i}`));
      const [written] = await Promise.all([Promise.all(batches), Promise.all(singles)]);
      expect(written.flat()).toHaveLength(80);
      expect(await store.count({ resourceTypes: ['AuditEvent'], where: [] })).toBe(80);
      expect(await store.count({ resourceTypes: ['Patient'], where: [] })).toBe(10);
    });
  });

  describe('lastUpdated', () => {
    it('never goes backwards for a resource, even when the clock does', async () => {
      const first = await put('Patient', 'p1');
      const second = await atTime(first.lastUpdated - 60_000, () => put('Patient', 'p1'));
      expect(second.lastUpdated).toBe(first.lastUpdated);
      expect(JSON.parse(second.body!).lastUpdated).toBe(first.lastUpdated);
      await clockPast(first.lastUpdated);
      const third = await put('Patient', 'p1');
      expect(third.lastUpdated).toBeGreaterThan(first.lastUpdated);
    });
  });

  describe('history', () => {
    const T = 1_700_000_000_000;
    let all: StoredVersion[];

    /** 26 versions over a few timestamps, with many ties so the tie-breakers matter. */
    beforeEach(async () => {
      await atTime(T, async () => {
        for (const id of ['p1', 'p2', 'p3']) await put('Patient', id);
        await put('Observation', 'o1');
        await put('Patient', 'p1');
      });
      await atTime(T + 10, async () => {
        await put('Observation', 'o1');
        await put('Observation', 'o2');
        await remove('Patient', 'p2');
        await put('Encounter', 'e1');
      });
      for (let i = 0; i < 8; i++) {
        await atTime(T + 20 + i, async () => {
          await put('Patient', 'p1');
          await put('Observation', `o${i % 3}`);
        });
      }
      await atTime(T + 30, () => put('Patient', 'p3'));
      all = await store.history({ limit: 1000 });
    });

    it('lists every version of every type, newest first with type, id, version breaking ties', async () => {
      expect(all).toHaveLength(26);
      expect(all.map(ref)).toEqual([...all].sort(newestFirst).map(ref));
      expect(all.filter((v) => v.deleted).map(ref)).toEqual(['Patient/p2/_history/2']);
      expect(all.slice(-5).map(ref)).toEqual([
        'Patient/p3/_history/1',
        'Patient/p2/_history/1',
        'Patient/p1/_history/2',
        'Patient/p1/_history/1',
        'Observation/o1/_history/1',
      ]);
      for (const version of all) {
        expect(await store.readVersion(version.resourceType, version.id, version.versionId)).toEqual(version);
      }
    });

    it('filters by type and by instance', async () => {
      const patients = await store.history({ resourceType: 'Patient', limit: 1000 });
      expect(patients.map(ref)).toEqual(all.filter((v) => v.resourceType === 'Patient').map(ref));
      const p1 = await store.history({ resourceType: 'Patient', id: 'p1', limit: 1000 });
      expect(p1.map((v) => v.versionId)).toEqual([10, 9, 8, 7, 6, 5, 4, 3, 2, 1]);
    });

    it('applies since (inclusive), notAfter (inclusive) and limit', async () => {
      const since = await store.history({ since: T + 10, limit: 1000 });
      expect(since.map(ref)).toEqual(all.filter((v) => v.lastUpdated >= T + 10).map(ref));
      const notAfter = await store.history({ notAfter: T + 10, limit: 1000 });
      expect(notAfter.map(ref)).toEqual(all.filter((v) => v.lastUpdated <= T + 10).map(ref));
      const window = await store.history({ resourceType: 'Observation', since: T + 10, notAfter: T + 22, limit: 1000 });
      expect(window.map(ref)).toEqual(
        all
          .filter((v) => v.resourceType === 'Observation' && v.lastUpdated >= T + 10 && v.lastUpdated <= T + 22)
          .map(ref),
      );
      expect((await store.history({ limit: 3 })).map(ref)).toEqual(all.slice(0, 3).map(ref));
      expect(await store.history({ limit: 0 })).toEqual([]);
    });

    it('continues strictly after a cursor, whichever key breaks the tie', async () => {
      for (let i = 0; i < all.length; i++) {
        const rest = await store.history({ after: cursorOf(all[i]!), limit: 1000 });
        expect(rest.map(ref)).toEqual(all.slice(i + 1).map(ref));
      }
    });

    it('pages through system, type and instance history without skipping or repeating', async () => {
      for (const query of [{}, { resourceType: 'Observation' }, { resourceType: 'Patient', id: 'p1' }, { since: T + 10 }]) {
        const expected = await store.history({ ...query, limit: 1000 });
        for (const limit of [1, 3, 4]) {
          expect((await pageThrough({ ...query, limit })).map(ref)).toEqual(expected.map(ref));
        }
      }
    });

    it('pages stay consistent while new versions are written between pages', async () => {
      // The fixture's clock lies in the past, so every write below is newer than all of it.
      const pinned = all[0]!.lastUpdated;
      let round = 0;
      const writeMore = async () => {
        round++;
        // Timestamps have millisecond precision: a write in the same millisecond as the newest
        // listed one would tie with it and sort by type and id, so each round starts a new one.
        await new Promise((resolve) => setTimeout(resolve, 2));
        await put('Patient', 'p1');
        await put('Observation', `new-${round}`);
        await remove('Patient', 'p3');
      };
      const paged = await pageThrough({ notAfter: pinned, limit: 4 }, writeMore);
      expect(paged.map(ref)).toEqual(all.map(ref));
      // Unpinned, newer writes sort before the cursor, so later pages cannot pick them up either.
      const before = await store.history({ limit: 1000 });
      const unpinned = await pageThrough({ limit: 5 }, writeMore);
      expect(unpinned.map(ref)).toEqual(before.map(ref));
    });

    it('counts what history lists, with the same filters', async () => {
      expect(await store.countHistory({})).toBe(26);
      expect(await store.countHistory({ resourceType: 'Patient' })).toBe(
        all.filter((v) => v.resourceType === 'Patient').length,
      );
      expect(await store.countHistory({ resourceType: 'Patient', id: 'p2' })).toBe(2);
      expect(await store.countHistory({ since: T + 10, notAfter: T + 21 })).toBe(
        all.filter((v) => v.lastUpdated >= T + 10 && v.lastUpdated <= T + 21).length,
      );
      expect(await store.countHistory({ resourceType: 'Nothing' })).toBe(0);
    });
  });
});
