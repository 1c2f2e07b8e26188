import type { Organization, OperationOutcome, Patient } from 'fhir/r4.js';
import type { AccountPrincipal, Principal } from '../auth/principal.js';
import { contactOf } from '../access/contact.js';
import type { NotificationSender } from '../access/events.js';
import { ACCESS_SYSTEMS, RESTRICTED_ACCESS, RESTRICTED_GRANT_MS, type AdditionalConsentMethod, type RestrictedAccessGrant } from '../access/model.js';
import { badRequest, FhirError, notFound } from '../fhir/outcome.js';
import type { CardReadingVerifier } from './card-readings.js';
import { requireClinicalAccount } from './care.js';
import { nowIso, rule } from './checks.js';
import { consentScope, optIn, recipientRole } from './consents.js';
import type { OperationResult } from './patients.js';
import type { Inputs } from './parameters.js';
import { documentMatches, identityDocumentsOf, isPublicProvider, reachable, registeredPatient } from './reach.js';
import type { Records } from './records.js';
import { AttemptLimiter, minutes, OneTimeCodes, tooManyAttempts } from './secrets.js';

/**
 * Restricted control: records labelled restricted stay hidden from a community HCP's
 * professional until the professional gives a reason and the patient gives additional consent
 * for that access, by reading out a one-time password sent to them ($request-restricted-access,
 * then $grant-restricted-access with `otp`) or with their smart HKIC (`cardReading`, signed by a
 * card reader of the HCP: see card-readings.ts; a typed number is no evidence). The
 * grant is a Consent (category restricted-access) for the one account, lasting
 * RESTRICTED_GRANT_MS. HA and DH are outside restricted control.
 */

export const RESTRICTED_OTP = { digits: 6, ttlMs: 5 * 60_000 } as const;
/** Wrong passwords (or cards read) per patient and account. */
export const RESTRICTED_WRONG_LIMIT = { max: 5, windowMs: 15 * 60_000, lockMs: 15 * 60_000 } as const;
/** Passwords sent per patient and account: no flood of messages to a patient. */
export const RESTRICTED_REQUEST_LIMIT = { max: 5, windowMs: 15 * 60_000, lockMs: 15 * 60_000 } as const;

/** The sender used until the server wires a real one: it sends nothing. */
export const discardingSender: NotificationSender = {
  async send() {},
};

const NOT_KNOWN = (id: string) => `Patient/${id} is not known`;

function reasonParameter(inputs: Inputs): string {
  const reason = inputs.string('reason', true).trim();
  if (!reason) throw badRequest("Parameter 'reason' is required: why this professional needs the patient's restricted records", ["Parameters.parameter('reason')"]);
  return reason;
}

export class RestrictedAccessRegistry {
  private readonly passwords: OneTimeCodes<{ reason: string }>;
  private readonly wrong: AttemptLimiter;
  private readonly requests: AttemptLimiter;

  constructor(
    private readonly records: Records,
    private readonly cardReadings: CardReadingVerifier,
    private readonly sender: NotificationSender = discardingSender,
    private readonly clock: () => Date = () => new Date(),
  ) {
    this.passwords = new OneTimeCodes(RESTRICTED_OTP, clock);
    this.wrong = new AttemptLimiter(RESTRICTED_WRONG_LIMIT, clock);
    this.requests = new AttemptLimiter(RESTRICTED_REQUEST_LIMIT, clock);
  }

  async request(principal: Principal, id: string, inputs: Inputs, baseUrl: string): Promise<OperationResult> {
    const account = requireClinicalAccount(principal, 'asks for access to restricted records');
    const reason = reasonParameter(inputs);
    const { patient, organization } = await this.reach(account, id, baseUrl);
    const contact = contactOf(patient);
    if (!contact) throw rule('The patient has no phone, email or postal address on record to receive a one-time password; the patient can consent with their smart HKIC instead', ["Patient.telecom"]);
    const key = `${id}|${account.accountId}`;
    const lockedUntil = this.requests.lockedUntil(key);
    if (lockedUntil) throw FhirError.of(429, 'throttled', `Too many one-time passwords have been sent to this patient for this account; try again after ${lockedUntil.toISOString()}`);
    this.requests.record(key);

    const { code } = this.passwords.issue(key, { reason });
    const text =
      `eHealth: ${organization.name ?? 'A healthcare provider'} asks to see your restricted health records. Reason: ${reason}. ` +
      `If you agree, tell the healthcare professional this one-time password: ${code}. It expires in ${minutes(RESTRICTED_OTP.ttlMs)}. If you do not agree, ignore this message.`;
    try {
      await this.sender.send({ ...contact, text });
    } catch {
      this.passwords.forget(key);
      throw FhirError.of(503, 'transient', 'The one-time password could not be sent to the patient; try again, or use the smart HKIC');
    }
    const body: OperationOutcome = {
      resourceType: 'OperationOutcome',
      issue: [{ severity: 'information', code: 'informational', diagnostics: `A one-time password was sent to the patient by ${contact.channel}; it is valid for ${minutes(RESTRICTED_OTP.ttlMs)}. Give it with $grant-restricted-access (parameter 'otp').` }],
    };
    return { status: 200, body };
  }

  async grant(principal: Principal, id: string, inputs: Inputs, baseUrl: string): Promise<OperationResult> {
    const account = requireClinicalAccount(principal, 'is granted access to restricted records');
    const reason = reasonParameter(inputs);
    const otp = inputs.string('otp');
    const cardReading = inputs.string('cardReading');
    if (inputs.string('identityDocument') !== undefined) {
      throw badRequest("A number typed or keyed from the card is no evidence of the patient's consent; give 'cardReading', the reading of the smart HKIC signed by this HCP's card reader, or 'otp'", ["Parameters.parameter('identityDocument')"]);
    }
    if ((otp === undefined) === (cardReading === undefined)) {
      throw badRequest("Give either 'otp' (the one-time password the patient received) or 'cardReading' (the reading of the patient's smart HKIC signed by this HCP's card reader)", ["Parameters.parameter('otp')", "Parameters.parameter('cardReading')"]);
    }
    const { patient } = await this.reach(account, id, baseUrl);
    const key = `${id}|${account.accountId}`;
    const lockedUntil = this.wrong.lockedUntil(key);
    if (lockedUntil) throw tooManyAttempts("Additional consent for this patient and account", lockedUntil);

    let method: AdditionalConsentMethod;
    if (otp !== undefined) {
      method = 'otp';
      const expression = ["Parameters.parameter('otp')"];
      if (!/^\d{6}$/.test(otp.trim())) throw rule('A one-time password is 6 digits', expression);
      const requested = this.passwords.peek(key);
      if (requested && requested.reason !== reason) {
        throw rule('The reason differs from the one sent to the patient with the password; give the same reason, or request a new password', ["Parameters.parameter('reason')"]);
      }
      if (!this.passwords.redeem(key, otp)) this.wrongAttempt(key, 'The one-time password is wrong, expired or already used', expression);
    } else {
      method = 'smart-hkic';
      const expression = ["Parameters.parameter('cardReading')"];
      const read = await this.cardReadings.verify(cardReading!, account.organizationId, 'cardReading');
      if (!identityDocumentsOf(patient).some((d) => d.type.code === 'hkic')) throw rule('The patient has no Hong Kong Identity Card on record; use a one-time password', expression);
      if (!documentMatches(patient, read.value, ['hkic'], read.system)) this.wrongAttempt(key, "The card read is not the patient's registered HKIC", expression);
    }
    this.wrong.reset(key);

    const now = this.clock();
    const grant: RestrictedAccessGrant = {
      resourceType: 'Consent',
      extension: [
        { url: ACCESS_SYSTEMS.accessReason, valueString: reason },
        { url: ACCESS_SYSTEMS.consentMethod, valueCode: method },
      ],
      status: 'active',
      scope: consentScope(),
      category: [{ coding: [{ system: ACCESS_SYSTEMS.consentCategory, code: RESTRICTED_ACCESS }] }],
      patient: { reference: `Patient/${id}` },
      dateTime: nowIso(now),
      performer: [{ reference: `Patient/${id}` }],
      policyRule: optIn(),
      provision: {
        type: 'permit',
        period: { start: nowIso(now), end: new Date(now.getTime() + RESTRICTED_GRANT_MS).toISOString() },
        actor: [{ role: recipientRole(), reference: { reference: `PractitionerRole/${account.accountId}` } }],
      },
    };
    const stored = await this.records.create(grant, baseUrl);
    return { status: 201, body: stored, location: `Consent/${stored.id}` };
  }

  private wrongAttempt(key: string, message: string, expression: string[]): never {
    if (this.wrong.record(key)) {
      this.passwords.forget(key);
      throw rule(`${message}. After ${RESTRICTED_WRONG_LIMIT.max} wrong attempts additional consent for this patient is locked for ${minutes(RESTRICTED_WRONG_LIMIT.lockMs)}`, expression);
    }
    throw rule(message, expression);
  }

  /** The patient, when the account's HCP may reach them; otherwise the same 404 as for an unknown patient. */
  private async reach(account: AccountPrincipal, id: string, baseUrl: string): Promise<{ patient: Patient & { id: string }; organization: Organization & { id: string } }> {
    const org = await this.records.current<Organization>('Organization', account.organizationId);
    if (!org) throw FhirError.of(403, 'forbidden', "This account's healthcare provider is not known");
    if (isPublicProvider(org.resource)) {
      throw rule(`Restricted control applies to HCPs in the community; ${org.resource.name ?? 'this public provider'}'s professionals need no additional consent`);
    }
    const patient = await registeredPatient(this.records, id);
    if (!patient || !(await reachable(this.records, patient.resource, org.resource, this.clock(), baseUrl))) throw notFound(NOT_KNOWN(id));
    return { patient: patient.resource, organization: org.resource };
  }
}
