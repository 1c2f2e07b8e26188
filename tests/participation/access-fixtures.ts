import { randomInt } from 'node:crypto';
import type { ContactPoint, ParametersParameter, Patient, RelatedPerson } from 'fhir/r4.js';
import { expect, vi } from 'vitest';
import { hkicCheckDigit } from '../../src/participation/hkic.js';
import { SYSTEMS } from '../../src/participation/rules.js';
import type { TestServer } from '../http/harness.js';
import { account, as, createAccount, operation, registerProfessional, registrationOffice, userAdministratorOf, type Headers } from './fixtures.js';

/** Patients in every state, clinicians at an HCP, and moving the clock, for the consent, care and restricted-access suites. */

export const HKIC = SYSTEMS.identityDocument('hkic');

let serial = randomInt(100_000, 900_000);
/** A fresh, valid HKIC number, as registration stores it: `K123456(7)`. */
export function hkic(letter = 'K'): string {
  const digits = String(serial++ % 1_000_000).padStart(6, '0');
  return `${letter}${digits}(${hkicCheckDigit(letter, digits)})`;
}

const yearsAgo = (years: number) => {
  const d = new Date();
  d.setUTCFullYear(d.getUTCFullYear() - years);
  return d.toISOString().slice(0, 10);
};

export interface TestPatient {
  id: string;
  hkic: string;
  headers: Headers;
  /** The SDM's id and token headers, for a child registered by a parent. */
  sdm?: { id: string; headers: Headers };
}

/**
 * Registers a patient as the registration office; `active` (default) activates them,
 * `withdrawn` activates and withdraws them, `pending` leaves them pending activation.
 */
export async function registerPatient(
  server: TestServer,
  options: { state?: 'active' | 'pending' | 'withdrawn'; /** [] for none */ telecom?: ContactPoint[]; child?: boolean } = {},
): Promise<TestPatient> {
  const number = hkic();
  const patient: Patient = {
    resourceType: 'Patient',
    name: [{ family: 'Wong', given: ['Siu Ling'] }],
    gender: 'female',
    birthDate: yearsAgo(options.child ? 8 : 40),
    identifier: [{ system: HKIC, value: number }],
  };
  const telecom = options.telecom ?? [{ system: 'phone', use: 'mobile', value: '+852 9123 4567' }];
  if (telecom.length) patient.telecom = telecom;
  const parameter: ParametersParameter[] = [{ name: 'patient', resource: patient }];
  if (options.child) {
    const parent: RelatedPerson = {
      resourceType: 'RelatedPerson',
      patient: { reference: 'Patient/placeholder' },
      name: [{ family: 'Wong', given: ['Tai Man'] }],
      identifier: [{ system: HKIC, value: hkic('P') }],
      relationship: [{ coding: [{ system: SYSTEMS.sdmRelationship, code: 'parent' }] }],
    };
    parameter.push({ name: 'sdm', resource: parent });
  }
  const res = await operation(server, '/fhir/Patient/$register', parameter, await registrationOffice());
  expect(res.statusCode, res.body).toBe(201);
  const out = res.json().parameter as ParametersParameter[];
  const id = out.find((p) => p.name === 'patient')!.resource!.id!;
  const sdmId = out.find((p) => p.name === 'sdm')?.resource?.id;
  const state = options.state ?? 'active';
  if (state !== 'pending') {
    const activated = await operation(server, `/fhir/Patient/${id}/$activate`, [{ name: 'identityDocument', valueString: number }], await registrationOffice());
    expect(activated.statusCode, activated.body).toBe(200);
  }
  if (state === 'withdrawn') {
    const withdrawn = await operation(server, `/fhir/Patient/${id}/$withdraw`, [], await registrationOffice());
    expect(withdrawn.statusCode, withdrawn.body).toBe(200);
  }
  const result: TestPatient = { id, hkic: number, headers: await as({ kind: 'patient', patientId: id }) };
  if (sdmId) result.sdm = { id: sdmId, headers: await as({ kind: 'sdm', relatedPersonId: sdmId }) };
  return result;
}

export interface Clinician {
  roleId: string;
  headers: Headers;
}

/** A doctor's account at the HCP, created by the HCP's user administrator. */
export async function clinicianAt(server: TestServer, organizationId: string, admin?: Clinician): Promise<Clinician> {
  const administrator = admin ?? (await userAdministratorOf(server, organizationId));
  const doctor = await registerProfessional(server, { family: 'Doctor' });
  const role = await createAccount(server, organizationId, doctor.id, { by: administrator.headers });
  return { roleId: role.id, headers: await account(role.id) };
}

/** A user administrator who is not a registered professional: a usable account without clinical access. */
export async function clerkAt(server: TestServer, organizationId: string): Promise<Clinician> {
  const clerk = await server.create({ resourceType: 'Practitioner', active: true, name: [{ family: 'Clerk' }] });
  const role = await createAccount(server, organizationId, clerk.id as string, { userAdministrator: true });
  return { roleId: role.id, headers: await account(role.id) };
}

/** Freezes the clock (Date only: timers and I/O run as usual) at `at`; tokens must be made after. */
export function setClock(at: Date | number): void {
  vi.useFakeTimers({ toFake: ['Date'] });
  vi.setSystemTime(at);
}

export function advanceClock(ms: number): void {
  vi.setSystemTime(Date.now() + ms);
}

export const MINUTE = 60_000;

/** The value of the named output parameter (or of the extension with the url) in a response. */
export const extensionValue = (resource: { extension?: { url: string; valueCode?: string; valueString?: string }[] }, url: string) =>
  resource.extension?.find((e) => e.url === url)?.valueCode ?? resource.extension?.find((e) => e.url === url)?.valueString;
