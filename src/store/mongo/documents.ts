import type { Db, IndexDescription } from 'mongodb';
import type { IndexValue, ResourceIndex, SortKey } from '../port.js';
import type { BodyFields } from './bodies.js';

/**
 * The Mongo store's collections. Without multi-document transactions (FerretDB 1.x has none),
 * resource_versions is the source of truth: inserting a version under its natural _id decides
 * which concurrent writer gets that number, and numbers have no gaps. resource_current is a
 * search pointer per resource, written after the version and its search entries; it may
 * briefly lag behind (or, on FerretDB, briefly step back under concurrent writers) but readers
 * of a single resource never rely on it alone.
 *
 * Search entries live one per document, as in the embedded store's search_index, because a
 * match must hold within one entry (a date's low and high, a composite's components) and
 * FerretDB 1.x cannot $elemMatch on several fields of an embedded array. Entries belong to a
 * version (`owner`); a search counts only those of the version its pointer names.
 *
 * The _ids are natural keys, so single-resource reads and writes are lookups by _id: the
 * primary index on MongoDB, and the one filter FerretDB 1.x hands to its SQLite backend
 * rather than decoding every document in Go.
 */

export const VERSIONS = 'resource_versions';
export const CURRENT = 'resource_current';
export const ENTRIES = 'search_entries';

/** Sort keys by field-safe parameter name (see sortKeyField). */
export type StoredSortKeys = Record<string, SortKey>;

export interface VersionDocument extends BodyFields {
  _id: string;
  resourceType: string;
  id: string;
  versionId: number;
  lastUpdated: number;
  deleted: boolean;
  /** Kept with the version so that any writer can bring the pointer up to it. */
  sortKeys: StoredSortKeys;
  /** ResourceIndex.patients of the version (none for a tombstone); kept for the same reason. */
  patients: string[];
}

export interface CurrentDocument {
  _id: string;
  resourceType: string;
  id: string;
  versionId: number;
  /** The _id of the current version, which its search entries name as owner. */
  versionKey: string;
  deleted: boolean;
  lastUpdated: number;
  sortKeys: StoredSortKeys;
  /** The patients the current version belongs to: a patient list is one indexed $in here. */
  patients: string[];
}

const SLOT_FIELDS = { system: 's', value: 'v', text: 't', low: 'l', high: 'h' } as const;

/** s0, v0, t0, l0, h0 … s2 … h2, as the embedded store's columns. */
type SlotField = `${(typeof SLOT_FIELDS)[keyof IndexValue]}${0 | 1 | 2}`;

/** A search entry; a slot field is absent where the value has none. */
export type EntryDocument = {
  resourceType: string;
  id: string;
  versionId: number;
  owner: string;
  param: string;
  /**
   * The resource's patient when it has exactly one (absent for none or several, so an entry is
   * never repeated per patient): "code X of these patients" is one index seek per patient.
   */
  patient?: string;
} & Partial<Record<SlotField, string | number>>;

// JSON of a tuple is injective whatever characters the parts contain, unlike a joined string.
export const versionKey = (resourceType: string, id: string, versionId: number): string =>
  JSON.stringify([resourceType, id, versionId]);
export const resourceKey = (resourceType: string, id: string): string => JSON.stringify([resourceType, id]);

/** A parameter name as a field name: Mongo gives '.' and a leading '$' meanings of their own. */
export const sortKeyField = (param: string): string =>
  param.replace(/[%.$]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);

export function storedSortKeys(index: ResourceIndex | undefined): StoredSortKeys {
  return Object.fromEntries(
    Object.entries(index?.sortKeys ?? {}).map(([param, { min, max }]) => [sortKeyField(param), { min, max }]),
  );
}

export const slotField = (field: keyof IndexValue, slot: 0 | 1 | 2): SlotField => `${SLOT_FIELDS[field]}${slot}`;

/**
 * The patient every entry of resource `id` with these patients carries: the one, if exactly one
 * and not the resource itself (a Patient is its own).
 */
export const entryPatient = (patients: string[], id: string): string | undefined => (new Set(patients).size === 1 && patients[0] !== id ? patients[0] : undefined);

export function entryDocuments(owner: VersionDocument, index: ResourceIndex | undefined): EntryDocument[] {
  const { resourceType, id, versionId, _id } = owner;
  const patient = entryPatient(index?.patients ?? [], id);
  return (index?.entries ?? []).map(({ param, values }) => {
    const entry: EntryDocument = { resourceType, id, versionId, owner: _id, param, ...(patient !== undefined && { patient }) };
    values.forEach((value, slot) => {
      for (const field of Object.keys(SLOT_FIELDS) as (keyof IndexValue)[]) {
        // Absent and null are one thing to a search ("isNull"), so neither is stored.
        const v = value[field];
        if (v !== undefined && v !== null) entry[slotField(field, slot as 0 | 1 | 2)] = v;
      }
    });
    return entry;
  });
}

const INDEXES: Record<string, IndexDescription[]> = {
  [VERSIONS]: [
    // Redundant with _id for uniqueness, but states the invariant and serves instance history.
    { name: 'version_key', key: { resourceType: 1, id: 1, versionId: 1 }, unique: true },
    { name: 'history', key: { lastUpdated: -1, resourceType: -1, id: -1, versionId: -1 } },
    { name: 'type_history', key: { resourceType: 1, lastUpdated: -1, id: -1, versionId: -1 } },
  ],
  [CURRENT]: [
    { name: 'resource_key', key: { resourceType: 1, id: 1 }, unique: true },
    { name: 'version_key', key: { versionKey: 1 } },
    { name: 'by_time', key: { resourceType: 1, lastUpdated: 1 } },
    { name: 'by_patient', key: { resourceType: 1, patients: 1 } },
  ],
  [ENTRIES]: [
    { name: 'owner', key: { owner: 1 } },
    { name: 'by_resource', key: { resourceType: 1, id: 1, versionId: 1 } },
    // One value index, with the entry's patient (set when its resource has exactly one) before
    // the system: "code X of these patients" is a seek per patient, and no entry is indexed twice.
    { name: 'value_patient', key: { resourceType: 1, param: 1, v0: 1, patient: 1, s0: 1 } },
    { name: 'text', key: { resourceType: 1, param: 1, t0: 1 } },
    { name: 'low', key: { resourceType: 1, param: 1, l0: 1 } },
    { name: 'high', key: { resourceType: 1, param: 1, h0: 1 } },
  ],
};

/** Indexes earlier releases made that the ones above replace. */
const REPLACED: Record<string, string[]> = { [ENTRIES]: ['value'] };

/**
 * Idempotent: creating an index that already exists with the same definition is a no-op.
 * One index per command, because FerretDB 1.24 drops the connection when a single
 * createIndexes command names several indexes that already exist (a store reopened).
 */
export async function ensureIndexes(db: Db): Promise<void> {
  for (const [collection, indexes] of Object.entries(INDEXES)) {
    for (const index of indexes) await db.collection(collection).createIndexes([index]);
  }
  for (const [collection, names] of Object.entries(REPLACED)) {
    const existing = new Set((await db.collection(collection).listIndexes().toArray()).map((index) => index.name as string));
    for (const name of names) if (existing.has(name)) await db.collection(collection).dropIndex(name);
  }
}
