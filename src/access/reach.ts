import type { Consent, EpisodeOfCare } from 'fhir/r4.js';
import type { JsonResource } from '../fhir/resource-input.js';
import type { SearchService } from '../fhir/search/search-service.js';
import type { BodyCodec } from '../store/codec.js';
import { within } from '../participation/principals.js';
import { RULES, endOfDay, startOfDay } from '../participation/rules.js';
import { withheldPatients } from './client-view.js';
import { ACCESS_SYSTEMS, inForce } from './model.js';

/**
 * Which patients an HCP may reach right now (joined and active, sharing consent in force or the
 * HCP is HA/DH, and under the HCP's care), which of them an account holds restricted-access
 * grants for, and which patients take no part at all (for backend clients). All are read from
 * the records and cached until something they depend on is written (Consent, EpisodeOfCare,
 * Patient) or a period in them starts or ends.
 */

export interface Reach {
  patients: ReadonlySet<string>;
}

export interface Grants {
  /** Patient id → the reason the HCProf gave. */
  reasons: ReadonlyMap<string, string>;
}

const DEPENDS_ON: ReadonlySet<string> = new Set(['Consent', 'EpisodeOfCare', 'Patient']);
const PUBLIC_PROVIDERS: ReadonlySet<string> = new Set(RULES.publicProviders.map((p) => p.id));
const MAX_RELATIONSHIPS = 1_000_000;

interface Cached<T> {
  generation: number;
  /** The value is stale from this time (ms) on: some period in it starts or ends. */
  until: number;
  value: Promise<T>;
}

type Period = { start?: string; end?: string } | undefined;

const boundary = (value: string, end: boolean) => (value.length === 10 ? (end ? endOfDay(value) + 1 : startOfDay(value)) : Date.parse(value) + (end ? 1 : 0));

/** The first time after `now` at which `period` starts or stops being in force. */
function nextChange(period: Period, now: number): number {
  const times = [period?.start && boundary(period.start, false), period?.end && boundary(period.end, true)].filter((t): t is number => typeof t === 'number' && t > now);
  return times.length ? Math.min(...times) : Infinity;
}

const patientOf = (reference: string | undefined) => (reference?.startsWith('Patient/') ? reference.slice('Patient/'.length) : undefined);

export class CareNetwork {
  private generation = 0;
  private readonly reaches = new Map<string, Cached<Reach>>();
  private readonly grants = new Map<string, Cached<Grants>>();
  /** The non-participating patients, once read; kept up to date by the Patient writes reported (see `changed`). */
  private nonParticipants: Promise<ReadonlySet<string>> | undefined;
  private knownNonParticipants: ReadonlySet<string> | undefined;

  constructor(
    private readonly searches: SearchService,
    private readonly codec: BodyCodec,
    private readonly baseUrl: string,
    private readonly clock: () => Date = () => new Date(),
  ) {}

  /**
   * Told of every write: what depends on these types is recomputed on the next request. The
   * non-participating patients change only by a Patient that becomes or stops being one, told
   * from the written Patient itself when it is at hand (so a backend client's view, built on the
   * same set, is kept across the writes of other patients).
   */
  changed(resourceType: string, id?: string, written?: JsonResource | null): void {
    if (!DEPENDS_ON.has(resourceType)) return;
    this.generation++;
    this.reaches.clear();
    this.grants.clear();
    if (resourceType === 'Patient') this.patientChanged(id, written);
  }

  private patientChanged(id: string | undefined, written: JsonResource | null | undefined): void {
    const known = this.knownNonParticipants;
    if (id === undefined || written === undefined || !known) {
      this.nonParticipants = undefined;
      this.knownNonParticipants = undefined;
      return;
    }
    // Participation.status sets Patient.active: false while pending activation or withdrawn.
    const withheld = written !== null && written.active === false;
    if (withheld === known.has(id)) return;
    const next = new Set(known);
    if (withheld) next.add(id);
    else next.delete(id);
    this.knownNonParticipants = next;
    this.nonParticipants = Promise.resolve(next);
  }

  static isPublicProvider(organizationId: string): boolean {
    return PUBLIC_PROVIDERS.has(organizationId);
  }

  reach(organizationId: string): Promise<Reach> {
    return this.cached(this.reaches, organizationId, (now) => this.computeReach(organizationId, now));
  }

  grantsOf(accountId: string): Promise<Grants> {
    return this.cached(this.grants, accountId, (now) => this.computeGrants(accountId, now));
  }

  /**
   * The patients whose records are not shared (pending activation or withdrawn): the same set
   * object until one of them changes, so views built on it can be kept until then.
   */
  nonParticipating(): Promise<ReadonlySet<string>> {
    if (this.nonParticipants) return this.nonParticipants;
    const reading = withheldPatients(this.searches).then(
      (ids) => {
        const found: ReadonlySet<string> = new Set(ids);
        // Kept only if no Patient was written while it was read (else the next call reads again).
        if (this.nonParticipants === reading) this.knownNonParticipants = found;
        return found;
      },
      (error: unknown) => {
        if (this.nonParticipants === reading) this.nonParticipants = undefined;
        throw error;
      },
    );
    this.nonParticipants = reading;
    return reading;
  }

  private cached<T>(cache: Map<string, Cached<T>>, key: string, compute: (now: Date) => Promise<{ value: T; until: number }>): Promise<T> {
    const now = this.clock();
    const hit = cache.get(key);
    if (hit && hit.generation === this.generation && now.getTime() < hit.until) return hit.value;
    const generation = this.generation;
    const entry: Cached<T> = { generation, until: Infinity, value: Promise.resolve(undefined as T) };
    entry.value = compute(now).then(
      ({ value, until }) => {
        entry.until = until;
        return value;
      },
      (error: unknown) => {
        cache.delete(key);
        throw error;
      },
    );
    cache.set(key, entry);
    return entry.value;
  }

  private async find<T>(type: string, query: string): Promise<T[]> {
    const where = await this.searches.criteriaFor(type, query, this.baseUrl);
    const found = await this.searches.find(type, where, MAX_RELATIONSHIPS);
    return found.filter((v) => v.body !== undefined).map((v) => JSON.parse(this.codec.decode(v.body!)) as T);
  }

  private async computeReach(organizationId: string, now: Date): Promise<{ value: Reach; until: number }> {
    const t = now.getTime();
    let until = Infinity;
    const underCare = new Set<string>();
    for (const episode of await this.find<EpisodeOfCare>('EpisodeOfCare', inForce.careRelationships(organizationId))) {
      until = Math.min(until, nextChange(episode.period, t));
      const patient = patientOf(episode.patient.reference);
      if (patient && within(episode.period, now)) underCare.add(patient);
    }
    let candidates = underCare;
    if (!CareNetwork.isPublicProvider(organizationId) && underCare.size > 0) {
      const consented = new Set<string>();
      for (const consent of await this.find<Consent>('Consent', inForce.sharingConsents(organizationId))) {
        until = Math.min(until, nextChange(consent.provision?.period, t));
        const patient = patientOf(consent.patient?.reference);
        if (patient && within(consent.provision?.period, now)) consented.add(patient);
      }
      candidates = new Set([...underCare].filter((p) => consented.has(p)));
    }
    if (candidates.size === 0) return { value: { patients: new Set() }, until };
    const active = await this.searches.find('Patient', [
      { kind: 'id', ids: [...candidates] },
      { kind: 'entry', param: 'active', anyOf: [[{ slot: 0, field: 'value', op: 'eq', value: 'true' }]] },
    ], MAX_RELATIONSHIPS);
    return { value: { patients: new Set(active.map((v) => v.id)) }, until };
  }

  private async computeGrants(accountId: string, now: Date): Promise<{ value: Grants; until: number }> {
    const t = now.getTime();
    let until = Infinity;
    const reasons = new Map<string, string>();
    for (const grant of await this.find<Consent>('Consent', inForce.restrictedGrants(accountId))) {
      until = Math.min(until, nextChange(grant.provision?.period, t));
      const patient = patientOf(grant.patient?.reference);
      if (!patient || !within(grant.provision?.period, now)) continue;
      const reason = grant.extension?.find((e) => e.url === ACCESS_SYSTEMS.accessReason)?.valueString ?? '';
      reasons.set(patient, reason);
    }
    return { value: { reasons }, until };
  }
}
