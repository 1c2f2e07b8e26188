import { createHash, randomUUID } from 'node:crypto';
import type { Communication, Organization, Patient } from 'fhir/r4.js';
import { pino, type BaseLogger } from 'pino';
import { indexResource } from '../fhir/search/indexer.js';
import { EHEALTH, territoryDate } from '../participation/rules.js';
import type { BodyCodec } from '../store/codec.js';
import { VersionConflictError, type ResourceStore, type SearchCriterion, type SearchCursor, type StoredVersion } from '../store/port.js';
import { SHARABLE_TYPES } from './classification.js';
import { contactOf, type Contact } from './contact.js';
import type { AccessEvent, AccessRecorder, NotificationSender, PatientMessage } from './events.js';

/**
 * Telling patients who accessed their record: an outbox of R4 Communications.
 *
 * `accessed` (also `record`, so the outbox can sit among the server's access recorders) queues a
 * notification per patient when an HCProf account's request succeeded and touched patients:
 * a Communication (status `preparation`, subject and recipient the Patient, sender the
 * PractitionerRole, category `notification-category|access`) whose text names the account's
 * HCP, when, and the data types. At most one per practitioner per patient per Hong Kong day:
 * its id is a hash of (patient, practitioner, day) and it is written with `expectedVersion:
 * null`, so concurrent requests and other server processes cannot queue a second one (a
 * version conflict means it is already queued); repeats are then answered from memory. Restricted
 * access always queues one of its own (category `restricted-access`). `accessed` resolves once
 * the Communication is stored.
 *
 * The dispatcher (`start`/`stop`, or `dispatchPending` directly) claims queued Communications
 * (status `in-progress`, written against the version it read, so one dispatcher sends each),
 * reads the patient's contact (`contactOf`) at send time, sends through the pluggable sender and
 * marks them `completed` with `sent` and `medium`. A failed send goes back to `preparation` with
 * an attempt count and a time before which it is not tried again (exponential backoff); after
 * `maxAttempts`, or when the patient has no contact, it ends `not-done` with a statusReason. A
 * claim left by a process that died is taken over after `claimTimeoutMs`, so delivery is at
 * least once. Nothing here throws into the server: dispatch failures are logged.
 */

export const NOTIFICATION_CATEGORY = `${EHEALTH}/CodeSystem/notification-category`;
export const NOTIFICATION_ATTEMPTS = `${EHEALTH}/StructureDefinition/notification-attempts`;
export const NOTIFICATION_NOT_BEFORE = `${EHEALTH}/StructureDefinition/notification-not-before`;

const PARTICIPATION_MODE = 'http://terminology.hl7.org/CodeSystem/v3-ParticipationMode';
const MEDIUM: Record<PatientMessage['channel'], { code: string; display: string }> = {
  sms: { code: 'SMSWRIT', display: 'SMS message' },
  email: { code: 'EMAILWRIT', display: 'email' },
  post: { code: 'MAILWRIT', display: 'mail' },
};

export type NotificationCategory = 'access' | 'restricted-access' | 'message';
const CATEGORY_DISPLAY: Record<NotificationCategory, string> = {
  access: 'Access to the patient record',
  'restricted-access': 'Access to restricted records',
  message: 'Message to the patient',
};

type Log = Pick<BaseLogger, 'info' | 'warn'>;

export interface NotificationOutboxOptions {
  /** This server's base URL (the local base for indexing references). */
  baseUrl: string;
  /** How often the dispatcher looks for queued notifications (default 5 s). */
  intervalMs?: number;
  /** Most notifications sent per dispatch (default 100). */
  batchSize?: number;
  /** Sends in flight at once within a dispatch (default 4). */
  concurrency?: number;
  /** Failed sends are retried after retryBaseMs × 2^(attempts − 1), at most retryMaxMs (defaults 30 s, 1 h). */
  retryBaseMs?: number;
  retryMaxMs?: number;
  /** Attempts before a notification is given up as not-done (default 20). */
  maxAttempts?: number;
  /** A claim older than this is taken over (default 5 min). */
  claimTimeoutMs?: number;
  clock?: () => Date;
  log?: Log;
}

export interface DispatchResult {
  sent: number;
  failed: number;
  /** Ended not-done (no contact, or attempts used up). */
  abandoned: number;
}

const TYPE_DISPLAY = new Map(SHARABLE_TYPES.map((t) => [t.code as string, t.display]));

/** `YYYY-MM-DD` and `HH:MM` in Hong Kong time. */
function territoryTime(at: Date): { date: string; time: string } {
  const shifted = new Date(at.getTime() + 8 * 3_600_000).toISOString();
  return { date: shifted.slice(0, 10), time: shifted.slice(11, 16) };
}

const tokenIs = (param: string, field: 'system' | 'value', value: string): SearchCriterion => ({
  kind: 'entry',
  param,
  anyOf: [[{ slot: 0, field, op: 'eq', value }]],
});

const ours = tokenIs('category', 'system', NOTIFICATION_CATEGORY);
const MAX_SCAN_PAGES = 10;

export class NotificationOutbox implements AccessRecorder {
  /** Patient and practitioner of the notifications known to be queued (seenKey), by Hong Kong day (the last two days kept). */
  private readonly queued = new Map<string, Set<string>>();
  /** Queue writes under way, so concurrent requests for one key share one write. */
  private readonly inFlight = new Map<string, Promise<void>>();
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<DispatchResult> | undefined;
  private rerun = false;
  private readonly log: Log;
  private readonly clock: () => Date;

  constructor(
    private readonly store: ResourceStore,
    private readonly codec: BodyCodec,
    private readonly sender: NotificationSender,
    private readonly options: NotificationOutboxOptions,
  ) {
    this.log = options.log ?? pino({ name: 'notifications' });
    this.clock = options.clock ?? (() => new Date());
  }

  /** An AccessRecorder: queues the notifications an access calls for. */
  record(event: AccessEvent): Promise<void> {
    return this.accessed(event);
  }

  async accessed(event: AccessEvent): Promise<void> {
    const principal = event.principal;
    // A 304 is an access too: the professional is shown the copy the server confirmed current.
    const shown = (event.status >= 200 && event.status < 300) || event.status === 304;
    if (principal?.kind !== 'account' || !shown || event.patients.length === 0) return;
    const day = territoryDate(event.at);
    const seen = this.seenOn(day);
    const patients = [...new Set(event.patients)];
    // Known to be queued today: looked up by a plain key, the notification's id (a hash) made
    // only for those still due (an answer naming 20 patients already notified: 61 -> 12 us).
    const due = event.restricted ? patients : patients.filter((patient) => !seen.has(seenKey(patient, principal.practitionerId)));
    if (due.length === 0) return;
    const text = this.accessText(event, await this.providerName(principal.organizationId));
    await Promise.all(
      due.map((patient) => {
        const key = event.restricted ? undefined : dedupeId(patient, principal.practitionerId, day);
        const communication = this.communication(key ?? randomUUID(), patient, event.restricted ? 'restricted-access' : 'access', text, `PractitionerRole/${principal.accountId}`);
        if (key === undefined) return this.queue(communication);
        let pending = this.inFlight.get(key);
        if (!pending) {
          pending = this.queue(communication)
            .then(() => void seen.add(seenKey(patient, principal.practitionerId)))
            .finally(() => this.inFlight.delete(key));
          this.inFlight.set(key, pending);
        }
        return pending;
      }),
    );
    if (this.timer) this.kick();
  }

  /**
   * Sends a one-off message (e.g. a one-time password) to the patient's contact now, and records
   * it as a completed Communication. `recordedText` is what the record keeps instead of the
   * text (never store a secret). Resolves with the contact used, or undefined when the patient
   * is unknown or has no contact (nothing sent or recorded). A failed send rejects.
   */
  async notifyPatient(patientId: string, text: string, options: { recordedText?: string; category?: NotificationCategory } = {}): Promise<Contact | undefined> {
    const contact = await this.contactOfPatient(patientId);
    if (!contact) return undefined;
    await this.sender.send({ ...contact, text });
    const communication = this.communication(randomUUID(), patientId, options.category ?? 'message', options.recordedText ?? text);
    await this.queue({ ...communication, status: 'completed', sent: this.clock().toISOString(), medium: [this.medium(contact)] });
    return contact;
  }

  /** Starts the dispatcher's timer (it does not keep the process alive). */
  start(): void {
    if (this.timer) return;
    this.timer = setInterval(() => this.kick(), this.options.intervalMs ?? 5_000);
    this.timer.unref();
  }

  /** Stops the timer and waits for a dispatch under way. */
  async stop(): Promise<void> {
    clearInterval(this.timer);
    this.timer = undefined;
    this.rerun = false;
    await this.running?.catch(() => undefined);
  }

  /** Sends what is due now (one bounded batch); a dispatch already under way is shared. */
  dispatchPending(): Promise<DispatchResult> {
    this.running ??= this.dispatch().finally(() => {
      this.running = undefined;
    });
    return this.running;
  }

  /** A dispatch in the background, never throwing; another follows if asked for meanwhile. */
  private kick(): void {
    if (this.running) {
      this.rerun = true;
      return;
    }
    this.dispatchPending()
      .catch((error: unknown) => this.log.warn({ err: describe(error) }, 'notification dispatch failed; will retry'))
      .finally(() => {
        if (this.rerun && this.timer) {
          this.rerun = false;
          setImmediate(() => this.kick());
        }
      });
  }

  private async dispatch(): Promise<DispatchResult> {
    const result: DispatchResult = { sent: 0, failed: 0, abandoned: 0 };
    const due = await this.due(this.clock());
    const concurrency = Math.max(1, this.options.concurrency ?? 4);
    let next = 0;
    const worker = async () => {
      while (next < due.length) {
        const version = due[next++]!;
        try {
          const outcome = await this.dispatchOne(version);
          if (outcome) result[outcome]++;
        } catch (error) {
          // The store failed while claiming or marking: the claim times out and is retried.
          this.log.warn({ err: describe(error), communication: version.id }, 'notification dispatch step failed');
        }
      }
    };
    await Promise.all(Array.from({ length: Math.min(concurrency, due.length) }, worker));
    return result;
  }

  /** Queued notifications due now, oldest first, and claims that timed out. */
  private async due(now: Date): Promise<StoredVersion[]> {
    const batchSize = this.options.batchSize ?? 100;
    const claimTimeout = this.options.claimTimeoutMs ?? 5 * 60_000;
    const abandonedClaims = await this.store.search({
      resourceTypes: ['Communication'],
      where: [ours, tokenIs('status', 'value', 'in-progress'), { kind: 'lastUpdated', tests: [{ op: 'lt', value: now.getTime() - claimTimeout }] }],
      sort: [{ param: '_lastUpdated', descending: false }],
      limit: batchSize,
    });
    const due = abandonedClaims.map((hit) => hit.version);
    // Oldest first. One that failed was rewritten then, so it sorts behind those queued before;
    // those still backing off are skipped, looking through a bounded number of pages.
    let after: SearchCursor | undefined;
    for (let page = 0; page < MAX_SCAN_PAGES && due.length < batchSize; page++) {
      const hits = await this.store.search({
        resourceTypes: ['Communication'],
        where: [ours, tokenIs('status', 'value', 'preparation')],
        sort: [{ param: '_lastUpdated', descending: false }],
        limit: batchSize,
        ...(after && { after }),
      });
      for (const { version } of hits) {
        const notBefore = this.decode(version).extension?.find((e) => e.url === NOTIFICATION_NOT_BEFORE)?.valueInstant;
        if (!notBefore || Date.parse(notBefore) <= now.getTime()) due.push(version);
      }
      if (hits.length < batchSize) break;
      after = hits[hits.length - 1]!.cursor;
    }
    return due.slice(0, batchSize);
  }

  private async dispatchOne(version: StoredVersion): Promise<keyof DispatchResult | undefined> {
    const claimed = await this.rewrite(version, (c) => ({ ...c, status: 'in-progress' }));
    if (!claimed) return undefined;
    const communication = this.decode(claimed);
    const patientId = communication.subject?.reference?.replace(/^Patient\//, '') ?? '';
    const contact = await this.contactOfPatient(patientId);
    if (!contact) {
      await this.rewrite(claimed, (c) => ({ ...c, status: 'not-done', statusReason: { text: 'The patient has no contact for notifications' } }));
      return 'abandoned';
    }
    const text = communication.payload?.[0]?.contentString ?? '';
    try {
      await this.sender.send({ ...contact, text });
    } catch (error) {
      const attempts = attemptsOf(communication) + 1;
      const maxAttempts = this.options.maxAttempts ?? 20;
      this.log.warn({ err: describe(error), communication: claimed.id, channel: contact.channel, attempts }, 'patient notification not delivered');
      if (attempts >= maxAttempts) {
        await this.rewrite(claimed, (c) => ({ ...withAttempts(c, attempts), status: 'not-done', statusReason: { text: `Not delivered after ${attempts} attempts` } }));
        return 'abandoned';
      }
      const delay = Math.min((this.options.retryBaseMs ?? 30_000) * 2 ** (attempts - 1), this.options.retryMaxMs ?? 3_600_000);
      const notBefore = new Date(this.clock().getTime() + delay).toISOString();
      await this.rewrite(claimed, (c) => ({
        ...withAttempts(c, attempts, notBefore),
        status: 'preparation',
      }));
      return 'failed';
    }
    await this.rewrite(claimed, (c) => ({ ...withAttempts(c, attemptsOf(c) + 1), status: 'completed', sent: this.clock().toISOString(), medium: [this.medium(contact)] }));
    return 'sent';
  }

  /** Writes the next version of a Communication against the one read; undefined when someone else wrote first. */
  private async rewrite(version: StoredVersion, change: (c: Communication) => Communication): Promise<StoredVersion | undefined> {
    const { meta: _meta, ...current } = this.decode(version);
    try {
      return await this.write(change(current), version.versionId);
    } catch (error) {
      if (error instanceof VersionConflictError) return undefined;
      throw error;
    }
  }

  /** Stores a new Communication; already queued (same id) is not an error. */
  private async queue(communication: Communication): Promise<void> {
    try {
      await this.write(communication, null);
    } catch (error) {
      if (!(error instanceof VersionConflictError)) throw error;
    }
  }

  private write(communication: Communication, expectedVersion: number | null): Promise<StoredVersion> {
    const { resourceType, id, meta: _meta, ...rest } = communication;
    return this.store.write({
      resourceType,
      id: id!,
      expectedVersion,
      index: indexResource(communication as unknown as Record<string, unknown> & { resourceType: string }, { localBase: this.options.baseUrl }),
      renderBody: (versionId, lastUpdated) =>
        this.codec.encode(JSON.stringify({ resourceType, id, meta: { versionId: String(versionId), lastUpdated: new Date(lastUpdated).toISOString() }, ...rest })),
    });
  }

  private communication(id: string, patientId: string, category: NotificationCategory, text: string, sender?: string): Communication {
    return {
      resourceType: 'Communication',
      id,
      status: 'preparation',
      category: [{ coding: [{ system: NOTIFICATION_CATEGORY, code: category, display: CATEGORY_DISPLAY[category] }] }],
      subject: { reference: `Patient/${patientId}` },
      recipient: [{ reference: `Patient/${patientId}` }],
      ...(sender && { sender: { reference: sender } }),
      payload: [{ contentString: text }],
    };
  }

  private medium(contact: Contact) {
    const { code, display } = MEDIUM[contact.channel];
    return { coding: [{ system: PARTICIPATION_MODE, code, display }], text: contact.channel };
  }

  private accessText(event: AccessEvent, provider: string): string {
    const { date, time } = territoryTime(event.at);
    const types = [...new Set(event.dataTypes)].map((code) => TYPE_DISPLAY.get(code) ?? code);
    const what = types.length > 0 ? ` Data accessed: ${types.join('; ')}.` : '';
    if (event.restricted) {
      return `eHealth: a healthcare professional of ${provider} accessed records under restricted control in your eHealth record on ${date} at ${time} (Hong Kong time).${what}`;
    }
    return `eHealth: a healthcare professional of ${provider} accessed your eHealth record on ${date} at ${time} (Hong Kong time).${what}`;
  }

  private async providerName(organizationId: string): Promise<string> {
    const stored = await this.store.readCurrent('Organization', organizationId);
    const name = stored?.body && !stored.deleted ? (JSON.parse(this.codec.decode(stored.body)) as Organization).name : undefined;
    return name ?? `healthcare provider ${organizationId}`;
  }

  private async contactOfPatient(patientId: string): Promise<Contact | undefined> {
    const stored = patientId ? await this.store.readCurrent('Patient', patientId) : undefined;
    if (!stored?.body || stored.deleted) return undefined;
    return contactOf(JSON.parse(this.codec.decode(stored.body)) as Patient);
  }

  private seenOn(day: string): Set<string> {
    let seen = this.queued.get(day);
    if (!seen) {
      seen = new Set();
      this.queued.set(day, seen);
      // Keep yesterday too (requests in flight at midnight); forget older days.
      for (const known of [...this.queued.keys()].sort().slice(0, -2)) this.queued.delete(known);
    }
    return seen;
  }

  private decode(version: StoredVersion): Communication {
    return JSON.parse(this.codec.decode(version.body!)) as Communication;
  }
}

/** A patient and practitioner as one key within a day's set (ids hold no NUL). */
const seenKey = (patientId: string, practitionerId: string) => `${patientId}\u0000${practitionerId}`;

/** The id of the one notification of a practitioner's access to a patient on a day. */
export function dedupeId(patientId: string, practitionerId: string, day: string): string {
  return `access-${createHash('sha256').update(JSON.stringify([patientId, practitionerId, day])).digest('hex').slice(0, 48)}`;
}

function attemptsOf(communication: Communication): number {
  return communication.extension?.find((e) => e.url === NOTIFICATION_ATTEMPTS)?.valueInteger ?? 0;
}

function withAttempts(communication: Communication, attempts: number, notBefore?: string): Communication {
  const others = (communication.extension ?? []).filter((e) => e.url !== NOTIFICATION_ATTEMPTS && e.url !== NOTIFICATION_NOT_BEFORE);
  return {
    ...communication,
    extension: [...others, { url: NOTIFICATION_ATTEMPTS, valueInteger: attempts }, ...(notBefore ? [{ url: NOTIFICATION_NOT_BEFORE, valueInstant: notBefore }] : [])],
  };
}

const describe = (error: unknown) => (error instanceof Error ? error.message : String(error));

/**
 * The built-in sender: a log line per message naming the channel and a masked destination,
 * never the text (notifications may carry health data) nor the full address.
 */
export class LogSender implements NotificationSender {
  constructor(private readonly log: Pick<BaseLogger, 'info'> = pino({ name: 'notifications' })) {}

  async send(message: PatientMessage): Promise<void> {
    this.log.info({ channel: message.channel, to: maskDestination(message) }, 'patient notification sent');
  }
}

/** Enough of a destination to tell messages apart in a log, not enough to reach the patient. */
export function maskDestination({ channel, to }: Pick<PatientMessage, 'channel' | 'to'>): string {
  if (channel === 'email') {
    const at = to.lastIndexOf('@');
    const domain = at >= 0 ? to.slice(at + 1) : '';
    return `${to.slice(0, Math.min(1, Math.max(at, 0)))}***@${domain}`;
  }
  if (channel === 'sms') {
    const digits = to.replace(/\D/g, '');
    return `***${digits.slice(-3)}`;
  }
  return '[postal address]';
}
