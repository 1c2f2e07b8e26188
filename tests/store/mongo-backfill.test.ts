import { MongoClient } from 'mongodb';
import { describe, expect, it } from 'vitest';
import { CURRENT, ENTRIES, VERSIONS } from '../../src/store/mongo/documents.js';
import { openMongoStore } from '../../src/store/mongo/mongo-store.js';
import type { IndexEntry, OwnershipRule, SearchCriterion } from '../../src/store/port.js';
import { codeIs, entry, render, token } from './fixtures.js';
import { MONGO_SKIPPED, dropDatabase, freshDatabaseName, mongoUri } from './stores.js';

/**
 * A Mongo database written before the store kept patients: on opening with the ownership rule,
 * every current resource gets its patients from its stored entries, and searches by patient
 * find the older records too.
 */

const OWNERSHIP: OwnershipRule = { ownerType: 'Patient', params: (type) => (type === 'Observation' ? ['subject', 'performer'] : []) };
const subject = (type: string, id: string) => entry('subject', { system: type, value: id });
const performer = (id: string) => entry('performer', { system: 'Patient', value: id });

const run = mongoUri ? describe : describe.skip;

run(mongoUri ? 'MongoStore opened on a database without patients' : `MongoStore opened on a database without patients: ${MONGO_SKIPPED}`, () => {
  it('derives them from the stored entries, by the rule', async () => {
    const uri = mongoUri!;
    const dbName = freshDatabaseName();
    const client = await MongoClient.connect(uri);
    try {
      const old = await openMongoStore({ uri, dbName });
      const put = (type: string, id: string, ...entries: IndexEntry[]) =>
        old.write({ resourceType: type, id, renderBody: render(id), index: { entries, sortKeys: {}, patients: [] } });
      await put('Patient', 'p1', token('gender', null, 'f'));
      await put('Observation', 'o1', token('code', 'L', 'x'), subject('Patient', 'p1'));
      await put('Observation', 'o2', token('code', 'L', 'x'), subject('Patient', 'p2'), performer('p1'));
      await put('Observation', 'o3', token('code', 'L', 'x'), subject('Group', 'p1'));
      await put('Observation', 'gone', token('code', 'L', 'x'), subject('Patient', 'p1'));
      await old.write({ resourceType: 'Observation', id: 'gone' });
      await old.close();
      // As an older release left them: no patients anywhere.
      const db = client.db(dbName);
      await db.collection(CURRENT).updateMany({}, { $unset: { patients: '' } });
      await db.collection(VERSIONS).updateMany({}, { $unset: { patients: '' } });
      await db.collection(ENTRIES).updateMany({}, { $unset: { patient: '' } });

      const store = await openMongoStore({ uri, dbName, ownership: OWNERSHIP });
      const find = async (type: string, ...where: SearchCriterion[]) =>
        (await store.search({ resourceTypes: [type], where, sort: [], limit: 10 })).map((h) => h.version.id);
      const of = (...ids: string[]): SearchCriterion => ({ kind: 'patient', ids });
      expect(await find('Observation', of('p1'), codeIs('code', 'x'))).toEqual(['o1', 'o2']);
      expect(await find('Observation', of('p2'))).toEqual(['o2']);
      expect(await find('Patient', of('p1'))).toEqual(['p1']);
      expect(await store.count({ resourceTypes: ['Observation'], where: [of('p1', 'p2')] })).toBe(2);
      // The single patient is on the entries again; none where there are two.
      const patientOnEntries = async (id: string) => (await db.collection(ENTRIES).find({ id }).toArray()).map((e) => e.patient as string | undefined);
      expect(new Set(await patientOnEntries('o1'))).toEqual(new Set(['p1']));
      expect(new Set(await patientOnEntries('o2'))).toEqual(new Set([undefined]));
      expect(await db.collection(CURRENT).countDocuments({ patients: { $exists: false } })).toBe(0);
      await store.close();
    } finally {
      await client.close();
      await dropDatabase(uri, dbName);
    }
  });
});
