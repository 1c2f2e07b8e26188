import type { Extension, Resource } from 'fhir/r4.js';
import { SYSTEMS } from './rules.js';

/**
 * A participant's state (patient or HCP), kept on the resource as one extension: the status,
 * when it took or takes effect, and why. `active` on the resource mirrors it, so plain FHIR
 * clients (and `active=true` searches) see the same thing.
 */

export type PatientStatus = 'pending-activation' | 'active' | 'withdrawn';
export type ProviderStatus = 'applied' | 'active' | 'suspended' | 'cancelled' | 'withdrawn';
export type ParticipationStatus = PatientStatus | ProviderStatus;

export interface StatusRecord {
  status: ParticipationStatus;
  /** When the status took effect (ISO dateTime; never in the future). */
  effective: string;
  reason?: string;
  /** The status before this one. */
  previous?: ParticipationStatus;
}

type WithExtensions = Resource & { extension?: Extension[]; active?: boolean };

export function readStatus(resource: WithExtensions): StatusRecord | undefined {
  const ext = resource.extension?.find((e) => e.url === SYSTEMS.participationStatus);
  if (!ext) return undefined;
  const part = (url: string) => ext.extension?.find((e) => e.url === url);
  const status = part('status')?.valueCode as ParticipationStatus | undefined;
  const effective = part('effective')?.valueDateTime;
  if (!status || !effective) return undefined;
  const record: StatusRecord = { status, effective };
  const reason = part('reason')?.valueString;
  const previous = part('previous')?.valueCode as ParticipationStatus | undefined;
  if (reason) record.reason = reason;
  if (previous) record.previous = previous;
  return record;
}

export function statusOf(resource: WithExtensions): ParticipationStatus | undefined {
  return readStatus(resource)?.status;
}

/** A copy of the resource carrying the new status, with `active` mirroring it. */
export function withStatus<T extends WithExtensions>(resource: T, record: StatusRecord): T {
  const parts: Extension[] = [
    { url: 'status', valueCode: record.status },
    { url: 'effective', valueDateTime: record.effective },
  ];
  if (record.reason) parts.push({ url: 'reason', valueString: record.reason });
  if (record.previous) parts.push({ url: 'previous', valueCode: record.previous });
  const others = (resource.extension ?? []).filter((e) => e.url !== SYSTEMS.participationStatus);
  const next = { ...resource, extension: [...others, { url: SYSTEMS.participationStatus, extension: parts }] };
  next.active = record.status === 'active';
  return next;
}

export function sameStatus(a: WithExtensions, b: WithExtensions): boolean {
  return JSON.stringify(readStatus(a) ?? null) === JSON.stringify(readStatus(b) ?? null);
}
