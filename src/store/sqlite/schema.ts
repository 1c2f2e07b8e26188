/**
 * The embedded store's tables. Bodies live once, in resource_version; resource_current is a
 * narrow pointer table (newest version per resource, with its precomputed sort keys as JSON)
 * that searches filter and page through; search_index holds the normalised search values of
 * current versions (up to three components each, for composites).
 */
export const SCHEMA_VERSION = 5;

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
  PRIMARY KEY (resource_type, id, seq)
) WITHOUT ROWID;
-- Clustered by owner, so a resource's entries share pages; each lookup index is partial, so an
-- entry is written only into the indexes that can find it (tokens never into the date ones).
-- Everything searched by text (codes, folded strings, display texts, URLs) is in v0.
CREATE INDEX IF NOT EXISTS search_index_value ON search_index (resource_type, param, v0, s0) WHERE v0 IS NOT NULL;
-- Range indexes carry the other bound too, so a range test never has to visit the table.
CREATE INDEX IF NOT EXISTS search_index_low ON search_index (resource_type, param, l0, h0) WHERE l0 IS NOT NULL;
CREATE INDEX IF NOT EXISTS search_index_high ON search_index (resource_type, param, h0, l0) WHERE h0 IS NOT NULL;

`;
