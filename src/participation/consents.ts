import { createHash } from 'node:crypto';
import type { Bundle, BundleEntry, CodeableConcept, Consent, Organization, Patient, Reference } from 'fhir/r4.js';
import type { Principal } from '../auth/principal.js';
import { ACCESS_SYSTEMS, SHARING, type ConsentMethod, type ConsentOption, type SharingConsent } from '../access/model.js';
import { forbidden } from '../access/rights.js';
import { badRequest, notFound } from '../fhir/outcome.js';
import { KeyedLock } from '../fhir/keyed-lock.js';
import { ACCESS_KEY_LIMIT, type AccessKeyRegistry } from './access-keys.js';
import type { CardReadingVerifier } from './card-readings.js';
import { conflict, nowIso, refId, rule } from './checks.js';
import type { OperationResult } from './patients.js';
import type { Inputs } from './parameters.js';
import { documentMatches, identityDocumentsOf, isPublicProvider, registeredPatient, registeredProvider } from './reach.js';
import type { Current, Records } from './records.js';
import { EHEALTH, endOfDay, RULES, territoryDate } from './rules.js';
import { AttemptLimiter, tooManyAttempts } from './secrets.js';
import { readStatus } from './status.js';

/**
 * Sharing consents: one Consent per patient per HCP (category `sharing`, the HCP as
 * provision.actor), given by the patient (eHealth App, voice response line) or recorded at the
 * HCP (smart HKIC: a reading signed by the HCP's card reader, see card-readings.ts; access key;
 * signed form) or by the registration office (signed form);
 * revoked by the patient at any time, with immediate effect. HA and DH hold consent from
 * joining: nothing is stored for them, and $consents shows them generated on the fly.
 */

export const OPTIONS: readonly ConsentOption[] = ['indefinite', 'one-year'];
export const METHODS: readonly ConsentMethod[] = ['smart-hkic', 'ehealth-app', 'access-key', 'voice-response', 'signed-form'];

/** Which methods each kind of principal records consent by. */
const METHODS_BY_PRINCIPAL: Record<'own' | 'account' | 'registration-office', readonly ConsentMethod[]> = {
  own: ['ehealth-app', 'voice-response'],
  account: ['smart-hkic', 'access-key', 'signed-form'],
  'registration-office': ['signed-form'],
};

/** meta.tag on the Consents $consents makes up for HA and DH: shown, never stored. */
export const IMPLICIT_CONSENT_TAG = { system: `${EHEALTH}/CodeSystem/consent-tag`, code: 'implicit', display: 'Held by a public provider from joining eHealth; generated for display, not stored' } as const;

const SCOPE: CodeableConcept = { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/consentscope', code: 'patient-privacy', display: 'Privacy Consent' }] };
const OPT_IN: CodeableConcept = { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/v3-ActCode', code: 'OPTIN', display: 'opt-in' }] };
const RECIPIENT: CodeableConcept = { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/v3-ParticipationType', code: 'IRCP', display: 'information recipient' }] };
const sharingCategory = (): SharingConsent['category'] => [{ coding: [{ system: ACCESS_SYSTEMS.consentCategory, code: SHARING }] }];

export const consentScope = () => structuredClone(SCOPE);
export const optIn = () => structuredClone(OPT_IN);
export const recipientRole = () => structuredClone(RECIPIENT);

/** The one id a patient's sharing consent to an HCP has, so concurrent gives write one resource. */
export function sharingConsentId(patientId: string, organizationId: string): string {
  return `sharing-${createHash('sha256').update(`${patientId}|${organizationId}`).digest('hex').slice(0, 40)}`;
}

/** The end of a one-year consent: the end of the Hong Kong day one year on (29 February → 28 February). */
export function oneYearEnd(now: Date): string {
  const [y, m, d] = territoryDate(now).split('-').map(Number) as [number, number, number];
  const lastDay = new Date(Date.UTC(y + 1, m, 0)).getUTCDate();
  const date = `${y + 1}-${String(m).padStart(2, '0')}-${String(Math.min(d, lastDay)).padStart(2, '0')}`;
  return new Date(endOfDay(date)).toISOString();
}

/** An `organization` parameter: a reference to an Organization. */
export function organizationParameter(inputs: Inputs): string {
  const value = inputs.string('organization', true);
  const id = refId(value, 'Organization');
  if (!id || !/^[A-Za-z0-9\-.]{1,64}$/.test(id)) throw badRequest("Parameter 'organization' must be a reference to an HCP (Organization/id)", ["Parameters.parameter('organization')"]);
  return id;
}

function codeParameter<T extends string>(inputs: Inputs, name: string, allowed: readonly T[]): T {
  const value = inputs.string(name, true);
  if (!allowed.includes(value as T)) throw badRequest(`Parameter '${name}' must be one of: ${allowed.join(', ')}`, [`Parameters.parameter('${name}')`]);
  return value as T;
}

const ownPatient = (principal: Principal, id: string) => (principal.kind === 'patient' || principal.kind === 'sdm') && principal.patientId === id;
const providerName = (org: Organization, id: string) => org.name ?? `Organization/${id}`;

export class ConsentRegistry {
  /** Gives and revocations of one consent run one at a time in this process. */
  private readonly writing = new KeyedLock();
  /** Wrong identity-document numbers offered as evidence, per patient: limited like access keys. */
  private readonly wrongDocuments: AttemptLimiter;

  constructor(
    private readonly records: Records,
    private readonly accessKeys: AccessKeyRegistry,
    private readonly cardReadings: CardReadingVerifier,
    private readonly clock: () => Date = () => new Date(),
  ) {
    this.wrongDocuments = new AttemptLimiter(ACCESS_KEY_LIMIT, clock);
  }

  async give(principal: Principal, id: string, inputs: Inputs, baseUrl: string): Promise<OperationResult> {
    const organizationId = organizationParameter(inputs);
    const option = codeParameter(inputs, 'option', OPTIONS);
    const method = codeParameter(inputs, 'method', METHODS);
    const accessKey = inputs.string('accessKey');
    const identityDocument = inputs.string('identityDocument');
    const cardReading = inputs.string('cardReading');

    // Who may record it, and by which method.
    let by: keyof typeof METHODS_BY_PRINCIPAL;
    if (ownPatient(principal, id)) by = 'own';
    else if (principal.kind === 'account') {
      if (principal.unusable) throw forbidden(principal.unusable);
      if (principal.organizationId !== organizationId) throw forbidden("An HCP's account records sharing consent to its own HCP only");
      by = 'account';
    } else if (principal.kind === 'registration-office') by = 'registration-office';
    else throw forbidden("Only the patient or their substitute decision maker, an account of the HCP receiving consent, or the registration office records a sharing consent");
    if (!METHODS_BY_PRINCIPAL[by].includes(method)) {
      const who = { own: 'The patient gives consent themselves', account: 'At the HCP, consent is recorded', 'registration-office': 'The registration office records consent' }[by];
      throw rule(`${who} by ${METHODS_BY_PRINCIPAL[by].join(', ')}; not by '${method}'`, ["Parameters.parameter('method')"]);
    }
    if (accessKey !== undefined && method !== 'access-key') throw badRequest("Parameter 'accessKey' applies to method access-key only", ["Parameters.parameter('accessKey')"]);
    if (method === 'smart-hkic' && identityDocument !== undefined) {
      throw badRequest("A number typed or keyed from the card is no evidence that the card was read; give 'cardReading', the reading signed by this HCP's card reader", ["Parameters.parameter('identityDocument')"]);
    }
    if (cardReading !== undefined && method !== 'smart-hkic') throw badRequest("Parameter 'cardReading' applies to method smart-hkic only", ["Parameters.parameter('cardReading')"]);
    if (method === 'smart-hkic' && !cardReading) throw badRequest("Parameter 'cardReading' (the reading of the smart HKIC signed by this HCP's card reader) is required with method smart-hkic", ["Parameters.parameter('cardReading')"]);
    const needsDocument = method === 'signed-form' && by === 'account';
    if (identityDocument !== undefined && !needsDocument) throw badRequest("Parameter 'identityDocument' applies to method signed-form at an HCP only", ["Parameters.parameter('identityDocument')"]);
    if (method === 'access-key' && !accessKey) throw badRequest("Parameter 'accessKey' (the patient's 8-digit access key) is required with method access-key", ["Parameters.parameter('accessKey')"]);
    if (method === 'access-key' && !/^\d{8}$/.test(accessKey!.trim())) throw rule('An access key is 8 digits', ["Parameters.parameter('accessKey')"]);
    if (needsDocument && !identityDocument) {
      throw badRequest("Parameter 'identityDocument' (the number on the signed form, checked against the identity document) is required", ["Parameters.parameter('identityDocument')"]);
    }
    // Checked (and used up) before the patient is looked up: a reading that is no evidence gets the same answer for every patient.
    const read = method === 'smart-hkic' && principal.kind === 'account' ? await this.cardReadings.verify(cardReading!, principal.organizationId, 'cardReading') : undefined;

    const now = this.clock();
    const patient = await this.activePatient(principal, id);
    const hcp = await registeredProvider(this.records, organizationId);
    if (!hcp) throw rule(`Organization/${organizationId} is not a registered healthcare provider`, ["Parameters.parameter('organization')"]);
    if (isPublicProvider(hcp.resource)) {
      throw rule(`${providerName(hcp.resource, organizationId)} holds sharing consent from the patient's joining eHealth; no consent is given to it`, ["Parameters.parameter('organization')"]);
    }
    const hcpStatus = readStatus(hcp.resource)!.status;
    if (hcpStatus !== 'active') throw conflict(`Organization/${organizationId} is ${hcpStatus} in eHealth; sharing consent is given to active HCPs only`);

    // The evidence that the patient is the one consenting.
    if (method === 'access-key') this.accessKeys.redeem(id, accessKey!);
    if (read) this.checkDocument(patient.resource, read.value, { types: ['hkic'], system: read.system, parameter: 'cardReading' });
    if (needsDocument) this.checkDocument(patient.resource, identityDocument!, { parameter: 'identityDocument' });

    const consentId = sharingConsentId(id, organizationId);
    return this.writing.run(consentId, async () => {
      const current = await this.records.current<Consent>('Consent', consentId);
      const performer: Reference = principal.kind === 'sdm' ? { reference: `RelatedPerson/${principal.relatedPersonId}` } : { reference: `Patient/${id}` };
      const consent: SharingConsent & { id: string } = {
        resourceType: 'Consent',
        id: consentId,
        extension: [
          { url: ACCESS_SYSTEMS.consentOption, valueCode: option },
          { url: ACCESS_SYSTEMS.consentMethod, valueCode: method },
        ],
        status: 'active',
        scope: consentScope(),
        category: sharingCategory(),
        patient: { reference: `Patient/${id}` },
        dateTime: nowIso(now),
        performer: [performer],
        policyRule: optIn(),
        provision: {
          type: 'permit',
          period: { start: nowIso(now), ...(option === 'one-year' && { end: oneYearEnd(now) }) },
          actor: [{ role: recipientRole(), reference: { reference: `Organization/${organizationId}`, display: providerName(hcp.resource, organizationId) } }],
        },
      };
      if (current) return { status: 200, body: await this.records.replace(consent, current.versionId, baseUrl) };
      const stored = await this.records.createWithId(consent, baseUrl);
      return { status: 201, body: stored, location: `Consent/${stored.id}` };
    });
  }

  async revoke(principal: Principal, id: string, inputs: Inputs, baseUrl: string): Promise<OperationResult> {
    if (!ownPatient(principal, id) && principal.kind !== 'registration-office') {
      throw forbidden('Only the patient, their substitute decision maker or the registration office revokes a sharing consent');
    }
    const organizationId = organizationParameter(inputs);
    const now = this.clock();
    const patient = await registeredPatient(this.records, id);
    if (!patient) throw notFound(`Patient/${id} is not a registered eHealth participant`);
    const hcp = await registeredProvider(this.records, organizationId);
    if (!hcp) throw rule(`Organization/${organizationId} is not a registered healthcare provider`, ["Parameters.parameter('organization')"]);
    if (isPublicProvider(hcp.resource)) {
      throw rule(`${providerName(hcp.resource, organizationId)} holds sharing consent for as long as the patient stays in eHealth; it ends only by withdrawing from eHealth ($withdraw)`, ["Parameters.parameter('organization')"]);
    }
    const consentId = sharingConsentId(id, organizationId);
    return this.writing.run(consentId, async () => {
      const current = await this.records.current<SharingConsent>('Consent', consentId);
      if (!current) throw conflict(`Patient/${id} has given no sharing consent to Organization/${organizationId}`);
      if (current.resource.status !== 'active') throw conflict(`The sharing consent to Organization/${organizationId} has already been revoked`);
      const period = { ...current.resource.provision?.period };
      if (!period.end || Date.parse(period.end) > now.getTime()) period.end = nowIso(now);
      const next = { ...current.resource, status: 'inactive' as const, provision: { ...current.resource.provision, period } };
      return { status: 200, body: await this.records.replace(next, current.versionId, baseUrl) };
    });
  }

  /** The patient's sharing consents, in force and past, with HA and DH shown as implicit. */
  async list(principal: Principal, id: string, _inputs: Inputs, baseUrl: string): Promise<OperationResult> {
    if (!ownPatient(principal, id) && principal.kind !== 'registration-office') {
      throw forbidden("Only the patient, their substitute decision maker or the registration office lists a patient's sharing consents");
    }
    const patient = await registeredPatient(this.records, id);
    if (!patient) throw notFound(`Patient/${id} is not a registered eHealth participant`);
    const category = encodeURIComponent(`${ACCESS_SYSTEMS.consentCategory}|${SHARING}`);
    const stored = (await this.records.find<SharingConsent>('Consent', `patient=Patient/${id}&category=${category}`, baseUrl, 1000))
      .filter((c) => c.patient?.reference === `Patient/${id}`)
      .sort((a, b) => (b.dateTime ?? '').localeCompare(a.dateTime ?? ''));
    const entry: BundleEntry[] = [
      ...this.implicitConsents(patient).map((resource) => ({ resource, search: { mode: 'match' as const } })),
      ...stored.map((resource) => ({ fullUrl: `${baseUrl}/Consent/${resource.id}`, resource, search: { mode: 'match' as const } })),
    ];
    const bundle: Bundle = { resourceType: 'Bundle', type: 'searchset', total: entry.length, ...(entry.length && { entry }) };
    return { status: 200, body: bundle };
  }

  /** HA's and DH's consents, made up from the patient's participation: in force while joined, ended at withdrawal. */
  private implicitConsents(patient: Current<Patient>): Consent[] {
    const status = readStatus(patient.resource)!;
    if (status.status === 'pending-activation') return [];
    const joined = status.status === 'active';
    return RULES.publicProviders.map((p) => ({
      resourceType: 'Consent',
      meta: { tag: [{ ...IMPLICIT_CONSENT_TAG }] },
      extension: [{ url: ACCESS_SYSTEMS.consentOption, valueCode: 'indefinite' }],
      status: joined ? 'active' : 'inactive',
      scope: consentScope(),
      category: sharingCategory(),
      patient: { reference: `Patient/${patient.resource.id}` },
      performer: [{ reference: `Patient/${patient.resource.id}` }],
      policyRule: optIn(),
      provision: {
        type: 'permit',
        period: joined ? { start: status.effective } : { end: status.effective },
        actor: [{ role: recipientRole(), reference: { reference: `Organization/${p.id}`, display: p.name } }],
      },
    }));
  }

  /** The patient, who must be active. An account learns nothing about a record that is not. */
  private async activePatient(principal: Principal, id: string): Promise<Current<Patient>> {
    const patient = await registeredPatient(this.records, id);
    const status = patient && readStatus(patient.resource)!.status;
    if (!patient || (status !== 'active' && principal.kind === 'account')) throw notFound(`Patient/${id} is not an active eHealth participant`);
    if (status !== 'active') throw conflict(`Patient/${id} is ${status}; sharing consent is given for an active record only`);
    return patient;
  }

  /** `seen` is typed from a signed form (any document type), or read from a smart HKIC by a verified reader (`types` hkic, and its `system`). */
  private checkDocument(patient: Patient & { id: string }, seen: string, { types, system, parameter }: { types?: string[]; system?: string; parameter: string }): void {
    const expression = [`Parameters.parameter('${parameter}')`];
    const lockedUntil = this.wrongDocuments.lockedUntil(patient.id);
    if (lockedUntil) throw tooManyAttempts("Consent by identity document for this patient", lockedUntil);
    if (types && !identityDocumentsOf(patient).some((d) => types.includes(d.type.code))) {
      throw rule('The patient has no Hong Kong Identity Card on record; use another method', expression);
    }
    if (documentMatches(patient, seen, types, system)) {
      this.wrongDocuments.reset(patient.id);
      return;
    }
    this.wrongDocuments.record(patient.id);
    throw rule(`The identity document ${system ? 'read from the card' : 'number'} does not match the patient's registered document`, expression);
  }
}
