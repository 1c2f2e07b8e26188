import type { Consent, EpisodeOfCare, Patient } from 'fhir/r4.js';
import { expect } from 'vitest';
import { ACCESS_SYSTEMS, RESTRICTED_ACCESS, RESTRICTED_GRANT_MS, SHARING, UNDER_CARE, type ConsentOption } from '../../src/access/model.js';
import { hkicCheckDigit } from '../../src/participation/hkic.js';
import { endOfDay, SYSTEMS, territoryDate } from '../../src/participation/rules.js';
import { FHIR_JSON, type TestServer } from '../http/harness.js';
import { account, createAccount, operation, patient as patientToken, registerHcp, registerProfessional, registrationOffice, userAdministratorOf, type Headers, type RegisteredHcp } from '../participation/fixtures.js';

/**
 * A small territory for the access suites: joined patients, HCPs with accounts, and the
 * consents and care relationships between them, written as the model says (a backend client
 * writes them here; the operations that make them in real life are tested on their own).
 */

let serial = 100_000 + Math.floor(Math.random() * 800_000);
export function hkic(letter = 'A'): string {
  const digits = String(serial++);
  return `${letter}${digits}(${hkicCheckDigit(letter, digits)})`;
}

export interface JoinedPatient {
  id: string;
  hkic: string;
  headers: Headers;
}

/** Registers and activates a patient (as the registration office). */
export async function joinedPatient(server: TestServer, options: { activate?: boolean; telecom?: Patient['telecom'] } = {}): Promise<JoinedPatient> {
  const number = hkic();
  const patient: Patient = {
    resourceType: 'Patient',
    name: [{ family: 'Wong', given: ['Siu Fung'] }],
    gender: 'female',
    birthDate: '1980-05-17',
    identifier: [{ system: SYSTEMS.identityDocument('hkic'), value: number }],
    telecom: options.telecom ?? [{ system: 'phone', use: 'mobile', value: '+852 9123 4567' }],
  };
  const ro = await registrationOffice();
  const res = await operation(server, '/fhir/Patient/$register', [{ name: 'patient', resource: patient }], ro);
  expect(res.statusCode, res.body).toBe(201);
  const id = (res.json().parameter as { name: string; resource?: { id: string } }[]).find((p) => p.name === 'patient')!.resource!.id;
  if (options.activate !== false) {
    const activated = await operation(server, `/fhir/Patient/${id}/$activate`, [{ name: 'identityDocument', valueString: number }], ro);
    expect(activated.statusCode, activated.body).toBe(200);
  }
  return { id, hkic: number, headers: await patientToken(id) };
}

export interface Hcp extends RegisteredHcp {
  /** An account for a professional of each group asked for, by group code. */
  accounts: Record<string, { roleId: string; practitionerId: string; headers: Headers }>;
}

/** An active HCP with one account per professional group given (a doctor by default). */
export async function hcpWithAccounts(server: TestServer, groups: string[] = ['medical-practitioner'], type = 'medical-clinic'): Promise<Hcp> {
  const hcp = await registerHcp(server, { type });
  return { ...hcp, accounts: await accountsAt(server, hcp.id, groups) };
}

export async function accountsAt(server: TestServer, organizationId: string, groups: string[]): Promise<Hcp['accounts']> {
  const admin = await userAdministratorOf(server, organizationId);
  const accounts: Hcp['accounts'] = {};
  for (const group of groups) {
    const professional = await registerProfessional(server, { group });
    const role = await createAccount(server, organizationId, professional.id, { by: admin.headers });
    accounts[group] = { roleId: role.id, practitionerId: professional.id, headers: await account(role.id) };
  }
  return accounts;
}

async function write(server: TestServer, resource: Consent | EpisodeOfCare, id?: string): Promise<string> {
  const res = id
    ? await server.request({ method: 'PUT', url: `/fhir/${resource.resourceType}/${id}`, headers: FHIR_JSON, payload: { ...resource, id } })
    : await server.request({ method: 'POST', url: `/fhir/${resource.resourceType}`, headers: FHIR_JSON, payload: resource });
  expect(res.statusCode, res.body).toBeLessThan(300);
  return res.json().id as string;
}

/** A sharing consent from the patient to the HCP; `ends` (a Hong Kong date) for one-year consents. */
export function sharingConsent(patientId: string, organizationId: string, options: { option?: ConsentOption; ends?: string; status?: Consent['status'] } = {}): Consent {
  const period: { start: string; end?: string } = { start: new Date(Date.now() - 60_000).toISOString() };
  if (options.ends) period.end = new Date(endOfDay(options.ends)).toISOString();
  return {
    resourceType: 'Consent',
    status: options.status ?? 'active',
    scope: { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/consentscope', code: 'patient-privacy' }] },
    category: [{ coding: [{ system: ACCESS_SYSTEMS.consentCategory, code: SHARING }] }],
    patient: { reference: `Patient/${patientId}` },
    dateTime: period.start,
    policyRule: { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/v3-ActCode', code: 'OPTIN' }] },
    extension: [
      { url: ACCESS_SYSTEMS.consentOption, valueCode: options.option ?? (options.ends ? 'one-year' : 'indefinite') },
      { url: ACCESS_SYSTEMS.consentMethod, valueCode: 'signed-form' },
    ],
    provision: { type: 'permit', period, actor: [{ role: { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/v3-ParticipationType', code: 'IRCP' }] }, reference: { reference: `Organization/${organizationId}` } }] },
  };
}

export const giveConsent = (server: TestServer, patientId: string, organizationId: string, options: Parameters<typeof sharingConsent>[2] = {}) =>
  write(server, sharingConsent(patientId, organizationId, options));

export async function revokeConsent(server: TestServer, consentId: string): Promise<void> {
  const current = (await server.request({ method: 'GET', url: `/fhir/Consent/${consentId}` })).json() as Consent;
  await write(server, { ...current, status: 'inactive' }, consentId);
}

export function careRelationship(patientId: string, organizationId: string): EpisodeOfCare {
  return {
    resourceType: 'EpisodeOfCare',
    status: 'active',
    type: [{ coding: [{ system: ACCESS_SYSTEMS.careRelationship, code: UNDER_CARE }] }],
    patient: { reference: `Patient/${patientId}` },
    managingOrganization: { reference: `Organization/${organizationId}` },
    period: { start: new Date(Date.now() - 60_000).toISOString() },
  };
}

export const startCare = (server: TestServer, patientId: string, organizationId: string) => write(server, careRelationship(patientId, organizationId));

export async function endCare(server: TestServer, episodeId: string): Promise<void> {
  const current = (await server.request({ method: 'GET', url: `/fhir/EpisodeOfCare/${episodeId}` })).json() as EpisodeOfCare;
  await write(server, { ...current, status: 'finished', period: { ...current.period, end: new Date().toISOString() } }, episodeId);
}

/** A restricted-access grant for one account to one patient, with the reason. */
export function restrictedGrant(patientId: string, accountId: string, reason: string): Consent {
  const start = new Date(Date.now() - 1000);
  return {
    resourceType: 'Consent',
    status: 'active',
    scope: { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/consentscope', code: 'patient-privacy' }] },
    category: [{ coding: [{ system: ACCESS_SYSTEMS.consentCategory, code: RESTRICTED_ACCESS }] }],
    patient: { reference: `Patient/${patientId}` },
    policyRule: { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/v3-ActCode', code: 'OPTIN' }] },
    extension: [{ url: ACCESS_SYSTEMS.accessReason, valueString: reason }, { url: ACCESS_SYSTEMS.consentMethod, valueCode: 'otp' }],
    provision: { type: 'permit', period: { start: start.toISOString(), end: new Date(start.getTime() + RESTRICTED_GRANT_MS).toISOString() }, actor: [{ role: { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/v3-ParticipationType', code: 'IRCP' }] }, reference: { reference: `PractitionerRole/${accountId}` } }] },
  };
}

/** A patient joined, consenting to and under the care of the HCP. */
export async function patientOf(server: TestServer, organizationId: string): Promise<JoinedPatient> {
  const patient = await joinedPatient(server);
  await giveConsent(server, patient.id, organizationId);
  await startCare(server, patient.id, organizationId);
  return patient;
}

export const today = () => territoryDate(new Date());
