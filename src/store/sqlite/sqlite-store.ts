import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import Database from 'better-sqlite3';
import {
  VersionConflictError,
  type CurrentQuery,
  type HistoryQuery,
  type ResourceStore,
  type StoredVersion,
  type WriteRequest,
} from '../port.js';
import { SCHEMA } from './schema.js';
import { compileCurrentQuery, compileHistoryFilter } from './sql.js';

interface VersionRow {
  resource_type: string;
  id: string;
  version_id: number;
  last_updated: number;
  deleted: number;
  body: string | null;
}

export interface SqliteStoreOptions {
  /** A file path, or ':memory:'. */
  path: string;
  /**
   * NORMAL (the default) keeps every committed write across a crash of the server process;
   * FULL also across a power loss, at the cost of an fsync per write.
   */
  synchronous?: 'NORMAL' | 'FULL';
}

function toStored(row: VersionRow): StoredVersion {
  const stored: StoredVersion = {
    resourceType: row.resource_type,
    id: row.id,
    versionId: row.version_id,
    lastUpdated: row.last_updated,
    deleted: row.deleted === 1,
  };
  if (row.body !== null) stored.body = row.body;
  return stored;
}

export class SqliteStore implements ResourceStore {
  readonly kind = 'sqlite';
  private readonly db: Database.Database;
  private readonly latest: Database.Statement<[string, string], VersionRow>;
  private readonly exact: Database.Statement<[string, string, number], VersionRow>;
  private readonly insertVersion: Database.Statement;
  private readonly upsertCurrent: Database.Statement;
  private readonly clearTokens: Database.Statement;
  private readonly insertToken: Database.Statement;
  private readonly writeTx: (request: WriteRequest) => StoredVersion;

  constructor(options: SqliteStoreOptions) {
    if (options.path !== ':memory:') mkdirSync(dirname(options.path), { recursive: true });
    this.db = new Database(options.path);
    this.db.pragma('journal_mode = WAL');
    this.db.pragma(`synchronous = ${options.synchronous ?? 'NORMAL'}`);
    this.db.pragma('busy_timeout = 5000');
    this.db.exec(SCHEMA);

    this.latest = this.db.prepare(
      `SELECT * FROM resource_version WHERE resource_type = ? AND id = ?
       ORDER BY version_id DESC LIMIT 1`,
    );
    this.exact = this.db.prepare(
      'SELECT * FROM resource_version WHERE resource_type = ? AND id = ? AND version_id = ?',
    );
    this.insertVersion = this.db.prepare(
      `INSERT INTO resource_version (resource_type, id, version_id, last_updated, deleted, body)
       VALUES (?, ?, ?, ?, ?, ?)`,
    );
    this.upsertCurrent = this.db.prepare(
      `INSERT INTO resource_current (resource_type, id, version_id, deleted) VALUES (?, ?, ?, ?)
       ON CONFLICT (resource_type, id) DO UPDATE SET version_id = excluded.version_id, deleted = excluded.deleted`,
    );
    this.clearTokens = this.db.prepare('DELETE FROM token_index WHERE resource_type = ? AND id = ?');
    this.insertToken = this.db.prepare(
      'INSERT INTO token_index (resource_type, id, param, system, code) VALUES (?, ?, ?, ?, ?)',
    );
    this.writeTx = this.db.transaction((request: WriteRequest) => this.writeNow(request));
  }

  private writeNow(request: WriteRequest): StoredVersion {
    const { resourceType, id } = request;
    const current = this.latest.get(resourceType, id);
    if (request.expectedVersion !== undefined) {
      const seen = current?.version_id ?? null;
      if (seen !== request.expectedVersion) {
        throw new VersionConflictError(resourceType, id, seen);
      }
    }
    const versionId = (current?.version_id ?? 0) + 1;
    // Never let a version look older than its predecessor, even if the clock steps back.
    const lastUpdated = Math.max(Date.now(), current?.last_updated ?? 0);
    const body = request.renderBody?.(versionId, lastUpdated);
    const deleted = body === undefined;
    this.insertVersion.run(resourceType, id, versionId, lastUpdated, deleted ? 1 : 0, body ?? null);
    this.upsertCurrent.run(resourceType, id, versionId, deleted ? 1 : 0);
    this.clearTokens.run(resourceType, id);
    if (!deleted) {
      for (const token of request.index?.tokens ?? []) {
        this.insertToken.run(resourceType, id, token.param, token.system, token.code);
      }
    }
    const stored: StoredVersion = { resourceType, id, versionId, lastUpdated, deleted };
    if (body !== undefined) stored.body = body;
    return stored;
  }

  async readCurrent(resourceType: string, id: string): Promise<StoredVersion | undefined> {
    const row = this.latest.get(resourceType, id);
    return row && toStored(row);
  }

  async readVersion(resourceType: string, id: string, versionId: number): Promise<StoredVersion | undefined> {
    const row = this.exact.get(resourceType, id, versionId);
    return row && toStored(row);
  }

  async write(request: WriteRequest): Promise<StoredVersion> {
    return this.writeTx(request);
  }

  async findCurrent(query: CurrentQuery): Promise<StoredVersion[]> {
    const { sql, params } = compileCurrentQuery(query);
    const rows = this.db.prepare<unknown[], VersionRow>(sql).all(...params);
    return rows.map(toStored);
  }

  async history(query: HistoryQuery): Promise<StoredVersion[]> {
    const { where, params } = compileHistoryFilter(query);
    const rows = this.db
      .prepare<unknown[], VersionRow>(
        `SELECT * FROM resource_version ${where}
         ORDER BY last_updated DESC, resource_type DESC, id DESC, version_id DESC LIMIT ?`,
      )
      .all(...params, query.limit);
    return rows.map(toStored);
  }

  async countHistory(query: Omit<HistoryQuery, 'after' | 'limit'>): Promise<number> {
    const { where, params } = compileHistoryFilter(query);
    const row = this.db
      .prepare<unknown[], { n: number }>(`SELECT COUNT(*) AS n FROM resource_version ${where}`)
      .get(...params);
    return row?.n ?? 0;
  }

  async close(): Promise<void> {
    this.db.close();
  }
}
