import { createHash } from 'node:crypto';
import type { AuditEvent, Extension } from 'fhir/r4.js';
import { EHEALTH } from '../participation/rules.js';
import type { BodyCodec } from '../store/codec.js';
import type { ResourceStore, SearchCursor, StoredVersion } from '../store/port.js';

/**
 * Tamper evidence for the audit trail: every AuditEvent the server records carries its place in
 * one chain (a sequence number, also its id) and a SHA-256 hash over its own content and the
 * previous record's hash. Editing a record breaks its hash; deleting or inserting one breaks
 * the sequence or the link to the previous hash; a record changed through the store after it
 * was written also shows as a second version (audit records are written once, as version 1).
 *
 * What a keyless chain cannot show: someone who knows this algorithm and can write to the store
 * may append well-formed records at the end, or remove the newest records without leaving
 * tombstones (by editing the database underneath the store). Anchoring the newest hash outside
 * the store (e.g. printing it from `npm run audit:verify` into a separate log) covers that.
 */

export const AUDIT_SEQUENCE = `${EHEALTH}/StructureDefinition/audit-sequence`;
export const AUDIT_PREVIOUS_HASH = `${EHEALTH}/StructureDefinition/audit-previous-hash`;
export const AUDIT_HASH = `${EHEALTH}/StructureDefinition/audit-hash`;

/** The previous hash of the first record. */
export const GENESIS_HASH = '0'.repeat(64);

/** Ids are the zero-padded sequence, so `_id` order is chain order (16 digits pass 2^53). */
const ID_DIGITS = 16;
const CHAIN_ID = /^[0-9]{16}$/;

export const auditIdOf = (sequence: number): string => String(sequence).padStart(ID_DIGITS, '0');
export const sequenceOfId = (id: string): number | undefined => (CHAIN_ID.test(id) ? Number(id) : undefined);

/**
 * Sorted key orders by object shape (its keys in their own order), and keys as JSON, for
 * canonicalJson: records of one kind share a few shapes, and sorting and quoting their keys
 * anew was half of its cost. Bounded: shapes past the bound are sorted each time.
 */
const SHAPES_KEPT = 10_000;
const sortedKeysByShape = new Map<string, string[]>();
const quotedKeys = new Map<string, string>();

function sortedKeys(object: Record<string, unknown>): string[] {
  const own = Object.keys(object);
  const shape = own.join('\u0000');
  let keys = sortedKeysByShape.get(shape);
  // Keys holding the separator could make two shapes look alike: use a kept order only when it
  // is a permutation of these very keys.
  if (keys && (keys.length !== own.length || !keys.every((key) => Object.hasOwn(object, key)))) keys = undefined;
  if (!keys) {
    // Code-unit order, as the default sort gives.
    keys = own.sort();
    if (sortedKeysByShape.size < SHAPES_KEPT) sortedKeysByShape.set(shape, keys);
  }
  return keys;
}

function quotedKey(key: string): string {
  let quoted = quotedKeys.get(key);
  if (quoted === undefined) {
    quoted = `${JSON.stringify(key)}:`;
    if (quotedKeys.size < SHAPES_KEPT) quotedKeys.set(key, quoted);
  }
  return quoted;
}

/**
 * JSON with object keys sorted at every level: the same content always gives the same text.
 * (Every request hashes one of these, so it is written as plain loops.)
 */
export function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) {
    let text = '[';
    for (let i = 0; i < value.length; i++) text += (i > 0 ? ',' : '') + canonicalJson(value[i] === undefined ? null : value[i]);
    return `${text}]`;
  }
  if (value !== null && typeof value === 'object') {
    const object = value as Record<string, unknown>;
    let text = '{';
    let first = true;
    for (const key of sortedKeys(object)) {
      const v = object[key];
      if (v === undefined) continue;
      text += (first ? '' : ',') + quotedKey(key) + canonicalJson(v);
      first = false;
    }
    return `${text}}`;
  }
  return JSON.stringify(value);
}

/**
 * The hash of a record: SHA-256 over the canonical JSON of the record without its meta (which
 * the store stamps) and without its own hash extension, followed by the previous record's
 * hash (also carried inside the record, in the previous-hash extension).
 */
export function auditHash(event: AuditEvent, previousHash: string): string {
  const { meta: _meta, ...content } = event;
  const extension = (content.extension ?? []).filter((e) => e.url !== AUDIT_HASH);
  return createHash('sha256')
    .update(canonicalJson({ ...content, extension }))
    .update(previousHash)
    .digest('hex');
}

const extensionOf = (event: AuditEvent, url: string): Extension | undefined => event.extension?.find((e) => e.url === url);

export interface ChainFields {
  sequence: number | undefined;
  previousHash: string | undefined;
  hash: string | undefined;
}

export function chainFieldsOf(event: AuditEvent): ChainFields {
  const sequence = extensionOf(event, AUDIT_SEQUENCE)?.valueString;
  return {
    sequence: sequence !== undefined && /^[0-9]+$/.test(sequence) ? Number(sequence) : undefined,
    previousHash: extensionOf(event, AUDIT_PREVIOUS_HASH)?.valueString,
    hash: extensionOf(event, AUDIT_HASH)?.valueString,
  };
}

/** Puts a record in the chain after `previousHash`: its id, sequence and both hashes. */
export function sealAuditEvent(event: AuditEvent, sequence: number, previousHash: string): AuditEvent {
  const own = (event.extension ?? []).filter((e) => ![AUDIT_SEQUENCE, AUDIT_PREVIOUS_HASH, AUDIT_HASH].includes(e.url));
  const unsealed: AuditEvent = {
    ...event,
    id: auditIdOf(sequence),
    extension: [...own, { url: AUDIT_SEQUENCE, valueString: String(sequence) }, { url: AUDIT_PREVIOUS_HASH, valueString: previousHash }],
  };
  return { ...unsealed, extension: [...unsealed.extension!, { url: AUDIT_HASH, valueString: auditHash(unsealed, previousHash) }] };
}

/** Where a chain ends: the newest record's sequence and hash (0 and the genesis hash when empty). */
export interface ChainHead {
  sequence: number;
  hash: string;
}

const PAGE = 500;

/**
 * The newest record of the chain, as stored: the highest chain id among AuditEvents, looking
 * past the search pointers (which may lag on a store without transactions) and past deleted
 * records to the newest id that was ever written. Its hash is recomputed from its first version,
 * which the store keeps whatever happened later, so the log continues from what it wrote.
 */
export async function readChainHead(store: ResourceStore, codec: BodyCodec): Promise<ChainHead> {
  let sequence = 0;
  let after: SearchCursor | undefined;
  // Newest first; ids that are not the chain's (sorting after digits) are skipped.
  for (;;) {
    const hits = await store.search({
      resourceTypes: ['AuditEvent'],
      where: [],
      sort: [{ param: '_id', descending: true }],
      limit: PAGE,
      ...(after && { after }),
    });
    const found = hits.find((hit) => sequenceOfId(hit.version.id) !== undefined);
    if (found) {
      sequence = sequenceOfId(found.version.id)!;
      break;
    }
    if (hits.length < PAGE) break;
    after = hits[hits.length - 1]!.cursor;
  }
  // Records whose search pointer lags, and deleted records (invisible to search), still hold
  // their number: versions are the truth.
  while (await store.readVersion('AuditEvent', auditIdOf(sequence + 1), 1)) sequence++;
  if (sequence === 0) return { sequence: 0, hash: GENESIS_HASH };
  const first = await store.readVersion('AuditEvent', auditIdOf(sequence), 1);
  if (!first?.body) throw new Error(`audit record ${auditIdOf(sequence)} has no first version to continue the chain from`);
  const event = JSON.parse(codec.decode(first.body)) as AuditEvent;
  return { sequence, hash: auditHash(event, chainFieldsOf(event).previousHash ?? GENESIS_HASH) };
}

export interface ChainVerification {
  ok: boolean;
  /** How many records were checked. */
  checked: number;
  /** The newest record's sequence and hash, to anchor elsewhere. */
  head?: ChainHead;
  /** The first record, in chain order, that does not hold. */
  firstBroken?: { id: string; reason: string };
}

/** How often the walk goes on for records a live server appended while it ran, at most. */
const CATCH_UP_PASSES = 5;

/**
 * Walks every AuditEvent in `_id` (= chain) order and checks: the id is the next sequence
 * number, the record names it, links to the previous record's hash, and its own hash matches
 * its content; then that no audit record was changed or deleted through the store after it was
 * written (every stored version of an AuditEvent is a first version). Records appended while
 * it runs are checked too.
 */
export async function verifyAuditChain(store: ResourceStore, codec: BodyCodec): Promise<ChainVerification> {
  let checked = 0;
  let previous: ChainHead = { sequence: 0, hash: GENESIS_HASH };
  const broken = (id: string, reason: string): ChainVerification => ({ ok: false, checked, firstBroken: { id, reason } });
  let after: SearchCursor | undefined;
  for (let pass = 0; ; pass++) {
    // Walks on from the last record checked: a live server appends while this runs.
    for (;;) {
      const hits = await store.search({
        resourceTypes: ['AuditEvent'],
        where: [],
        sort: [{ param: '_id', descending: false }],
        limit: PAGE,
        ...(after && { after }),
      });
      for (const { version } of hits) {
        const checkedRecord = checkRecord(version, previous, codec);
        if ('reason' in checkedRecord) return broken(checkedRecord.id ?? version.id, checkedRecord.reason);
        previous = checkedRecord;
        checked++;
      }
      if (hits.length > 0) after = hits[hits.length - 1]!.cursor;
      if (hits.length < PAGE) break;
    }
    // Edits and deletions leave further versions (and deleting the newest record leaves no gap).
    const versions = await store.countHistory({ resourceType: 'AuditEvent' });
    if (versions === checked) return { ok: true, checked, head: previous };
    const rewritten = await firstRewritten(store);
    if (rewritten) {
      return broken(rewritten.id, rewritten.deleted ? `deleted through the store (version ${rewritten.versionId} is a deletion)` : `changed through the store after it was recorded (version ${rewritten.versionId})`);
    }
    // More versions than records, none of them a rewrite: records appended since the walk
    // ended, which the next pass checks. A difference that outlasts the passes is reported.
    if (versions < checked || pass >= CATCH_UP_PASSES) return broken('', `the store holds ${versions} audit record versions but the chain has ${checked}`);
  }
}

function checkRecord(version: StoredVersion, previous: ChainHead, codec: BodyCodec): ChainHead | { id?: string; reason: string } {
  const expected = previous.sequence + 1;
  const sequence = sequenceOfId(version.id);
  if (sequence === undefined) return { reason: `not a record of the chain (id ${version.id} is not a sequence number)` };
  if (sequence !== expected) {
    const missing = sequence > expected ? `${auditIdOf(expected)}${sequence > expected + 1 ? ` to ${auditIdOf(sequence - 1)}` : ''}` : version.id;
    return { id: auditIdOf(expected), reason: `sequence gap: ${missing} missing (deleted) before ${version.id}` };
  }
  const problem = checkContent(version, previous, sequence, codec);
  return typeof problem === 'string' ? { reason: problem } : problem;
}

function checkContent(version: StoredVersion, previous: ChainHead, sequence: number, codec: BodyCodec): ChainHead | string {
  if (version.versionId !== 1) return `changed through the store after it was recorded (version ${version.versionId})`;
  let event: AuditEvent;
  try {
    event = JSON.parse(codec.decode(version.body!)) as AuditEvent;
  } catch {
    return 'the stored body cannot be read';
  }
  const fields = chainFieldsOf(event);
  if (event.resourceType !== 'AuditEvent' || event.id !== version.id) return 'the body does not name this record';
  if (fields.sequence !== sequence) return `the record names sequence ${String(fields.sequence)}, not ${sequence}`;
  if (fields.previousHash !== previous.hash) return `does not link to the previous record's hash (a record before it was changed, removed or inserted)`;
  const hash = auditHash(event, previous.hash);
  if (fields.hash !== hash) return 'its hash does not match its content (the record was changed)';
  return { sequence, hash };
}

/** The oldest-recorded audit version that is not a first version, if any. */
async function firstRewritten(store: ResourceStore): Promise<StoredVersion | undefined> {
  let found: StoredVersion | undefined;
  let after: Parameters<ResourceStore['history']>[0]['after'];
  for (;;) {
    const page = await store.history({ resourceType: 'AuditEvent', limit: PAGE, ...(after && { after }) });
    // Newest first: keep the last (oldest) rewrite seen, or the lowest id among them.
    for (const v of page) if (v.versionId > 1 && (!found || v.id < found.id)) found = v;
    if (page.length < PAGE) return found;
    const last = page[page.length - 1]!;
    after = { lastUpdated: last.lastUpdated, resourceType: last.resourceType, id: last.id, versionId: last.versionId };
  }
}
