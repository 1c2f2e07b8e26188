import { randomFillSync } from 'node:crypto';

// Random bytes are drawn for 256 ids at a time (one draw per id: ~2.7 us an id; pooled: ~0.5-0.9).
const POOL_IDS = 256;
const pool = Buffer.alloc(16 * POOL_IDS);
let next = POOL_IDS;

/**
 * Ids the server assigns: UUID version 7 (RFC 9562), 48 bits of Unix time in milliseconds then
 * 74 random bits, in the same 36-character form as the random (version 4) UUIDs before.
 *
 * Why not random: a store keeps a resource's rows in B-trees keyed by (type, id) (its versions,
 * its current pointer, its search entries), and the value index of search entries ends in the
 * owner's id too, so entries of one code or name sort by id. With random ids every new
 * resource lands on its own page of each of those trees, and the embedded store writes every
 * page a commit touches to its WAL (and later again into the file). Ids that grow with time
 * put the resources created together on the same few pages: on a create load of Patients with
 * 10,000 preloaded, WAL pages written per create fell from ~69 to ~22 and CPU per create by
 * ~20 %.
 *
 * An id so reveals when its resource was created, to the millisecond, as meta.lastUpdated of
 * its first version does to whoever may read it. Still unguessable: 74 random bits.
 */
export function newResourceId(): string {
  if (next === POOL_IDS) {
    randomFillSync(pool);
    next = 0;
  }
  const bytes = Buffer.from(pool.subarray(16 * next, 16 * ++next));
  bytes.writeUIntBE(Date.now(), 0, 6);
  bytes[6] = (bytes[6]! & 0x0f) | 0x70;
  bytes[8] = (bytes[8]! & 0x3f) | 0x80;
  const hex = bytes.toString('hex');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}
