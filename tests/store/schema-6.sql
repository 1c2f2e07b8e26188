-- The embedded store's schema version 6 as released (src/store/sqlite/schema.ts at 990acdf), for the migration test.
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
  PRIMARY KEY (resource_type, id, seq)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS search_index_value ON search_index (resource_type, param, v0, s0) WHERE v0 IS NOT NULL;
CREATE INDEX IF NOT EXISTS search_index_range ON search_index (resource_type, param, wc, l0, h0) WHERE wc IS NOT NULL;
CREATE INDEX IF NOT EXISTS search_index_multi ON search_index (resource_type, param, l0, h0) WHERE m = 1;

