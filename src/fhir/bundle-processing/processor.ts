import { STATUS_CODES } from 'node:http';
import type { Bundle, BundleEntry, BundleEntryResponse, FhirResource } from 'fhir/r4.js';
import type { BodyCodec } from '../../store/codec.js';
import { VersionConflictError, type ResourceStore, type StoredVersion } from '../../store/port.js';
import type { HistoryService } from '../history.js';
import { badRequest, FhirError, issue, operationOutcome, preconditionFailed } from '../outcome.js';
import type { JsonResource } from '../resource-input.js';
import { newResourceId } from '../resource-id.js';
import type { ResourceService } from '../resource-service.js';
import type { SearchService } from '../search/search-service.js';
import { clientCopyIsCurrent, etag } from '../versioning.js';
import { bundleKind, readEntries, where, type BundleEntryRequest, type BundleKind } from './entries.js';
import { executeEntry, type CallerView, type EntryResult, type EntryServices } from './execute.js';
import { conditionalReference, isPlaceholder, linksIn, replaceLink, replaceNarrativeLinks } from './references.js';
import { StagingStore } from './staging-store.js';

/** batch and transaction Bundles at the base URL, framework-free. */

export interface BundleCaller extends CallerView {
  /** The REST gate for one entry (the same rights as the single-resource routes); throws FhirError. */
  authorize(entry: BundleEntryRequest): void;
  /** Notes records read, returned or written, for the audit trail and patient notifications. */
  touched(resources: JsonResource[]): void;
  /** Notes an entry refused or failed, for the audit trail (before its resource is let go). */
  failed(entry: BundleEntryRequest, error: FhirError, kind: BundleKind): void;
  /** The same for an entry too malformed to run, as it was sent (`index` in Bundle.entry). */
  malformed(raw: unknown, index: number, error: FhirError, kind: BundleKind): void;
  /** Prefer: return for write entries; bundles answer minimally unless asked. */
  prefer: 'minimal' | 'representation' | 'OperationOutcome';
}

export interface BundleProcessorDeps {
  store: ResourceStore;
  codec: BodyCodec;
  resources: ResourceService;
  searches: SearchService;
  history: HistoryService;
}

/** Transaction processing order (FHIR R4 3.1.0.11.2): DELETE, POST, PUT and PATCH, then GET and HEAD. */
const ORDER: Record<BundleEntryRequest['method'], number> = { DELETE: 0, POST: 1, PUT: 2, PATCH: 2, GET: 3, HEAD: 3 };

const statusLine = (status: number) => `${status} ${STATUS_CODES[status] ?? ''}`.trim();
const isWrite = (entry: BundleEntryRequest) => entry.method !== 'GET' && entry.method !== 'HEAD';
/** A GET or HEAD that lists (a search, a compartment, a history) rather than reads one resource. */
const isListing = (entry: BundleEntryRequest) => !isWrite(entry) && (entry.history === true || entry.id === undefined || entry.compartmentType !== undefined);

const NO_PLACEHOLDERS: ReadonlyMap<string, string> = new Map();

/** A batch's answer to an entry that failed. */
const failedEntry = (failure: FhirError): BundleEntry => ({ response: { status: statusLine(failure.status), outcome: failure.outcome } });

/** The failing entry's error, naming the entry, as the answer to the whole transaction. */
function failedAt(entry: BundleEntryRequest, error: FhirError): FhirError {
  const label = `${where(entry.index)} (${entry.method} ${entry.url.slice(0, 200)})`;
  return new FhirError(
    error.status,
    error.outcome.issue.map((i) => ({ ...i, diagnostics: `${label}: ${i.diagnostics ?? ''}`, expression: [where(entry.index), ...(i.expression ?? [])] })),
  );
}

export class BundleProcessor {
  constructor(private readonly deps: BundleProcessorDeps) {}

  /** Whether transactions can be all or none on this store (else they are refused). */
  get transactions(): boolean {
    return this.deps.store.atomicWriteMany === true;
  }

  async process(body: unknown, caller: BundleCaller): Promise<Bundle> {
    const kind = bundleKind(body);
    const list = (body as { entry?: unknown[] }).entry ?? [];
    const read = readEntries(list, caller.baseUrl);
    const malformed = read.findIndex((entry) => entry instanceof FhirError);
    // A transaction is all or none: one entry that cannot be read fails it, naming the entry.
    if (kind === 'transaction' && malformed >= 0) {
      caller.malformed(list[malformed], malformed, read[malformed] as FhirError, kind);
      throw read[malformed];
    }
    if (kind === 'batch') read.forEach((entry, index) => entry instanceof FhirError && caller.malformed(list[index], index, entry, kind));
    if (kind === 'transaction' && !this.transactions) {
      throw FhirError.of(501, 'not-supported', `This server's ${this.deps.store.kind} deployment cannot apply several writes as one unit, so it refuses transactions rather than apply them partly; send a batch instead (see the CapabilityStatement)`);
    }
    // The entries now hold the resources; dropping the bundle's list lets each go once processed.
    delete (body as { entry?: unknown[] }).entry;
    const answered = kind === 'batch' ? await this.batch(read, caller) : await this.transaction(read as BundleEntryRequest[], caller);
    return { resourceType: 'Bundle', type: kind === 'batch' ? 'batch-response' : 'transaction-response', entry: answered };
  }

  /** Each entry on its own: one that could not be read, or fails, is answered with its error while the others run. */
  private async batch(entries: (BundleEntryRequest | FhirError)[], caller: BundleCaller): Promise<BundleEntry[]> {
    const fullUrls = new Set(entries.flatMap((e) => (!(e instanceof FhirError) && e.fullUrl !== undefined && isPlaceholder(e.fullUrl) ? [e.fullUrl] : [])));
    const conditional = new Map<string, Promise<string>>();
    const services: EntryServices = this.deps;
    const answered: BundleEntry[] = [];
    for (const entry of entries) {
      if (entry instanceof FhirError) {
        answered.push(failedEntry(entry));
        continue;
      }
      try {
        caller.authorize(entry);
        if (entry.resource) {
          // Batch entries are independent: no placeholder names another entry.
          await this.resolveReferences(entry, caller, conditional, NO_PLACEHOLDERS, (reference) => {
            throw badRequest(
              fullUrls.has(reference)
                ? `${reference} is another entry's fullUrl: batch entries may not reference each other (use a transaction)`
                : `${reference} names no resource: placeholders are resolved only between the entries of a transaction`,
            );
          });
        }
        const result = await executeEntry(entry, services, caller);
        this.noteTouched(entry, result, caller);
        answered.push(this.answer(entry, result, caller));
      } catch (error) {
        // Earlier entries are stored already: an unexpected failure answers this entry, not the whole batch.
        const failure = error instanceof FhirError ? error : FhirError.of(500, 'exception', 'This entry could not be processed because of an internal error');
        caller.failed(entry, failure, 'batch');
        answered.push(failedEntry(failure));
      }
      delete entry.resource;
    }
    return answered;
  }

  private async transaction(entries: BundleEntryRequest[], caller: BundleCaller): Promise<BundleEntry[]> {
    const staging = new StagingStore(this.deps.store, this.deps.codec);
    /** The entry that wrote each resource (`Type/id`). */
    const written = new Map<string, number>();
    const services: EntryServices = { ...this.deps, resources: this.deps.resources.over(staging) };
    const { assigned, placeholders } = await this.assignIds(entries, caller);
    const conditional = new Map<string, Promise<string>>();
    const results = new Map<number, EntryResult>();
    const unresolved = (reference: string): never => {
      throw badRequest(`${reference} is not the fullUrl of any entry of this transaction`);
    };
    // GET and HEAD entries run last. A read by id (or version) goes through the staging and sees
    // this transaction's writes; a listing (a search, a compartment, a history) reads the real
    // store, so once the transaction has writes it runs here only to check it (a malformed
    // search fails the transaction, as any failing entry does) and again after the commit, for
    // an answer that holds what the transaction wrote (see staging-store.ts for why not here).
    const relisted: BundleEntryRequest[] = [];
    for (const entry of [...entries].sort((a, b) => ORDER[a.method] - ORDER[b.method] || a.index - b.index)) {
      try {
        if (entry.resource) await this.resolveReferences(entry, caller, conditional, placeholders, unresolved);
        const result = await executeEntry(entry, services, caller, assigned.get(entry.index));
        // Overlapping writes fail the transaction (FHIR R4 3.1.0.11.2), judged by the resolved
        // target: a conditional write's match, a delete's resource even when it is gone already.
        if (isWrite(entry) && result.target !== undefined) {
          const other = written.get(result.target);
          if (other !== undefined) throw badRequest(`${result.target} is the target of ${where(other)} too; each resource may appear once among a transaction's writes`);
          written.set(result.target, entry.index);
        }
        if (isListing(entry) && staging.size > 0) {
          relisted.push(entry);
          continue;
        }
        this.noteTouched(entry, result, caller);
        if (caller.prefer !== 'representation' && isWrite(entry)) delete result.json;
        // The staged body is the staging's; the answer takes the committed version's.
        if (result.stored?.body !== undefined) {
          const { body: _staged, ...version } = result.stored;
          result.stored = version;
        }
        results.set(entry.index, result);
      } catch (error) {
        throw this.failing(entry, error, caller);
      }
      delete entry.resource;
    }
    const committed = await this.commit(staging, caller.prefer === 'representation');
    const afterCommit = new Map<number, BundleEntry>();
    for (const entry of relisted) {
      try {
        const result = await executeEntry(entry, this.deps, caller);
        this.noteTouched(entry, result, caller);
        results.set(entry.index, result);
      } catch (error) {
        // The writes are stored: this entry alone can only report that its listing failed.
        const failure = error instanceof FhirError ? error : FhirError.of(500, 'exception', 'This entry could not be processed because of an internal error');
        caller.failed(entry, failure, 'transaction');
        afterCommit.set(entry.index, failedEntry(failure));
      }
    }
    return entries.map((entry) => afterCommit.get(entry.index) ?? this.answer(entry, this.final(results.get(entry.index)!, committed), caller));
  }

  /** The error that fails the transaction at this entry, naming it; the entry is noted as failed. */
  private failing(entry: BundleEntryRequest, error: unknown, caller: BundleCaller): unknown {
    if (!(error instanceof FhirError)) return error;
    caller.failed(entry, error, 'transaction');
    return failedAt(entry, error);
  }

  /** Ids of the transaction's creates, given before any entry runs so every placeholder can be replaced. */
  private async assignIds(entries: BundleEntryRequest[], caller: BundleCaller): Promise<{ assigned: Map<number, string>; placeholders: Map<string, string> }> {
    const assigned = new Map<number, string>();
    const placeholders = new Map<string, string>();
    for (const entry of entries) {
      try {
        caller.authorize(entry);
        let id: string | undefined = entry.id;
        if (entry.method === 'POST') {
          const match = entry.ifNoneExist === undefined ? undefined : await this.matchOne(entry.type!, entry.ifNoneExist, caller, false);
          id = match ?? newResourceId();
          assigned.set(entry.index, id);
        } else if (entry.method === 'PUT' && id === undefined && entry.fullUrl !== undefined && isPlaceholder(entry.fullUrl)) {
          id = (await this.matchOne(entry.type!, entry.query, caller, false)) ?? (typeof entry.resource?.id === 'string' ? entry.resource.id : newResourceId());
          entry.resource!.id = id;
        }
        if (entry.fullUrl === undefined || !isPlaceholder(entry.fullUrl) || id === undefined || !isWrite(entry)) continue;
        if (placeholders.has(entry.fullUrl)) throw badRequest(`fullUrl ${entry.fullUrl} is used by more than one entry`, ['fullUrl']);
        placeholders.set(entry.fullUrl, `${entry.type}/${id}`);
      } catch (error) {
        throw this.failing(entry, error, caller);
      }
    }
    return { assigned, placeholders };
  }

  /** The id of the one visible resource matching the criteria; undefined for none when `required` is false. */
  private async matchOne(type: string, query: string, caller: CallerView, required: boolean): Promise<string | undefined> {
    const where = await this.deps.searches.criteriaFor(type, query, caller.baseUrl, caller.visibility);
    if (where.length === 0) throw badRequest(`'${type}?${query.slice(0, 200)}' has no search criteria`);
    const matches = await this.deps.searches.find(type, where, 2);
    if (matches.length > 1) throw preconditionFailed(`'${type}?${query.slice(0, 200)}' matches more than one resource`);
    if (matches.length === 0 && required) throw preconditionFailed(`'${type}?${query.slice(0, 200)}' matches no resource`);
    return matches[0]?.id;
  }

  /**
   * Replaces, in an entry's resource, placeholders that are other entries' fullUrls (references,
   * uri and url elements, narrative links: see link-elements.ts) and conditional references (by search). A
   * placeholder reference that is no entry's fullUrl fails the entry; in other elements it is
   * left as it is (a urn:oid: naming a code system is no link). A conditional reference is a
   * search of its type: the caller needs the same right as for that search, or its one match,
   * none or several would tell what it may not read.
   */
  private async resolveReferences(
    entry: BundleEntryRequest,
    caller: BundleCaller,
    conditional: Map<string, Promise<string>>,
    placeholders: ReadonlyMap<string, string>,
    unresolved: (reference: string) => never,
  ): Promise<void> {
    for (const link of linksIn(entry.resource!)) {
      const { kind, value } = link;
      if (kind === 'narrative') {
        replaceLink(link, replaceNarrativeLinks(value, (href) => placeholders.get(href)));
      } else if (isPlaceholder(value)) {
        const target = placeholders.get(value) ?? (kind === 'reference' ? unresolved(value) : undefined);
        if (target !== undefined) replaceLink(link, target);
      } else {
        const criteria = conditionalReference(value);
        if (!criteria) continue;
        caller.authorize({ index: entry.index, method: 'GET', url: value, type: criteria.type, query: criteria.query });
        let target = conditional.get(value);
        if (!target) {
          target = this.matchOne(criteria.type, criteria.query, caller, true).then((id) => `${criteria.type}/${id!}`);
          conditional.set(value, target);
        }
        replaceLink(link, await target);
      }
    }
  }

  /** Stores every staged write at once; a concurrent change to one of them fails the whole transaction. */
  private async commit(staging: StagingStore, keepBodies: boolean): Promise<Map<string, StoredVersion>> {
    let stored: StoredVersion[];
    try {
      stored = await staging.commit();
    } catch (error) {
      if (!(error instanceof VersionConflictError)) throw error;
      throw FhirError.of(409, 'conflict', `${error.resourceType}/${error.id} was changed by another client while the transaction ran; nothing was stored, please retry`);
    }
    const byVersion = new Map<string, StoredVersion>();
    for (const version of stored) {
      this.deps.resources.written(version.resourceType, version.id);
      // Only a representation needs the stored bodies; otherwise they go now, not with the answer.
      if (!keepBodies) delete version.body;
      byVersion.set(`${version.resourceType}/${version.id}/${version.versionId}`, version);
    }
    return byVersion;
  }

  /** An entry's result with the version as committed (its timestamp is the store's, not the staging's). */
  private final(result: EntryResult, committed: Map<string, StoredVersion>): EntryResult {
    const { stored } = result;
    const version = stored && committed.get(`${stored.resourceType}/${stored.id}/${stored.versionId}`);
    if (!version) return result;
    const { body, ...meta } = version;
    const final: EntryResult = { ...result, stored: meta };
    if (result.json !== undefined && body !== undefined) final.json = this.deps.codec.decode(body);
    return final;
  }

  private noteTouched(entry: BundleEntryRequest, result: EntryResult, caller: BundleCaller): void {
    // A resource written as sent holds the same patients, type and labels as the stored one: no need to parse that back.
    const asSent = (entry.method === 'PUT' || (entry.method === 'POST' && result.status === 201)) && entry.resource;
    if (asSent) caller.touched([asSent]);
    else if (result.json !== undefined) caller.touched([JSON.parse(result.json) as JsonResource]);
    const found = (result.bundle?.entry ?? []).filter((e) => e.search?.mode !== 'outcome' && e.resource).map((e) => e.resource as unknown as JsonResource);
    if (found.length > 0) caller.touched(found);
  }

  private answer(entry: BundleEntryRequest, result: EntryResult, caller: BundleCaller): BundleEntry {
    const { stored } = result;
    const notModified = !isWrite(entry) && stored !== undefined && result.json !== undefined && clientCopyIsCurrent(entry.ifNoneMatch, entry.ifModifiedSince, stored);
    const response: BundleEntryResponse = { status: statusLine(notModified ? 304 : result.status) };
    if (stored) {
      response.etag = etag(stored.versionId);
      response.lastModified = new Date(stored.lastUpdated).toISOString();
      if (isWrite(entry) && !stored.deleted) response.location = `${stored.resourceType}/${stored.id}/_history/${stored.versionId}`;
    }
    const answered: BundleEntry = { response };
    if (stored && !stored.deleted) answered.fullUrl = `${caller.baseUrl}/${stored.resourceType}/${stored.id}`;
    if (entry.method === 'HEAD' || notModified) return answered;
    if (!isWrite(entry)) {
      if (result.bundle) answered.resource = result.bundle;
      else if (result.json !== undefined) answered.resource = JSON.parse(result.json) as FhirResource;
      return answered;
    }
    if (caller.prefer === 'representation' && result.json !== undefined) answered.resource = JSON.parse(result.json) as FhirResource;
    if (caller.prefer === 'OperationOutcome') response.outcome = operationOutcome([issue('information', 'informational', `${entry.method} done`)]);
    return answered;
  }
}
