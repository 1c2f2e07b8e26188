import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import Database from 'better-sqlite3';
import {
  SearchTooLargeError,
  VersionConflictError,
  type HistoryQuery,
  bodyToWrite,
  restampJson,
  type IndexEntry,
  type OwnershipRule,
  type ResourceIndex,
  type ResourceStore,
  type SearchHit,
  type SearchQuery,
  type StoreShare,
  type StoredVersion,
  type WriteRequest,
} from '../port.js';
import { CheckpointSignal, Checkpointer } from './checkpointer.js';
import { MIGRATE_FROM_5, MIGRATE_FROM_7, migrateFrom6, SCHEMA, SCHEMA_VERSION, widthClass } from './schema.js';
import { compileCount, compileSearch } from './search-sql.js';
import { isStatementTooLarge } from './sql-limits.js';
import { compileHistoryFilter } from './sql.js';
import { WriteGate, type GateParty } from './write-gate.js';
import { portableWrite, WriterThread, type PortableWrite, type WrittenVersion } from './writer-thread.js';

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
  /**
   * Shares the file with a store on another thread (see `share`): the gate of that store, which
   * side this one is, and how to nudge that store's checkpointer (a worker's store runs none of
   * its own). A store makes a gate of its own, as the main side, when omitted.
   */
  gate?: { buffer: SharedArrayBuffer; party: GateParty; checkpoints?: SharedArrayBuffer };
  /** This connection's page cache (default 32 MB). */
  cacheMB?: number;
  /**
   * Write bundle-sized `writeMany`s, and single writes that come while others wait, whose
   * bodies are plain data (WriteRequest.rendered) on a thread of their own (see
   * writer-thread.ts). File databases only; off by default.
   */
  writerThread?: boolean;
  /**
   * How the layers above derive a resource's patients from its entries: needed to search by
   * patient (a resource of one patient is found through its compartment reference) and to
   * migrate a file of schema 6 or older (whose entries carry no patients; refused without).
   */
  ownership?: OwnershipRule;
}

/** What another thread needs to open the same database file as a store of its own. */
export interface SqliteSharing {
  path: string;
  synchronous: 'NORMAL' | 'FULL';
  gate: SharedArrayBuffer;
  /** The signal of the sharing store's checkpointer. */
  checkpoints?: SharedArrayBuffer;
}

const ENTRY_ROWS_PER_INSERT = 50;
/**
 * Fewer writes than the least stay on this thread: handing them over would cost more than it
 * frees. More than the most stay too: handing over copies every body and index (a 10,000-entry
 * transaction took the server from about 430 to 560 MB), and such a bundle is rare.
 */
const WRITER_MIN_WRITES = 20;
const WRITER_MAX_WRITES = 1000;
/**
 * The writer thread's page cache. Its writes touch index pages all over the file, and another
 * connection's commit empties it anyway: 16 and 128 MB gave the same 300 us per indexed
 * Observation measured alone, and 16 and 96 MB the same bundle ingest, so 8 MB does.
 */
const WRITER_CACHE_MB = 8;
/** The code a search binds for a (type, parameter) pair no entry has: it matches nothing. */
const NO_CODE = -1;

/**
 * The columns an entry fills, by its shape: most entries are one token, reference or text (no
 * range, no second component), and every value bound costs (a 21-column row took 2.2 us to
 * insert, a 7-column one 1.3), so each shape binds only its own columns; SQLite fills the rest
 * with NULL.
 */
const ENTRY_SHAPES = {
  value: ['doc', 'seq', 'code', 's0', 'v0', 't0', 'patient'],
  range: ['doc', 'seq', 'code', 's0', 'v0', 't0', 'l0', 'h0', 'wc', 'm', 'patient'],
  composite: ['doc', 'seq', 'code', 's0', 'v0', 't0', 'l0', 'h0', 's1', 'v1', 't1', 'l1', 'h1', 's2', 'v2', 't2', 'l2', 'h2', 'wc', 'm', 'patient'],
} as const;
type EntryShape = keyof typeof ENTRY_SHAPES;

function shapeOf(entry: IndexEntry): EntryShape {
  if (entry.values.length > 1) return 'composite';
  return typeof entry.values[0].low === 'number' || typeof entry.values[0].high === 'number' ? 'range' : 'value';
}

/**
 * OR FAIL: a statement of many rows that may abort halfway makes SQLite copy every page it
 * touches into a statement journal, to undo its own rows (about 4 % of a 480-write writeMany,
 * and of a bundle load's writer thread 6 %). A write that fails is undone whole anyway, by its
 * savepoint or transaction (see commitDirect); a reindex, which has neither, is left partly done
 * by a failure midway with or without this.
 */
function insertEntriesSql(shape: EntryShape, rows: number): string {
  const columns = ENTRY_SHAPES[shape];
  const row = `(${new Array(columns.length).fill('?').join(', ')})`;
  return `INSERT OR FAIL INTO search_index (${columns.join(', ')}) VALUES ${new Array(rows).fill(row).join(', ')}`;
}

/** Sort keys as one JSON column, {"param": [min, max]}: one write instead of a row each. */
function sortKeysJson(index: ResourceIndex | undefined): string | null {
  if (!index) return null;
  const keys = Object.fromEntries(Object.entries(index.sortKeys).map(([param, k]) => [param, [k.min, k.max]]));
  return JSON.stringify(keys);
}

/** What the writer thread stored for `write`, as a StoredVersion (its body stamped as the thread stamped it). */
function storedOf(write: PortableWrite, { versionId, lastUpdated, deleted }: WrittenVersion): StoredVersion {
  const { resourceType, id, rendered } = write;
  const stored: StoredVersion = { resourceType, id, versionId, lastUpdated, deleted };
  if (rendered && !deleted) stored.body = restampJson(rendered.json, rendered.lastUpdated, lastUpdated);
  return stored;
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

/**
 * A queued write. `work` runs it in a savepoint of its own (or needs none); `direct` runs the
 * same write without one, and may throw a VersionConflictError only before it has changed
 * anything (see SqliteStore.commitDirect). The same function when the write needs no savepoint.
 */
interface QueuedWork {
  work: () => unknown;
  direct: () => unknown;
  alone: boolean;
  resolve: (v: never) => void;
  reject: (e: unknown) => void;
}

/** A write failed after it may have changed something: the group is redone with savepoints. */
class RedoGuarded extends Error {}

export class SqliteStore implements ResourceStore {
  readonly kind = 'sqlite';
  readonly atomicWriteMany = true;
  private readonly db: Database.Database;
  private readonly latest: Database.Statement<[string, string], VersionRow>;
  private readonly exact: Database.Statement<[string, string, number], VersionRow>;
  private readonly insertVersion: Database.Statement;
  private readonly upsertCurrent: Database.Statement;
  private readonly clearEntries: Database.Statement;
  private readonly clearPatients: Database.Statement;
  private readonly insertPatient: Database.Statement;
  private readonly updateSortKeys: Database.Statement;
  private readonly currentVersion: Database.Statement<[string, string], { doc: number; version_id: number }>;
  private readonly head: Database.Statement<[string, string], { doc: number; version_id: number; last_updated: number; deleted: number }>;
  private readonly addCode: Database.Statement<[string, string]>;
  private readonly readCode: Database.Statement<[string, string], number>;
  /**
   * The code of each (type, parameter) pair known to be committed in search_param: codes are
   * never deleted or changed, so what is here stays true (the other thread's store may have
   * added more: a miss looks in the table again).
   */
  private readonly codes = new Map<string, Map<string, number>>();
  /** Pairs of the queued writes without a code here yet: registered before they are written. */
  private unregistered = new Map<string, Set<string>>();
  private readonly writeTx: (request: WriteRequest) => StoredVersion;
  private readonly writeManyTx: (requests: WriteRequest[]) => StoredVersion[];
  /** Writes waiting for the next group commit. */
  private pending: QueuedWork[] = [];
  /** A flush is scheduled or waiting for the write gate. */
  private flushing = false;
  private readonly gate: WriteGate;
  /** Undefined for an in-memory database, which no other connection can open. */
  readonly share: StoreShare | undefined;
  private readonly inOneTransaction: (work: () => void) => void;
  /** Prepared statements by SQL text: search shapes repeat, and preparing costs more than running. */
  private readonly statements = new Map<string, Database.Statement>();
  /** The multi-row inserts of index entries, by row count. */
  private readonly insertStatements: Record<EntryShape, (Database.Statement | undefined)[]> = { value: [], range: [], composite: [] };
  /** Where plain-data writes can go (see writer-thread.ts), when asked for. */
  private readonly writer: WriterThread | undefined;
  /** Checkpoints on a thread of its own (file databases only; a worker's store nudges its sharer's). */
  private readonly checkpointer: Checkpointer | undefined;
  private readonly checkpoints: Pick<Checkpointer, 'nudge'> | undefined;
  /** Whose record a resource is: for searches by patient (and migrations). */
  private readonly ownership: OwnershipRule | undefined;
  /** codeOf, for the search compiler. */
  private readonly codeOfPair = (resourceType: string, param: string): number => this.codeOf(resourceType, param);

  constructor(options: SqliteStoreOptions) {
    if (options.path !== ':memory:') mkdirSync(dirname(options.path), { recursive: true });
    this.gate = new WriteGate(options.gate?.party ?? 'main', options.gate?.buffer);
    this.db = new Database(options.path);
    this.db.pragma('journal_mode = WAL');
    this.db.pragma(`synchronous = ${options.synchronous ?? 'NORMAL'}`);
    this.db.pragma('busy_timeout = 5000');
    // A 32 MB page cache (index pages are touched on every write) that still fits the memory budget.
    this.db.pragma(`cache_size = ${-1024 * (options.cacheMB ?? 32)}`);
    this.db.pragma('temp_store = memory');
    // The checkpointer's worker copies the WAL into the database file after commits; this
    // connection checkpoints only what is left when the WAL has grown to 20,000 pages (80 MB), so
    // that the WAL can start over (and as the fallback, should the worker not run).
    this.db.pragma('wal_autocheckpoint = 20000');
    this.ownership = options.ownership;
    this.checkSchemaVersion(options.ownership);
    this.db.exec(SCHEMA);
    // Written only when it changes: every connection opens the file (the writer and audit threads
    // too, while requests are being written), and setting it is a write.
    if (this.db.pragma('user_version', { simple: true }) !== SCHEMA_VERSION) this.db.pragma(`user_version = ${SCHEMA_VERSION}`);

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
      `INSERT INTO resource_current (resource_type, id, version_id, deleted, last_updated, sort_keys) VALUES (?, ?, ?, ?, ?, ?)
       ON CONFLICT (resource_type, id) DO UPDATE SET
         version_id = excluded.version_id, deleted = excluded.deleted, last_updated = excluded.last_updated,
         sort_keys = excluded.sort_keys`,
    );
    this.clearEntries = this.db.prepare('DELETE FROM search_index WHERE doc = ?');
    this.clearPatients = this.db.prepare('DELETE FROM resource_patient WHERE doc = ?');
    this.insertPatient = this.db.prepare('INSERT OR IGNORE INTO resource_patient (doc, resource_type, patient) VALUES (?, ?, ?)');
    this.updateSortKeys = this.db.prepare('UPDATE resource_current SET sort_keys = ? WHERE doc = ?');
    this.currentVersion = this.db.prepare('SELECT doc, version_id FROM resource_current WHERE resource_type = ? AND id = ? AND deleted = 0');
    // A write needs only the newest version's number and time (and the resource's doc): from
    // the narrow pointer table, not the newest version's row with its body.
    this.head = this.db.prepare('SELECT doc, version_id, last_updated, deleted FROM resource_current WHERE resource_type = ? AND id = ?');
    this.addCode = this.db.prepare('INSERT OR IGNORE INTO search_param (resource_type, param) VALUES (?, ?)');
    this.readCode = this.db.prepare<[string, string], number>('SELECT code FROM search_param WHERE resource_type = ? AND param = ?').pluck();
    // BEGIN IMMEDIATE: a write takes the write lock before its first read. A deferred one reads
    // first (the current version), and SQLite then refuses it the write lock at once, without
    // the busy timeout, if another connection holds it: as the writer thread did, setting the
    // schema version while opening, in the middle of the first burst of creates (a 500).
    // (Inside a transaction these run as savepoints anyway.)
    this.writeTx = this.db.transaction((request: WriteRequest) => this.writeNow(request)).immediate;
    this.writeManyTx = this.db.transaction((requests: WriteRequest[]) => requests.map((request) => this.writeNow(request))).immediate;
    this.inOneTransaction = this.db.transaction((work: () => void) => work()).immediate;
    if (options.gate && options.gate.party !== 'main') {
      this.checkpoints = options.gate.checkpoints && new CheckpointSignal(options.gate.checkpoints);
    } else if (options.path !== ':memory:') {
      this.checkpointer = new Checkpointer(options.path);
      this.checkpoints = this.checkpointer;
    }
    const sharing: SqliteSharing = {
      path: options.path,
      synchronous: options.synchronous ?? 'NORMAL',
      gate: this.gate.buffer,
      ...(this.checkpointer && { checkpoints: this.checkpointer.signal }),
    };
    this.share = options.path === ':memory:' ? undefined : { kind: this.kind, settings: sharing };
    if (options.writerThread && this.share && !options.gate) {
      const gate = this.gate;
      this.writer = new WriterThread({ share: sharing, cacheMB: WRITER_CACHE_MB }, () => gate.release('writer'));
    }
  }

  /**
   * A file of the three previous schema versions is migrated in place (one transaction, the new
   * indexes created by SCHEMA after it); one written by any other release is refused clearly
   * rather than searched wrongly.
   */
  private checkSchemaVersion(ownership: OwnershipRule | undefined): void {
    const version = this.db.pragma('user_version', { simple: true }) as number;
    const hasTables = this.db.prepare("SELECT 1 FROM sqlite_master WHERE name = 'resource_version'").get() !== undefined;
    if (!hasTables || version === SCHEMA_VERSION) return;
    if (version !== 5 && version !== 6 && version !== 7) {
      throw new Error(`the database file has schema version ${version}; this server needs ${SCHEMA_VERSION} (start from an empty file or migrate)`);
    }
    if (!ownership && version < 7) throw new Error(`the database file has schema version ${version}: migrating it to ${SCHEMA_VERSION} needs the rule that says whose record a resource is`);
    this.db.transaction(() => {
      if (version === 5) {
        this.db.function('fhir_width_class', { deterministic: true }, (low: unknown, high: unknown) =>
          widthClass(typeof low === 'number' ? low : null, typeof high === 'number' ? high : null));
        this.db.exec(MIGRATE_FROM_5);
      }
      if (version < 7) {
        const types = this.db.prepare('SELECT DISTINCT resource_type FROM resource_current').pluck().all() as string[];
        for (const { sql, params } of migrateFrom6(ownership!, types)) this.db.prepare(sql).run(...params);
      }
      for (const sql of MIGRATE_FROM_7) this.db.prepare(sql).run();
      this.db.pragma(`user_version = ${SCHEMA_VERSION}`);
    })();
  }

  /**
   * The codes of `resourceType`'s parameters known here. A write's pairs are all known by the
   * time it runs (`registerCodes`, at the start of its flush).
   */
  private codesOf(resourceType: string): Map<string, number> {
    let byParam = this.codes.get(resourceType);
    if (!byParam) {
      byParam = new Map();
      this.codes.set(resourceType, byParam);
    }
    return byParam;
  }

  /** The code a search binds for the pair: NO_CODE when no entry has ever had it. */
  private codeOf(resourceType: string, param: string): number {
    const byParam = this.codesOf(resourceType);
    let code = byParam.get(param);
    if (code === undefined) {
      // Perhaps added by the other thread's store, or not yet known to this one.
      code = this.readCode.get(resourceType, param);
      if (code === undefined) return NO_CODE;
      byParam.set(param, code);
    }
    return code;
  }

  /** Notes the pairs of a queued write's entries that have no code here yet. */
  private noteParams(resourceType: string, index: ResourceIndex | undefined): void {
    if (!index) return;
    const byParam = this.codesOf(resourceType);
    let unknown: Set<string> | undefined;
    for (const entry of index.entries) {
      if (byParam.has(entry.param)) continue;
      unknown ??= this.unregistered.get(resourceType);
      if (!unknown) {
        unknown = new Set();
        this.unregistered.set(resourceType, unknown);
      }
      unknown.add(entry.param);
    }
  }

  /**
   * Gives the noted pairs their codes in a transaction of their own, committed before the
   * writes that use them (inside the write gate, before theirs): a write's transaction or
   * savepoint can roll back, and a code it had added would go with it while this store (or the
   * other thread's, which takes codes from the table) kept using it. Codes are never deleted, so
   * one committed once is safe for good.
   */
  private registerCodes(): void {
    if (this.unregistered.size === 0) return;
    const pairs = this.unregistered;
    this.inOneTransaction(() => {
      for (const [resourceType, params] of pairs) {
        const byParam = this.codesOf(resourceType);
        for (const param of params) {
          if (byParam.has(param)) continue;
          this.addCode.run(resourceType, param);
          byParam.set(param, this.readCode.get(resourceType, param)!);
        }
      }
    });
    this.unregistered = new Map();
  }

  private replaceIndex(resourceType: string, id: string, doc: number, index: ResourceIndex | undefined, isNew = false): void {
    // A first version has nothing to replace.
    if (!isNew) {
      this.clearEntries.run(doc);
      this.clearPatients.run(doc);
    }
    if (!index) return;
    const entries = index.entries;
    const codes = this.codesOf(resourceType);
    // The patient of every entry when there is exactly one, other than the resource itself (a
    // Patient is its own: its id says so); rows of resource_patient only for several (see the
    // schema).
    const patients = new Set(index.patients);
    const owner = patients.size === 1 && index.patients[0] !== id ? index.patients[0]! : null;
    if (patients.size > 1) for (const patient of patients) this.insertPatient.run(doc, resourceType, patient);
    // Parameters with more than one range entry here (their entries get m = 1).
    const ranges = new Map<string, number>();
    for (const entry of entries) {
      if (typeof entry.values[0].low === 'number') ranges.set(entry.param, (ranges.get(entry.param) ?? 0) + 1);
    }
    // Many rows per statement, one statement per shape: one step into SQLite instead of one per
    // entry. The values go in as one flat array (spreading rows.flat() into ~800 arguments cost
    // about 80 us a Patient).
    for (const shape of Object.keys(ENTRY_SHAPES) as EntryShape[]) {
      let seqs: number[] | undefined;
      for (let seq = 0; seq < entries.length; seq++) if (shapeOf(entries[seq]!) === shape) (seqs ??= []).push(seq);
      if (!seqs) continue;
      const width = ENTRY_SHAPES[shape].length;
      for (let start = 0; start < seqs.length; start += ENTRY_ROWS_PER_INSERT) {
        const end = Math.min(seqs.length, start + ENTRY_ROWS_PER_INSERT);
        const values: unknown[] = new Array((end - start) * width);
        let k = 0;
        for (let i = start; i < end; i++) {
          const seq = seqs[i]!;
          const entry = entries[seq]!;
          const code = codes.get(entry.param);
          if (code === undefined) throw new Error(`no code for ${resourceType}.${entry.param}: its write was not noted (noteParams)`);
          values[k++] = doc;
          values[k++] = seq;
          values[k++] = code;
          const first = entry.values[0];
          values[k++] = first.system ?? null;
          values[k++] = first.value ?? null;
          values[k++] = first.text ?? null;
          if (shape !== 'value') {
            values[k++] = first.low ?? null;
            values[k++] = first.high ?? null;
          }
          if (shape === 'composite') {
            for (let c = 1; c < 3; c++) {
              const v = entry.values[c];
              values[k++] = v?.system ?? null;
              values[k++] = v?.value ?? null;
              values[k++] = v?.text ?? null;
              values[k++] = v?.low ?? null;
              values[k++] = v?.high ?? null;
            }
          }
          if (shape !== 'value') {
            const wc = widthClass(first.low, first.high);
            values[k++] = wc;
            values[k++] = wc !== null && ranges.get(entry.param)! > 1 ? 1 : null;
          }
          values[k++] = owner;
        }
        this.insertEntries(shape, end - start).run(values);
      }
    }
  }

  /** The multi-row insert of `rows` entries of `shape`, prepared once per shape and row count. */
  private insertEntries(shape: EntryShape, rows: number): Database.Statement {
    const statements = this.insertStatements[shape];
    let statement = statements[rows];
    if (!statement) {
      statement = this.db.prepare(insertEntriesSql(shape, rows));
      statements[rows] = statement;
    }
    return statement;
  }

  private statement(sql: string): Database.Statement {
    let statement = this.statements.get(sql);
    if (!statement) {
      if (this.statements.size > 500) this.statements.clear();
      statement = this.db.prepare(sql);
      this.statements.set(sql, statement);
    }
    return statement;
  }

  private writeNow(request: WriteRequest): StoredVersion {
    const { resourceType, id } = request;
    const current = this.head.get(resourceType, id);
    if (request.expectedVersion !== undefined) {
      const seen = current?.version_id ?? null;
      if (seen !== request.expectedVersion) {
        throw new VersionConflictError(resourceType, id, seen);
      }
    }
    const versionId = (current?.version_id ?? 0) + 1;
    // Never let a version look older than its predecessor, even if the clock steps back.
    const lastUpdated = Math.max(Date.now(), current?.last_updated ?? 0);
    const body = bodyToWrite(request, versionId, lastUpdated);
    const deleted = body === undefined;
    this.insertVersion.run(resourceType, id, versionId, lastUpdated, deleted ? 1 : 0, body ?? null);
    const index = deleted ? undefined : request.index;
    const upserted = this.upsertCurrent.run(resourceType, id, versionId, deleted ? 1 : 0, lastUpdated, sortKeysJson(index));
    // A resource keeps its doc for good; a new one gets the next.
    const doc = current?.doc ?? Number(upserted.lastInsertRowid);
    this.replaceIndex(resourceType, id, doc, index, current === undefined);
    const stored: StoredVersion = { resourceType, id, versionId, lastUpdated, deleted };
    if (body !== undefined) stored.body = body;
    return stored;
  }

  async readCurrent(resourceType: string, id: string): Promise<StoredVersion | undefined> {
    const row = this.latest.get(resourceType, id);
    return row && toStored(row);
  }

  async readHead(resourceType: string, id: string): Promise<Omit<StoredVersion, 'body'> | undefined> {
    const row = this.head.get(resourceType, id);
    return row && { resourceType, id, versionId: row.version_id, lastUpdated: row.last_updated, deleted: row.deleted === 1 };
  }

  async readVersion(resourceType: string, id: string, versionId: number): Promise<StoredVersion | undefined> {
    const row = this.exact.get(resourceType, id, versionId);
    return row && toStored(row);
  }

  /**
   * Group commit: writes arriving in the same turn of the event loop share one transaction,
   * so concurrent clients pay for one commit instead of one each. Each promise settles only
   * after the commit, so an answered write is durable.
   */
  write(request: WriteRequest): Promise<StoredVersion> {
    // A lone write is done sooner here, without the hop to the thread and back (a 10,000-entry
    // batch, one write after another, took 6 s that way and 8.5 through the thread); writes that
    // come while others wait are handed over, and free this thread for the requests they serve.
    if (this.writer && request.rendered && (this.writer.busy || this.pending.length > 0)) {
      const write = portableWrite(request);
      if (write) return this.writer.write(write).then((version) => storedOf(write, version));
    }
    this.noteParams(request.resourceType, request.index);
    return this.enqueue(() => this.writeTx(request), false, () => this.writeNow(request));
  }

  /**
   * A transaction of its own, when the queued single writes are committed: all of it, or none. Not
   * a savepoint inside the group: SQLite keeps a rollback copy of every page a savepoint touches,
   * which made a 10,000-resource batch some 60 times slower and hundreds of MB larger.
   */
  writeMany(requests: WriteRequest[]): Promise<StoredVersion[]> {
    if (requests.length === 0) return Promise.resolve([]);
    if (this.writer && requests.length >= WRITER_MIN_WRITES && requests.length <= WRITER_MAX_WRITES) {
      const writes = requests.map(portableWrite);
      if (writes.every((write) => write !== undefined)) return this.writeManyOnThread(writes);
    }
    for (const request of requests) this.noteParams(request.resourceType, request.index);
    return this.enqueue(() => this.writeManyTx(requests), true);
  }

  private async writeManyOnThread(writes: PortableWrite[]): Promise<StoredVersion[]> {
    const versions = await this.writer!.writeMany(writes);
    return versions.map((version, i) => storedOf(writes[i]!, version));
  }

  private enqueue<T>(work: () => T, alone = false, direct: () => T = work): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      this.pending.push({ work, direct, alone, resolve: resolve as (v: never) => void, reject });
      this.scheduleFlush();
    });
  }

  private scheduleFlush(): void {
    if (this.flushing) return;
    this.flushing = true;
    setImmediate(() => void this.flushInTurn());
  }

  /** Writes what is queued once this thread holds the write gate (what arrives meanwhile joins). */
  private async flushInTurn(): Promise<void> {
    try {
      await this.gate.enter();
      try {
        this.flush();
      } finally {
        this.gate.leave();
      }
    } finally {
      this.flushing = false;
      if (this.pending.length > 0) this.scheduleFlush();
    }
  }

  private flush(): void {
    const batch = this.pending.filter((item) => !item.alone);
    const alone = this.pending.filter((item) => item.alone);
    this.pending = [];
    try {
      try {
        this.registerCodes();
      } catch (error) {
        for (const item of [...alone, ...batch]) item.reject(error);
        return;
      }
      this.commitQueued(batch, alone);
    } finally {
      this.checkpoints?.nudge();
    }
  }

  private commitQueued(batch: QueuedWork[], alone: QueuedWork[]): void {
    for (const item of alone) {
      try {
        item.resolve(item.work() as never);
      } catch (error) {
        item.reject(error);
      }
    }
    if (batch.length === 0) return;
    if (this.commitDirect(batch)) return;
    // Each write in a savepoint inside the group's transaction: one failing write rolls back
    // alone, and the others commit together.
    this.commitGroup(batch, (item) => item.work());
  }

  /**
   * The group in one transaction, each write without a savepoint: SQLite copies every page a
   * savepoint touches into its statement journal, and groups of 16 indexed Observations took
   * about 7 % longer that way (300 against 280 us a create, measured alone). A version conflict
   * is found before a write changes anything, so it needs no rollback; any other failure may
   * come after a change, so it rolls the whole transaction back and returns false, for the
   * group to be redone with savepoints. True when every write is settled.
   */
  private commitDirect(batch: QueuedWork[]): boolean {
    return this.commitGroup(batch, (item) => {
      try {
        return item.direct();
      } catch (error) {
        throw error instanceof VersionConflictError ? error : new RedoGuarded();
      }
    });
  }

  /**
   * Runs the group in one transaction, `attempt` for each write, and settles each write with
   * its outcome once committed. False, with nothing settled, when an attempt threw RedoGuarded
   * (the transaction is rolled back).
   */
  private commitGroup(batch: QueuedWork[], attempt: (item: QueuedWork) => unknown): boolean {
    const outcomes: ({ done: unknown } | { error: unknown })[] = [];
    try {
      this.inOneTransaction(() => {
        for (const item of batch) {
          try {
            outcomes.push({ done: attempt(item) });
          } catch (error) {
            if (error instanceof RedoGuarded) throw error;
            outcomes.push({ error });
          }
        }
      });
    } catch (error) {
      if (error instanceof RedoGuarded) return false;
      for (const item of batch) item.reject(error);
      return true;
    }
    batch.forEach((item, i) => {
      const outcome = outcomes[i]!;
      if ('done' in outcome) item.resolve(outcome.done as never);
      else item.reject(outcome.error);
    });
    return true;
  }

  async search(query: SearchQuery): Promise<SearchHit[]> {
    if (query.limit <= 0 || query.resourceTypes.length === 0) return [];
    const { sql, params, keyCount } = compileSearch(query, this.ownership, this.codeOfPair);
    const rows = this.searchStatement(sql).all(...params) as (VersionRow & Record<string, string | number | null>)[];
    const hits = rows.map((row) => ({
      version: toStored(row),
      cursor: { resourceType: row.resource_type, id: row.id, keys: Array.from({ length: keyCount }, (_, i) => row[`k${i}`] ?? null) },
    }));
    // A backward page was read in reverse order.
    return query.before ? hits.reverse() : hits;
  }

  async count(query: Pick<SearchQuery, 'resourceTypes' | 'where'>): Promise<number> {
    if (query.resourceTypes.length === 0) return 0;
    const { sql, params } = compileCount(query, this.ownership, this.codeOfPair);
    return (this.searchStatement(sql).get(...params) as { n: number }).n;
  }

  /** A search's statement; one SQLite refuses for its size is a SearchTooLargeError (see sql-limits.ts). */
  private searchStatement(sql: string): Database.Statement {
    try {
      return this.statement(sql);
    } catch (error) {
      if (isStatementTooLarge(error)) throw new SearchTooLargeError();
      throw error;
    }
  }

  /**
   * Joins the group commit: many reindexes started together share one transaction. Without a
   * savepoint of its own (that doubled the cost of indexing the audit trail): only a failure
   * of the database itself can stop it midway, and that fails the whole transaction anyway.
   */
  reindex(resourceType: string, id: string, versionId: number, index: ResourceIndex): Promise<void> {
    this.noteParams(resourceType, index);
    return this.enqueue(() => this.reindexNow(resourceType, id, versionId, index));
  }

  private reindexNow(resourceType: string, id: string, versionId: number, index: ResourceIndex): void {
    const current = this.currentVersion.get(resourceType, id);
    if (current?.version_id !== versionId) return;
    this.replaceIndex(resourceType, id, current.doc, index);
    this.updateSortKeys.run(sortKeysJson(index), current.doc);
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
    await this.writer?.stop();
    await this.checkpointer?.stop();
    this.db.close();
  }
}
