import type { OwnershipRule } from '../port.js';

/**
 * The embedded store's tables. Bodies live once, in resource_version; resource_current is a
 * narrow pointer table (newest version per resource, with its precomputed sort keys as JSON)
 * that searches filter and page through, and gives each resource a number of its own, its doc;
 * search_index holds the normalised search values of current versions (up to three components
 * each, for composites) by doc, each with the code of its (type, parameter) pair from
 * search_param, and the patient of each resource that has one; resource_patient the patients of
 * each resource that has several.
 */
export const SCHEMA_VERSION = 8;

/** The largest finite width class: "unbounded" (open ranges, or wider than any power of two). */
export const UNBOUNDED_WIDTH = Number.MAX_VALUE;

/**
 * The width class of a range entry [low, high]: the least power of two at least |high - low|
 * (0 for a point). An entry of class w with high >= A has low >= A - w, and with high <= B has
 * low <= B + w, so every range test is a bounded scan of low within each class.
 */
export function widthClass(low: number | null | undefined, high: number | null | undefined): number | null {
  if (typeof low !== 'number') return null;
  if (typeof high !== 'number') return UNBOUNDED_WIDTH;
  const d = Math.abs(high - low);
  if (d === 0) return 0;
  if (!Number.isFinite(d)) return UNBOUNDED_WIDTH;
  let w = 2 ** Math.ceil(Math.log2(d));
  if (w < d) w *= 2;
  return Number.isFinite(w) ? w : UNBOUNDED_WIDTH;
}

/** From version 5: the width class and multi-entry flag, computed from the stored entries. */
export const MIGRATE_FROM_5 = `
ALTER TABLE search_index ADD COLUMN wc REAL;
ALTER TABLE search_index ADD COLUMN m INTEGER;
UPDATE search_index SET wc = fhir_width_class(l0, h0) WHERE l0 IS NOT NULL;
UPDATE search_index SET m = 1 WHERE l0 IS NOT NULL AND (resource_type, id, param) IN
  (SELECT resource_type, id, param FROM search_index WHERE l0 IS NOT NULL GROUP BY resource_type, id, param HAVING COUNT(*) > 1);
DROP INDEX IF EXISTS search_index_low;
DROP INDEX IF EXISTS search_index_high;
`;

/**
 * The patients of resources that belong to several (ResourceIndex.patients, a row each): rare,
 * so narrow and cheap. A resource of exactly one patient has none here: its entries carry that
 * patient (search_index.patient), and among them is the compartment reference that names it.
 * Keyed by resource (its doc), as every write replaces a resource's rows; found by type and
 * patient through resource_patient_by_patient (which carries the doc).
 */
const RESOURCE_PATIENT = `
CREATE TABLE IF NOT EXISTS resource_patient (
  doc INTEGER NOT NULL,
  resource_type TEXT NOT NULL,
  patient TEXT NOT NULL,
  PRIMARY KEY (doc, patient)
) WITHOUT ROWID;`;

/** resource_patient as schema 7 had it (the 6 -> 7 steps fill it, 7 -> 8 converts it). */
const RESOURCE_PATIENT_7 = `
CREATE TABLE IF NOT EXISTS resource_patient (
  resource_type TEXT NOT NULL,
  id TEXT NOT NULL,
  patient TEXT NOT NULL,
  PRIMARY KEY (resource_type, id, patient)
) WITHOUT ROWID;`;

/**
 * From version 6, as statements to run in order: the patients of each resource, derived from
 * its stored entries by the rule the indexer applies (`ownerType` resources are their own;
 * others belong to the `ownerType` targets of their `params` entries), into the entries of
 * resources with one patient and resource_patient for those with several. The value index is
 * dropped first (the update would otherwise rewrite it row by row); SCHEMA creates it again,
 * with the patient. The result is a file of schema 7, for MIGRATE_FROM_7.
 */
export function migrateFrom6(rule: OwnershipRule, resourceTypes: string[]): { sql: string; params: unknown[] }[] {
  const owned = resourceTypes
    .filter((type) => type !== rule.ownerType && rule.params(type).length > 0)
    .map((type) => {
      const names = rule.params(type);
      return {
        sql: `INSERT OR IGNORE INTO temp.migrate_owner (resource_type, id, patient)
          SELECT resource_type, id, v0 FROM search_index
          WHERE resource_type = ? AND param IN (${names.map(() => '?').join(', ')}) AND s0 = ? AND v0 IS NOT NULL`,
        params: [type, ...names, rule.ownerType],
      };
    });
  return [
    { sql: 'DROP INDEX IF EXISTS search_index_value', params: [] },
    { sql: 'ALTER TABLE search_index ADD COLUMN patient TEXT', params: [] },
    { sql: RESOURCE_PATIENT_7, params: [] },
    { sql: 'CREATE TEMP TABLE migrate_owner (resource_type TEXT, id TEXT, patient TEXT, PRIMARY KEY (resource_type, id, patient)) WITHOUT ROWID', params: [] },
    ...owned,
    {
      sql: `UPDATE search_index SET patient = o.patient
        FROM (SELECT resource_type, id, MIN(patient) AS patient FROM temp.migrate_owner GROUP BY resource_type, id HAVING COUNT(*) = 1) o
        WHERE search_index.resource_type = o.resource_type AND search_index.id = o.id`,
      params: [],
    },
    {
      sql: `INSERT INTO resource_patient (resource_type, id, patient)
        SELECT resource_type, id, patient FROM temp.migrate_owner
        WHERE (resource_type, id) IN (SELECT resource_type, id FROM temp.migrate_owner GROUP BY resource_type, id HAVING COUNT(*) > 1)`,
      params: [],
    },
    { sql: 'DROP TABLE temp.migrate_owner', params: [] },
  ];
}

/**
 * The interned (resource type, parameter) pairs, and the entries. A code is never deleted or
 * reused, and is committed before any entry that has it (see SqliteStore.codesFor): an entry
 * never names a pair that is not here.
 */
const SEARCH_TABLES = `
CREATE TABLE IF NOT EXISTS search_param (
  code INTEGER PRIMARY KEY,
  resource_type TEXT NOT NULL,
  param TEXT NOT NULL,
  UNIQUE (resource_type, param)
);

CREATE TABLE IF NOT EXISTS search_index (
  doc INTEGER NOT NULL,
  seq INTEGER NOT NULL,
  code INTEGER NOT NULL,
  s0 TEXT, v0 TEXT, t0 TEXT, l0 REAL, h0 REAL,
  s1 TEXT, v1 TEXT, t1 TEXT, l1 REAL, h1 REAL,
  s2 TEXT, v2 TEXT, t2 TEXT, l2 REAL, h2 REAL,
  wc REAL,
  m INTEGER,
  patient TEXT,
  PRIMARY KEY (doc, seq)
) WITHOUT ROWID;`;

/** The pointer table: one row per resource, numbered (doc) on its first version. */
const RESOURCE_CURRENT = `CREATE TABLE IF NOT EXISTS resource_current (
  doc INTEGER PRIMARY KEY,
  resource_type TEXT NOT NULL,
  id TEXT NOT NULL,
  version_id INTEGER NOT NULL,
  deleted INTEGER NOT NULL,
  last_updated INTEGER NOT NULL,
  sort_keys TEXT,
  UNIQUE (resource_type, id)
)`;

const ENTRY_VALUES = 's0, v0, t0, l0, h0, s1, v1, t1, l1, h1, s2, v2, t2, l2, h2, wc, m, patient';

/**
 * From version 7, as statements to run in order: every resource gets a doc (in type and id
 * order), every (type, parameter) pair of the entries a code, and the entries and patients are
 * copied under them into new tables that replace the old. Each copy reads the old table in its
 * key order, which is the new key's (docs follow type and id), so nothing is sorted and the
 * rows are appended. The old indexes are dropped first (their names are the new ones'); SCHEMA
 * creates the new indexes after, on the filled tables.
 */
export const MIGRATE_FROM_7 = [
  'DROP INDEX IF EXISTS resource_current_by_time',
  'DROP INDEX IF EXISTS search_index_value',
  'DROP INDEX IF EXISTS search_index_range',
  'DROP INDEX IF EXISTS search_index_multi',
  'DROP INDEX IF EXISTS resource_patient_by_patient',
  'ALTER TABLE resource_current RENAME TO resource_current_7',
  'ALTER TABLE search_index RENAME TO search_index_7',
  'ALTER TABLE resource_patient RENAME TO resource_patient_7',
  RESOURCE_CURRENT,
  `INSERT INTO resource_current (resource_type, id, version_id, deleted, last_updated, sort_keys)
    SELECT resource_type, id, version_id, deleted, last_updated, sort_keys FROM resource_current_7 ORDER BY resource_type, id`,
  ...SEARCH_TABLES.split(';').map((sql) => sql.trim()).filter((sql) => sql.length > 0),
  'INSERT INTO search_param (resource_type, param) SELECT DISTINCT resource_type, param FROM search_index_7 ORDER BY resource_type, param',
  `INSERT INTO search_index (doc, seq, code, ${ENTRY_VALUES})
    SELECT c.doc, e.seq, p.code, ${ENTRY_VALUES.split(', ').map((column) => `e.${column}`).join(', ')}
    FROM search_index_7 e
    JOIN resource_current c ON c.resource_type = e.resource_type AND c.id = e.id
    JOIN search_param p ON p.resource_type = e.resource_type AND p.param = e.param
    ORDER BY e.resource_type, e.id, e.seq`,
  RESOURCE_PATIENT.trim().replace(/;$/, ''),
  `INSERT INTO resource_patient (doc, resource_type, patient)
    SELECT c.doc, o.resource_type, o.patient FROM resource_patient_7 o
    JOIN resource_current c ON c.resource_type = o.resource_type AND c.id = o.id
    ORDER BY o.resource_type, o.id, o.patient`,
  'DROP TABLE resource_current_7',
  'DROP TABLE search_index_7',
  'DROP TABLE resource_patient_7',
];

export const SCHEMA = `
CREATE TABLE IF NOT EXISTS resource_version (
  resource_type TEXT NOT NULL,
  id TEXT NOT NULL,
  version_id INTEGER NOT NULL,
  last_updated INTEGER NOT NULL,
  deleted INTEGER NOT NULL,
  body TEXT,
  UNIQUE (resource_type, id, version_id)
);
CREATE INDEX IF NOT EXISTS resource_version_by_time
  ON resource_version (last_updated DESC, resource_type DESC, id DESC, version_id DESC);
CREATE INDEX IF NOT EXISTS resource_version_by_type_time
  ON resource_version (resource_type, last_updated DESC, id DESC, version_id DESC);

${RESOURCE_CURRENT};
-- doc: the resource's number, given once and never reused (a deleted resource keeps its row),
-- in order of creation, so a new resource's entries go at the end of search_index.
CREATE INDEX IF NOT EXISTS resource_current_by_time ON resource_current (resource_type, last_updated);
-- The type and id of each doc, narrow: a page in id order turns the docs a search lists into
-- ids (see Compiler.owners in search-sql.ts), and the rows themselves, with their sort keys,
-- are several times as wide (the search bench's token page, 2,900 matches among 100,000
-- resources: 13 ms through the rows, 9 through this index; 4 when entries held ids).
CREATE INDEX IF NOT EXISTS resource_current_ids ON resource_current (doc, resource_type, id);

${SEARCH_TABLES}
-- Clustered by doc, so a resource's entries share pages, and a new resource's go at the end.
-- Each lookup index is partial, so an entry is written only into the indexes that can find it
-- (tokens never into the date ones), and starts with the entry's code: one integer for the type
-- and parameter, and the doc after it as the key, where the text of the type, parameter and id
-- (36 characters) made up most of each index entry. Everything searched by text (codes, folded
-- strings, display texts, URLs) is in v0. Each entry carries its resource's patient when there
-- is exactly one (NULL for none or several, so an entry is never repeated per patient, and for a
-- Patient, which is its own): "code X of these patients" is a seek per patient in this one
-- index, and s0 after it is still checked in the index. A resource of one patient is found by
-- patient through the entry of its compartment reference (v0 = patient).
CREATE INDEX IF NOT EXISTS search_index_value ON search_index (code, v0, patient, s0) WHERE v0 IS NOT NULL;
-- Ranges (dates, numbers, quantities) by width class (wc, see widthClass) then low bound: a
-- range test is one bounded scan of l0 per class present, whatever its prefix. m = 1 marks the
-- range entries of a resource with several for the same parameter: criteria ANDed on one
-- parameter can be met by different entries only there.
CREATE INDEX IF NOT EXISTS search_index_range ON search_index (code, wc, l0, h0) WHERE wc IS NOT NULL;
CREATE INDEX IF NOT EXISTS search_index_multi ON search_index (code, l0, h0) WHERE m = 1;
-- The entries in neither of the others (a token with a system and no code, a text alone,
-- presence): with them every entry of a code is found from the code, not by a scan of all.
CREATE INDEX IF NOT EXISTS search_index_rest ON search_index (code) WHERE v0 IS NULL AND wc IS NULL;

${RESOURCE_PATIENT}
CREATE INDEX IF NOT EXISTS resource_patient_by_patient ON resource_patient (resource_type, patient);

`;
