/**
 * The embedded store's tables. Bodies live once, in resource_version; resource_current is a
 * narrow pointer table (newest version per resource) that searches join through; token_index
 * holds the search values of current versions only.
 */
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
  PRIMARY KEY (resource_type, id)
) WITHOUT ROWID;

CREATE TABLE IF NOT EXISTS token_index (
  resource_type TEXT NOT NULL,
  id TEXT NOT NULL,
  param TEXT NOT NULL,
  system TEXT,
  code TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS token_index_lookup ON token_index (resource_type, param, code, system);
CREATE INDEX IF NOT EXISTS token_index_owner ON token_index (resource_type, id);
`;
