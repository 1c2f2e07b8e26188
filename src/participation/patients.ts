import { randomInt } from 'node:crypto';
import type { Identifier, Parameters, Patient, RelatedPerson, Resource } from 'fhir/r4.js';
import type { Principal } from '../auth/principal.js';
import { KeyedLock } from '../fhir/keyed-lock.js';
import { FhirError, notFound } from '../fhir/outcome.js';
import { checkResource } from '../fhir/resource-input.js';
import { conflict, effectiveDate, nowIso, requireActor, rule } from './checks.js';
import { identityDocumentProblems } from './guard.js';
import { normaliseHkic } from './hkic.js';
import type { Inputs } from './parameters.js';
import type { Records } from './records.js';
import { identityDocumentOf, RULES, SDM_RELATIONSHIPS, startOfDay, SYSTEMS, territoryDate, type IdentityDocumentType } from './rules.js';
import { readStatus, withStatus } from './status.js';

/**
 * Healthcare recipients joining and leaving eHealth: registration (in person, or by a
 * substitute decision maker), activation after identity verification, newborn completion and
 * withdrawal. Withdrawal keeps every record; it only stops sharing.
 */

/**
 * What an operation tells the audit trail beyond its URL: the patients a type-level operation
 * found (an instance operation on a Patient names its patient by the URL), or the identity
 * document it looked up in vain (the number masked).
 */
export interface OperationAudit {
  patients?: string[];
  identityDocument?: { system: string; value: string };
}

export interface OperationResult {
  status: number;
  body: Parameters | Resource;
  location?: string;
  audit?: OperationAudit;
}

/** A refusal that also tells the audit trail what the operation looked at. */
export class AuditedRefusal extends FhirError {
  constructor(
    error: FhirError,
    readonly audit: OperationAudit,
  ) {
    super(error.status, error.outcome.issue);
  }
}

type Doc = { identifier: Identifier; type: IdentityDocumentType; index: number };

function identityDocuments(resource: Patient | RelatedPerson): Doc[] {
  return (resource.identifier ?? []).flatMap((identifier, index) => {
    const type = identityDocumentOf(identifier.system);
    return type && identifier.value && !identifier.period?.end ? [{ identifier, type, index }] : [];
  });
}

function normalisedNumber(doc: Doc): string {
  const value = doc.identifier.value!.trim();
  return doc.type.checkDigit === 'hkic' ? (normaliseHkic(value) ?? value) : value.toUpperCase();
}

/** Whole years between a date of birth and today, on the territory's calendar. */
export function ageInYears(birthDate: string, now: Date): number {
  const [y, m, d] = birthDate.split('-').map(Number) as [number, number, number];
  const [ty, tm, td] = territoryDate(now).split('-').map(Number) as [number, number, number];
  let age = ty - y;
  if (tm < m || (tm === m && td < d)) age -= 1;
  return age;
}

function ageInDays(birthDate: string, now: Date): number {
  return Math.floor((now.getTime() - startOfDay(birthDate)) / 86_400_000);
}

export class PatientRegistry {
  /** Registrations run one at a time, so two cannot claim the same identity document at once. */
  private readonly registering = new KeyedLock();

  constructor(
    private readonly records: Records,
    private readonly clock: () => Date = () => new Date(),
  ) {}

  async register(principal: Principal, inputs: Inputs, baseUrl: string): Promise<OperationResult> {
    requireActor(principal, ['registration-office', 'account', 'system'], 'the registration office, or a registered HCP at its registration centre, registers patients', 'Patient');
    const now = this.clock();
    const patient = checkResource(inputs.resource<Patient>('patient', 'Patient', true), 'Patient') as unknown as Patient;
    const sdm = inputs.resource<RelatedPerson>('sdm', 'RelatedPerson');
    const sdmBasis = inputs.string('sdmBasis');

    const doc = this.checkIdentity(patient, now);
    const age = ageInYears(patient.birthDate!, now);
    const newborn = doc.type.newbornOnly === true;
    if (newborn && ageInDays(patient.birthDate!, now) > RULES.newbornMaxAgeDays) {
      throw rule(`A ${doc.type.display} registers newborns only; register with the birth certificate instead`, ['Patient.identifier']);
    }
    let basis: 'under-16' | 'incapable-of-consent' | undefined;
    if (age < RULES.adultAge) basis = 'under-16';
    else if (sdm || sdmBasis) {
      if (sdmBasis !== 'incapable-of-consent') throw rule(`A patient aged ${RULES.adultAge} or above registers in person; an SDM registers for them only with sdmBasis 'incapable-of-consent'`, ["Parameters.parameter('sdmBasis')"]);
      basis = 'incapable-of-consent';
    }
    if (basis && !sdm) throw rule(`A patient under ${RULES.adultAge} (or incapable of giving consent) is registered by a substitute decision maker: give the 'sdm' parameter`, ["Parameters.parameter('sdm')"]);
    if (sdm) this.checkSdm(sdm, now);

    return this.registering.run('patients', async () => {
      const number = normalisedNumber(doc);
      const existing = await this.records.find<Patient>('Patient', `identifier=${encodeURIComponent(`${doc.identifier.system}|${number}`)}`, baseUrl, 1);
      if (existing.length) throw conflict(`A patient is already registered with this ${doc.type.display}; a person registers once`);
      const ehrNumber = await this.newEhrNumber(baseUrl);

      const identifiers = [...(patient.identifier ?? [])];
      identifiers[doc.index] = { ...doc.identifier, value: number };
      const stored = await this.records.create(
        withStatus<Patient>(
          { ...patient, id: undefined, identifier: [{ use: 'official', system: SYSTEMS.ehrNumber, value: ehrNumber }, ...identifiers] } as Patient,
          { status: 'pending-activation', effective: nowIso(now) },
        ),
        baseUrl,
      );
      const output: Parameters = { resourceType: 'Parameters', parameter: [{ name: 'ehrNumber', valueIdentifier: { system: SYSTEMS.ehrNumber, value: ehrNumber } }, { name: 'patient', resource: stored }] };
      if (sdm) {
        const relationship = [...(sdm.relationship ?? []), { coding: [{ system: SYSTEMS.sdmBasis, code: basis! }] }];
        const person = await this.records.create<RelatedPerson>({ ...sdm, id: undefined, active: true, patient: { reference: `Patient/${stored.id}` }, relationship } as RelatedPerson, baseUrl);
        output.parameter!.push({ name: 'sdm', resource: person });
      }
      return { status: 201, body: output, location: `Patient/${stored.id}` };
    });
  }

  private checkIdentity(patient: Patient, now: Date): Doc {
    const docs = identityDocuments(patient);
    if (docs.length !== 1) {
      throw rule('Registration needs exactly one eligible identity document among Patient.identifier (HKIC, birth certificate, or another document in profiles/participation.json)', ['Patient.identifier']);
    }
    const problems = identityDocumentProblems(patient as unknown as Record<string, unknown>);
    if (problems.length) throw rule(problems.join('; '), ['Patient.identifier']);
    if ((patient.identifier ?? []).some((i) => i.system === SYSTEMS.ehrNumber)) throw rule('The eHR number is assigned by the server', ['Patient.identifier']);
    if (!patient.name?.some((n) => n.family || n.text || n.given?.length)) throw rule('A patient is registered with a name', ['Patient.name']);
    if (!patient.birthDate || !/^\d{4}-\d{2}-\d{2}$/.test(patient.birthDate)) throw rule('A full date of birth (YYYY-MM-DD) is required', ['Patient.birthDate']);
    if (startOfDay(patient.birthDate) > now.getTime()) throw rule('The date of birth is in the future', ['Patient.birthDate']);
    if (!patient.gender) throw rule('Sex is required (administrative gender: male, female, other, unknown)', ['Patient.gender']);
    return docs[0]!;
  }

  private checkSdm(sdm: RelatedPerson, now: Date): void {
    checkResource({ ...sdm, patient: { reference: 'Patient/pending' } }, 'RelatedPerson');
    const relationship = sdm.relationship?.flatMap((r) => r.coding ?? []).find((c) => c.system === SYSTEMS.sdmRelationship && c.code && SDM_RELATIONSHIPS.has(c.code));
    if (!relationship) throw rule(`A substitute decision maker is the patient's parent, family member or a person residing with them (RelatedPerson.relationship from ${SYSTEMS.sdmRelationship})`, ['RelatedPerson.relationship']);
    if (!sdm.name?.some((n) => n.family || n.text || n.given?.length)) throw rule('The substitute decision maker needs a name', ['RelatedPerson.name']);
    const docs = identityDocuments(sdm);
    if (docs.length === 0) throw rule('The substitute decision maker needs an eligible identity document', ['RelatedPerson.identifier']);
    const problems = identityDocumentProblems(sdm as unknown as Record<string, unknown>);
    if (problems.length) throw rule(problems.join('; '), ['RelatedPerson.identifier']);
    if (sdm.birthDate && ageInYears(sdm.birthDate, now) < RULES.adultAge) throw rule(`A substitute decision maker must be ${RULES.adultAge} or above`, ['RelatedPerson.birthDate']);
  }

  private async newEhrNumber(baseUrl: string): Promise<string> {
    for (;;) {
      const candidate = String(randomInt(100_000_000_000, 1_000_000_000_000));
      const taken = await this.records.find<Patient>('Patient', `identifier=${encodeURIComponent(`${SYSTEMS.ehrNumber}|${candidate}`)}`, baseUrl, 1);
      if (taken.length === 0) return candidate;
    }
  }

  private async load(id: string) {
    const current = await this.records.current<Patient>('Patient', id);
    if (!current || !readStatus(current.resource)) throw notFound(`Patient/${id} is not a registered eHealth participant`);
    return current;
  }

  async activate(principal: Principal, id: string, inputs: Inputs, baseUrl: string): Promise<OperationResult> {
    requireActor(principal, ['registration-office'], 'the registration office activates records, after verifying identity in person');
    const now = this.clock();
    const verified = inputs.string('identityDocument', true);
    const current = await this.load(id);
    const status = readStatus(current.resource)!;
    if (status.status !== 'pending-activation') throw conflict(`Patient/${id} is ${status.status}; only a record pending activation can be activated`);
    const doc = identityDocuments(current.resource)[0];
    const seen = doc && (doc.type.checkDigit === 'hkic' ? normaliseHkic(verified) : verified.trim().toUpperCase());
    if (!doc || seen !== normalisedNumber(doc)) throw rule('The identity document verified does not match the one the patient registered with', ["Parameters.parameter('identityDocument')"]);
    const next = withStatus(current.resource, { status: 'active', effective: nowIso(now), previous: status.status });
    return { status: 200, body: await this.records.replace(next, current.versionId, baseUrl) };
  }

  async withdraw(principal: Principal, id: string, inputs: Inputs, baseUrl: string): Promise<OperationResult> {
    const own = (principal.kind === 'patient' || principal.kind === 'sdm') && principal.patientId === id;
    if (!own) requireActor(principal, ['registration-office'], 'the patient, their substitute decision maker or the registration office can withdraw a patient');
    const now = this.clock();
    const reason = inputs.string('reason');
    const current = await this.load(id);
    const status = readStatus(current.resource)!;
    if (status.status === 'withdrawn') throw conflict(`Patient/${id} has already withdrawn`);
    const next = withStatus(current.resource, { status: 'withdrawn', effective: effectiveDate(inputs.string('effectiveDate'), now), previous: status.status, ...(reason && { reason }) });
    return { status: 200, body: await this.records.replace(next, current.versionId, baseUrl) };
  }

  async completeNewborn(principal: Principal, id: string, inputs: Inputs, baseUrl: string): Promise<OperationResult> {
    requireActor(principal, ['registration-office'], 'the registration office completes a newborn record with the birth certificate');
    const now = this.clock();
    const certificate = normaliseHkic(inputs.string('birthCertificate', true));
    const current = await this.load(id);
    const docs = identityDocuments(current.resource);
    const hospitalDoc = docs.find((d) => d.type.newbornOnly);
    if (!hospitalDoc) throw conflict(`Patient/${id} was not registered as a newborn with the birth hospital's document`);
    const probe = { resourceType: 'Patient', identifier: [{ system: SYSTEMS.identityDocument('hk-birth-certificate'), value: certificate ?? 'invalid' }] };
    const problems = certificate ? identityDocumentProblems(probe) : ['the birth certificate number is not in the HKIC format'];
    if (problems.length) throw rule(problems.join('; '), ["Parameters.parameter('birthCertificate')"]);
    return this.registering.run('patients', async () => {
      const existing = await this.records.find<Patient>('Patient', `identifier=${encodeURIComponent(`${probe.identifier[0]!.system}|${certificate}`)}`, baseUrl, 1);
      if (existing.length) throw conflict('A patient is already registered with this birth certificate');
      const identifier = [...(current.resource.identifier ?? [])];
      identifier[hospitalDoc.index] = { ...hospitalDoc.identifier, period: { ...hospitalDoc.identifier.period, end: nowIso(now) } };
      identifier.push({ use: 'official', system: probe.identifier[0]!.system, value: certificate! });
      return { status: 200, body: await this.records.replace({ ...current.resource, identifier }, current.versionId, baseUrl) };
    });
  }
}
