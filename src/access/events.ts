import type { Principal } from '../auth/principal.js';
import type { SharableTypeCode } from './classification.js';

/**
 * What happened in one request, as the access layer saw it: the input to the audit trail and
 * to patient notifications. Filled in while the request runs; recorded before the answer leaves.
 */
export interface AccessEvent {
  /** When the request arrived. */
  at: Date;
  /** Undefined when authentication failed (a refused attempt by someone unknown). */
  principal: Principal | undefined;
  /**
   * The FHIR interaction: read, vread, update, patch, delete, create, search-type,
   * search-system, search-compartment, history-instance, history-type, history-system,
   * or `operation` (then `operation` names it).
   */
  interaction: string;
  /** The operation's code without `$`, e.g. `give-consent`, when interaction is `operation`. */
  operation?: string;
  method: string;
  /** The request path and query as received (for searches: the query). */
  url: string;
  resourceType?: string;
  id?: string;
  /** The HTTP status answered. */
  status: number;
  /** Patients whose records were touched (read, returned, written or refused). */
  patients: string[];
  /** Sharable data types of the records touched. */
  dataTypes: SharableTypeCode[];
  /** The reason an HCProf gave for restricted access, when restricted records were reached. */
  restrictedReason?: string;
  /** True when restricted records were returned (the patient gets an extra notification). */
  restricted?: boolean;
  /** The client's network address. */
  clientAddress: string;
  /** Why it was refused, for 4xx answers. */
  refusal?: string;
  /**
   * An identity document looked up that no patient was found for ($establish-care): its system
   * and the number masked, so a privacy officer sees probing without the trail holding numbers.
   */
  identityDocument?: { system: string; value: string };
  /** Set for an entry of a batch or transaction recorded on its own (a failed one). */
  partOf?: 'batch' | 'transaction';
}

/** Where access events go; recording must finish (durably) before the answer is sent. */
export interface AccessRecorder {
  record(event: AccessEvent): Promise<void>;
}

/** A message to a patient through their chosen channel. */
export interface PatientMessage {
  channel: 'sms' | 'email' | 'post';
  /** Phone number, email address or postal address as text. */
  to: string;
  text: string;
}

/** Delivers messages to patients. Pluggable; the built-in one writes to the log. */
export interface NotificationSender {
  send(message: PatientMessage): Promise<void>;
}
