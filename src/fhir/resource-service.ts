import { plainJsonCodec, type BodyCodec } from '../store/codec.js';
import { VersionConflictError, type ResourceStore, type StoredVersion } from '../store/port.js';
import { KeyedLock } from './keyed-lock.js';
import { badRequest, gone, notFound, preconditionFailed, unprocessable } from './outcome.js';
import { applyJsonPatch } from './patch.js';
import { checkResource, requireKnownType, requireValidId, type JsonResource } from './resource-input.js';
import { newResourceId } from './resource-id.js';
import { indexResource, type IndexOptions } from './search/indexer.js';
import type { SearchService } from './search/search-service.js';
import { SEES_EVERYTHING, type Visibility } from './search/visibility.js';

/**
 * The FHIR interactions on single resources, free of HTTP: each takes plain values and
 * returns the stored version (with its decoded JSON) or throws a FhirError.
 */

export interface VersionedResource {
  stored: StoredVersion;
  /** The resource as JSON text; absent for a deletion. */
  json?: string;
  /** The same resource parsed, when reading it had to parse it anyway. */
  parsed?: JsonResource;
}

export interface WriteResult extends VersionedResource {
  /** 201 for a new resource, 200 otherwise (including a conditional create that matched). */
  status: 200 | 201;
}

export interface DeleteResult {
  /** The tombstone written, or undefined when there was nothing to delete. */
  stored?: StoredVersion;
  /** The id conditional criteria found, also when it was deleted already (then nothing is written). */
  matched?: string;
}

/** Version an If-Match precondition requires; undefined when there is none. */
export type ExpectedVersion = number | undefined;

/** The search criteria of a conditional operation, as a query string, and where it was asked. */
export interface Conditional {
  query: string;
  baseUrl: string;
  /** What the caller may see: the criteria match only among those resources. */
  visibility?: Visibility;
}

/** Whether the caller may see this version of a resource (a hidden one reads as unknown). */
export type ReadCheck = (resource: JsonResource) => boolean;

export interface ResourceServiceOptions {
  /** False only for measuring indexing cost or bulk loads followed by a reindex. */
  searchIndexing?: boolean;
  /** Index entries the layers above derive from a whole resource. */
  derivedIndex?: IndexOptions['derived'];
  /** Told after every stored write (caches of what depends on some types listen). */
  onWrite?: WriteListener;
}

/**
 * A stored write: the resource as written (`written`), null for a deletion, undefined when not
 * at hand (a committed transaction reports its writes after the fact).
 */
export type WriteListener = (resourceType: string, id: string, written?: JsonResource | null) => void;

/**
 * A check on a write against the version it replaces (undefined for a new resource), run
 * inside the write so it sees the same previous version the write expects. Throws to refuse.
 */
export interface WriteGuard {
  /** Only writes of these types pay for reading and decoding the previous version. */
  appliesTo(resourceType: string): boolean;
  /** Adjusts what is about to be written (e.g. stamps who contributed it) before it is checked. */
  prepare?(next: JsonResource): JsonResource;
  check(next: JsonResource, previous: JsonResource | undefined): void;
  /** Judges a deletion of the current version; deletions are allowed when absent. */
  checkDelete?(previous: JsonResource): void;
}

/** Both guards, in order. */
export function bothGuards(first: WriteGuard | undefined, second: WriteGuard | undefined): WriteGuard | undefined {
  if (!first || !second) return first ?? second;
  return {
    appliesTo: (type) => first.appliesTo(type) || second.appliesTo(type),
    prepare: (next) => {
      const once = first.appliesTo(next.resourceType as string) && first.prepare ? first.prepare(next) : next;
      return second.appliesTo(once.resourceType as string) && second.prepare ? second.prepare(once) : once;
    },
    check: (next, previous) => {
      for (const guard of [first, second]) if (guard.appliesTo(next.resourceType as string)) guard.check(next, previous);
    },
    checkDelete: (previous) => {
      for (const guard of [first, second]) if (guard.appliesTo(previous.resourceType as string)) guard.checkDelete?.(previous);
    },
  };
}

/** The body of the version a write pins (`pinned` + 1), stamped now (never before the version it replaces). */
function renderedAhead(renderBody: (versionId: number, lastUpdated: number) => string, pinned: number | null, previous: StoredVersion | undefined): { json: string; lastUpdated: number } {
  const lastUpdated = Math.max(Date.now(), previous?.lastUpdated ?? 0);
  return { json: renderBody((pinned ?? 0) + 1, lastUpdated), lastUpdated };
}

/** Retries of a guarded write that lost a race and was not pinned to a version by the client. */
const GUARDED_WRITE_ATTEMPTS = 20;

export class ResourceService {
  private readonly conditionalLock = new KeyedLock();

  private readonly searchIndexing: boolean;

  constructor(
    private readonly store: ResourceStore,
    private readonly codec: BodyCodec,
    private readonly searches: SearchService,
    private readonly options: ResourceServiceOptions = {},
  ) {
    this.searchIndexing = options.searchIndexing ?? true;
  }

  /**
   * The same service over another store (a transaction's staging overlay). Writes there are not
   * yet stored, so they are reported to `onWrite` of the caller's choosing instead of the caches.
   */
  over(store: ResourceStore, onWrite?: WriteListener): ResourceService {
    const { onWrite: _stored, ...options } = this.options;
    return new ResourceService(store, this.codec, this.searches, { ...options, ...(onWrite && { onWrite }) });
  }

  /** Tells the listeners of stored writes about writes stored by other means (a committed transaction). */
  written(resourceType: string, id: string): void {
    this.options.onWrite?.(resourceType, id);
  }

  /** At most two current matches: enough to tell none, one and several apart. */
  private async matches(resourceType: string, conditional: Conditional): Promise<StoredVersion[]> {
    const where = await this.searches.criteriaFor(resourceType, conditional.query, conditional.baseUrl, conditional.visibility ?? SEES_EVERYTHING);
    if (where.length === 0) throw badRequest('A conditional operation needs at least one search criterion');
    return this.searches.find(resourceType, where, 2);
  }

  private decode(stored: StoredVersion): VersionedResource {
    const result: VersionedResource = { stored };
    if (stored.body !== undefined) result.json = this.codec.decode(stored.body);
    return result;
  }

  /**
   * Decodes a stored version for a caller who may see it, else undefined; a deletion is judged
   * by the version it deleted.
   */
  private async visible(stored: StoredVersion, canSee: ReadCheck | undefined): Promise<VersionedResource | undefined> {
    if (!canSee) return this.decode(stored);
    let judged: StoredVersion | undefined = stored;
    if (stored.deleted) judged = stored.versionId > 1 ? await this.store.readVersion(stored.resourceType, stored.id, stored.versionId - 1) : undefined;
    if (!judged?.body) return undefined;
    const json = this.codec.decode(judged.body);
    const parsed = JSON.parse(json) as JsonResource;
    if (!canSee(parsed)) return undefined;
    return stored.deleted ? { stored } : { stored, json, parsed };
  }

  async read(resourceType: string, id: string, canSee?: ReadCheck): Promise<VersionedResource> {
    requireKnownType(resourceType);
    requireValidId(id);
    const stored = await this.store.readCurrent(resourceType, id);
    const result = stored && (await this.visible(stored, canSee));
    if (!result) throw notFound(`${resourceType}/${id} is not known`);
    if (result.stored.deleted) throw gone(`${resourceType}/${id} was deleted`);
    return result;
  }

  async vread(resourceType: string, id: string, versionId: string, canSee?: ReadCheck): Promise<VersionedResource> {
    requireKnownType(resourceType);
    requireValidId(id);
    const version = Number(versionId);
    if (!/^[1-9][0-9]{0,9}$/.test(versionId)) throw notFound(`${resourceType}/${id} has no version '${versionId.slice(0, 20)}'`);
    const stored = await this.store.readVersion(resourceType, id, version);
    const result = stored && (await this.visible(stored, canSee));
    if (!result) throw notFound(`${resourceType}/${id} has no version ${version}`);
    // A record the caller may not see now (restricted since, or moved to another patient) has no versions for it either.
    if (canSee) {
      const current = await this.store.readCurrent(resourceType, id);
      if (!current || !(await this.visible(current, canSee))) throw notFound(`${resourceType}/${id} has no version ${version}`);
    }
    if (result.stored.deleted) throw gone(`Version ${version} of ${resourceType}/${id} is a deletion`);
    return result;
  }

  async create(resourceType: string, body: unknown, baseUrl: string, ifNoneExist?: Conditional, guard?: WriteGuard): Promise<WriteResult> {
    requireKnownType(resourceType);
    const resource = checkResource(body, resourceType);
    if (ifNoneExist === undefined) return this.put(resource, newResourceId(), null, baseUrl, guard);
    return this.conditionalLock.run(resourceType, async () => {
      const matches = await this.matches(resourceType, ifNoneExist);
      if (matches.length > 1) throw preconditionFailed('If-None-Exist matches more than one resource');
      if (matches.length === 1) return { ...this.decode(matches[0]!), status: 200 as const };
      return this.put(resource, newResourceId(), null, baseUrl, guard);
    });
  }

  /**
   * A create under an id assigned beforehand (a transaction's POST, whose fullUrl other entries
   * reference): new, like any create, so no current version is looked up or overwritten.
   */
  async createWithId(resourceType: string, id: string, body: unknown, baseUrl: string, guard?: WriteGuard): Promise<WriteResult> {
    requireKnownType(resourceType);
    requireValidId(id);
    return this.put(checkResource(body, resourceType), id, null, baseUrl, guard);
  }

  async update(resourceType: string, id: string, body: unknown, baseUrl: string, ifMatch?: ExpectedVersion, guard?: WriteGuard): Promise<WriteResult> {
    requireKnownType(resourceType);
    requireValidId(id);
    const resource = checkResource(body, resourceType, id);
    return this.put(resource, id, ifMatch, baseUrl, guard);
  }

  async conditionalUpdate(resourceType: string, conditional: Conditional, body: unknown, ifMatch?: ExpectedVersion, guard?: WriteGuard): Promise<WriteResult> {
    requireKnownType(resourceType);
    const resource = checkResource(body, resourceType);
    return this.conditionalLock.run(resourceType, async () => {
      const matches = await this.matches(resourceType, conditional);
      if (matches.length > 1) throw preconditionFailed('The conditional update criteria match more than one resource');
      const match = matches[0];
      if (match) {
        if (resource.id !== undefined && resource.id !== match.id) {
          throw badRequest(`The body's id does not match the resource the criteria found`, [`${resourceType}.id`]);
        }
        return this.put(resource, match.id, ifMatch, conditional.baseUrl, guard);
      }
      const id = typeof resource.id === 'string' ? resource.id : newResourceId();
      return this.put(resource, id, ifMatch, conditional.baseUrl, guard);
    });
  }

  async patch(resourceType: string, id: string, patch: unknown, baseUrl: string, ifMatch?: ExpectedVersion, guard?: WriteGuard, canSee?: ReadCheck): Promise<WriteResult> {
    const current = await this.read(resourceType, id, canSee);
    if (ifMatch !== undefined && ifMatch !== current.stored.versionId) {
      throw preconditionFailed(`${resourceType}/${id} is at version ${current.stored.versionId}, not ${ifMatch}`);
    }
    const patched = applyJsonPatch(JSON.parse(current.json!) as Record<string, unknown>, patch);
    if (patched.resourceType !== resourceType || patched.id !== id) {
      throw unprocessable('A patch may not change the resourceType or id');
    }
    const resource = checkResource(patched, resourceType, id);
    // Expect the version the patch was computed against, so a concurrent write is never lost.
    return this.put(resource, id, current.stored.versionId, baseUrl, guard);
  }

  async delete(resourceType: string, id: string, ifMatch?: ExpectedVersion, guard?: WriteGuard): Promise<DeleteResult> {
    requireKnownType(resourceType);
    requireValidId(id);
    const current = await this.store.readCurrent(resourceType, id);
    if (guard?.appliesTo(resourceType) && current && !current.deleted && current.body !== undefined) {
      guard.checkDelete?.(JSON.parse(this.codec.decode(current.body)) as JsonResource);
    }
    if (ifMatch !== undefined && ifMatch !== current?.versionId) {
      throw preconditionFailed(`${resourceType}/${id} is not at version ${ifMatch}`);
    }
    if (!current || current.deleted) return {};
    try {
      const stored = await this.store.write({ resourceType, id, expectedVersion: current.versionId });
      this.options.onWrite?.(resourceType, id, null);
      return { stored };
    } catch (error) {
      if (error instanceof VersionConflictError && ifMatch === undefined) return this.delete(resourceType, id, undefined, guard);
      throw this.translateConflict(error);
    }
  }

  async conditionalDelete(resourceType: string, conditional: Conditional, guard?: WriteGuard): Promise<DeleteResult> {
    requireKnownType(resourceType);
    return this.conditionalLock.run(resourceType, async () => {
      const matches = await this.matches(resourceType, conditional);
      if (matches.length > 1) throw preconditionFailed('The conditional delete criteria match more than one resource');
      const match = matches[0];
      return match ? { ...(await this.delete(resourceType, match.id, undefined, guard)), matched: match.id } : {};
    });
  }

  /**
   * Stores a new version. `expected`: null = the id must be new; a number = If-Match;
   * undefined = any current version.
   */
  private async put(received: JsonResource, id: string, expected: number | null | undefined, baseUrl: string, guard?: WriteGuard): Promise<WriteResult> {
    const guarded = guard?.appliesTo(received.resourceType as string) ? guard : undefined;
    const resource = guarded?.prepare ? guarded.prepare(received) : received;
    const { resourceType, id: _ignored, meta, ...rest } = resource;
    const clientMeta = (meta ?? {}) as Record<string, unknown>;
    // Indexed under the id it is stored with (a Patient's owner is its own id; a create's body may have none).
    const index = this.searchIndexing
      ? indexResource({ ...resource, id }, { localBase: baseUrl, ...(this.options.derivedIndex && { derived: this.options.derivedIndex }) })
      : { entries: [], sortKeys: {}, patients: [] };
    const renderBody = (versionId: number, lastUpdated: number) =>
      this.codec.encode(
        JSON.stringify({
          resourceType,
          id,
          meta: { ...clientMeta, versionId: String(versionId), lastUpdated: new Date(lastUpdated).toISOString() },
          ...rest,
        }),
      );
    for (let attempt = 1; ; attempt++) {
      let pinned = expected;
      try {
        const previous = expected === null ? undefined : await this.store.readCurrent(resourceType, id);
        if (guarded) {
          const before = previous && !previous.deleted && previous.body !== undefined ? (JSON.parse(this.codec.decode(previous.body)) as JsonResource) : undefined;
          guarded.check(resource, before);
          // Pin the write to the version the guard judged, so a concurrent write cannot slip between.
          if (pinned === undefined) pinned = previous ? previous.versionId : null;
        }
        const stored = await this.store.write({
          resourceType,
          id,
          renderBody,
          index,
          ...(pinned !== undefined && { expectedVersion: pinned }),
          // Rendered ahead for the pinned version, as data a store can hand to another thread.
          ...(pinned !== undefined && this.codec === plainJsonCodec && { rendered: renderedAhead(renderBody, pinned, previous) }),
        });
        this.options.onWrite?.(resourceType, id, resource);
        const created = pinned === null || !previous || previous.deleted;
        return { ...this.decode(stored), status: created ? 201 : 200 };
      } catch (error) {
        // The client asked for no particular version: judge the newer one and try again.
        if (error instanceof VersionConflictError && expected === undefined && guarded && attempt < GUARDED_WRITE_ATTEMPTS) continue;
        throw this.translateConflict(error);
      }
    }
  }

  private translateConflict(error: unknown): unknown {
    if (!(error instanceof VersionConflictError)) return error;
    if (error.currentVersion === null) return preconditionFailed(`${error.resourceType}/${error.id} does not exist`);
    return preconditionFailed(`${error.resourceType}/${error.id} is at version ${error.currentVersion}; the request expected another version`);
  }
}
