import type { Collection, Db } from 'mongodb';
import type { OwnershipRule } from '../port.js';
import { CURRENT, ENTRIES, VERSIONS, entryPatient, type CurrentDocument, type EntryDocument, type VersionDocument } from './documents.js';

/**
 * Databases written before the store kept patients (CurrentDocument.patients, EntryDocument.patient)
 * get them at start-up, derived from the stored entries by the rule the indexer applies. Without
 * them a search for some patients' records would find none of the older ones. Runs until no
 * pointer lacks the field; idempotent, so an interrupted run simply continues next time.
 */

const BATCH = 500;

export async function backfillPatients(db: Db, rule: OwnershipRule): Promise<number> {
  const current = db.collection<CurrentDocument>(CURRENT);
  const versions = db.collection<VersionDocument>(VERSIONS);
  const entries = db.collection<EntryDocument>(ENTRIES);
  let done = 0;
  for (;;) {
    const pointers = await current
      .find({ patients: { $exists: false } }, { projection: { _id: 1, resourceType: 1, id: 1, versionKey: 1, deleted: 1 } })
      .limit(BATCH)
      .toArray();
    if (pointers.length === 0) return done;
    await Promise.all(
      pointers.map(async (pointer) => {
        const patients = pointer.deleted ? [] : await patientsOf(pointer, rule, entries);
        const patient = entryPatient(patients, pointer.id);
        if (patient !== undefined) await entries.updateMany({ owner: pointer.versionKey }, { $set: { patient } });
        await versions.updateOne({ _id: pointer.versionKey, patients: { $exists: false } }, { $set: { patients } });
        // Only if the pointer still names that version: a newer write has brought its own.
        await current.updateOne({ _id: pointer._id, versionKey: pointer.versionKey, patients: { $exists: false } }, { $set: { patients } });
      }),
    );
    done += pointers.length;
  }
}

async function patientsOf(pointer: Pick<CurrentDocument, 'resourceType' | 'id' | 'versionKey'>, rule: OwnershipRule, entries: Collection<EntryDocument>): Promise<string[]> {
  if (pointer.resourceType === rule.ownerType) return [pointer.id];
  const params = rule.params(pointer.resourceType);
  if (params.length === 0) return [];
  const references = await entries
    .find({ owner: pointer.versionKey, param: { $in: params }, s0: rule.ownerType }, { projection: { _id: 0, v0: 1 } })
    .toArray();
  return [...new Set(references.flatMap((r) => (typeof r.v0 === 'string' ? [r.v0] : [])))];
}
