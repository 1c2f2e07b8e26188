-- The embedded store's schema version 7 as released (src/store/sqlite/schema.ts at aa29a9e), for the migration test.
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
CREATE TABLE IF NOT EXISTS resource_current (
  resource_type TEXT NOT NULL,
  id TEXT NOT NULL,
  version_id INTEGER NOT NULL,
  deleted INTEGER NOT NULL,
  last_updated INTEGER NOT NULL,
  sort_keys TEXT,
  PRIMARY KEY (resource_type, id)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS resource_current_by_time ON resource_current (resource_type, last_updated);
CREATE TABLE IF NOT EXISTS search_index (
  resource_type TEXT NOT NULL,
  id TEXT NOT NULL,
  seq INTEGER NOT NULL,
  param TEXT NOT NULL,
  s0 TEXT, v0 TEXT, t0 TEXT, l0 REAL, h0 REAL,
  s1 TEXT, v1 TEXT, t1 TEXT, l1 REAL, h1 REAL,
  s2 TEXT, v2 TEXT, t2 TEXT, l2 REAL, h2 REAL,
  wc REAL,
  m INTEGER,
  patient TEXT,
  PRIMARY KEY (resource_type, id, seq)
) WITHOUT ROWID;
-- Clustered by owner, so a resource's entries share pages; each lookup index is partial, so an
-- entry is written only into the indexes that can find it (tokens never into the date ones).
-- Everything searched by text (codes, folded strings, display texts, URLs) is in v0. Each entry
-- carries its resource's patient when there is exactly one (NULL for none or several, so an
-- entry is never repeated per patient, and for a Patient, which is its own): "code X of these
-- patients" is a seek per patient in this one index, and s0 after it is still checked in the
-- index. A resource of one patient is found by patient through the entry of its compartment
-- reference (v0 = patient).
CREATE INDEX IF NOT EXISTS search_index_value ON search_index (resource_type, param, v0, patient, s0) WHERE v0 IS NOT NULL;
-- Ranges (dates, numbers, quantities) by width class (wc, see widthClass) then low bound: a
-- range test is one bounded scan of l0 per class present, whatever its prefix. m = 1 marks the
-- range entries of a resource with several for the same parameter: criteria ANDed on one
-- parameter can be met by different entries only there.
CREATE INDEX IF NOT EXISTS search_index_range ON search_index (resource_type, param, wc, l0, h0) WHERE wc IS NOT NULL;
CREATE INDEX IF NOT EXISTS search_index_multi ON search_index (resource_type, param, l0, h0) WHERE m = 1;
CREATE TABLE IF NOT EXISTS resource_patient (
  resource_type TEXT NOT NULL,
  id TEXT NOT NULL,
  patient TEXT NOT NULL,
  PRIMARY KEY (resource_type, id, patient)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS resource_patient_by_patient ON resource_patient (resource_type, patient);
