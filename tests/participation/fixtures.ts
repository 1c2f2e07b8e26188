import { randomUUID } from 'node:crypto';
import type { LightMyRequestResponse } from 'fastify';
import type { Location, Organization, ParametersParameter, Practitioner, PractitionerRole } from 'fhir/r4.js';
import { expect } from 'vitest';
import type { PrincipalClaim } from '../../src/auth/principal.js';
import { RULES, SYSTEMS } from '../../src/participation/rules.js';
import { bearer, tokenFor } from '../auth-fixture.js';
import { FHIR_JSON, outcomeOf, type TestServer } from '../http/harness.js';

/** Small helpers for the participation suites: who is asking, and registering HCPs, professionals and accounts. */

export type Headers = Record<string, string>;

export const as = async (claim: PrincipalClaim): Promise<Headers> => bearer(await tokenFor(claim));
export const registrationOffice = () => as({ kind: 'registration-office', staffId: 'ro-1' });
export const account = (practitionerRoleId: string) => as({ kind: 'account', practitionerRoleId });
export const patient = (patientId: string) => as({ kind: 'patient', patientId });
export const systemClient = (scopes = ['system/*.*']) => as({ kind: 'system', clientId: 'his-vendor', scopes });

/** A number no other test in the process uses (registration numbers, supporting documents). */
export const unique = (prefix: string) => `${prefix}-${randomUUID().slice(0, 8)}`;

export const isoDay = (offsetDays: number) => new Date(Date.now() + offsetDays * 86_400_000).toISOString().slice(0, 10);

/** POSTs an operation with a Parameters body. */
export function operation(server: TestServer, url: string, parameter: ParametersParameter[], headers: Headers): Promise<LightMyRequestResponse> {
  return server.request({ method: 'POST', url, headers: { ...FHIR_JSON, ...headers }, payload: { resourceType: 'Parameters', parameter } });
}

/** Asserts the status and the OperationOutcome's codes (and, when given, that its text matches). */
export function expectOutcome(res: LightMyRequestResponse, status: number, code: string, text?: RegExp): void {
  expect(res.statusCode, res.body).toBe(status);
  const outcome = outcomeOf(res);
  expect(outcome.codes).toContain(code);
  if (text) expect(outcome.text).toMatch(text);
}

// ---- healthcare providers ----------------------------------------------------------------

export const nonPublicEstablishmentTypes = RULES.establishmentTypes.filter((t) => !t.public);

export function organizationResource(options: { type?: string; document?: string; number?: string; name?: string; phone?: string } = {}): Organization {
  const type = options.type ?? 'medical-clinic';
  const document = options.document ?? RULES.establishmentTypes.find((t) => t.code === type)!.supportingDocuments[0]!;
  return {
    resourceType: 'Organization',
    name: options.name ?? `Clinic ${unique('hcp')}`,
    type: [{ coding: [{ system: SYSTEMS.establishmentType, code: type }] }],
    identifier: [{ type: { coding: [{ system: SYSTEMS.supportingDocument, code: document }] }, value: options.number ?? unique('doc') }],
    telecom: [{ system: 'phone', value: options.phone ?? '+852 2000 0000' }],
  };
}

export function locationResource(name: string, options: { line?: string; city?: string; phone?: string } = {}): Location {
  return {
    resourceType: 'Location',
    name,
    address: { line: [options.line ?? '1 Nathan Road'], city: options.city ?? 'Kowloon', country: 'HK', postalCode: '000000' },
    telecom: [{ system: 'phone', value: options.phone ?? '+852 2111 1111' }, { system: 'email', value: 'front-desk@clinic.example.hk' }],
    description: 'Internal: back door code 1234',
  };
}

export const registerHcpParameters = (organization: Organization, locations: Location[]): ParametersParameter[] => [
  { name: 'organization', resource: organization },
  ...locations.map((resource) => ({ name: 'location', resource })),
];

export interface RegisteredHcp {
  id: string;
  name: string;
  locations: (Location & { id: string })[];
}

/** Registers an HCP as the registration office (201 expected); `active` approves it too. */
export async function registerHcp(server: TestServer, options: { type?: string; name?: string; locations?: Location[]; active?: boolean } = {}): Promise<RegisteredHcp> {
  const organization = organizationResource(options);
  const locations = options.locations ?? [locationResource(`${organization.name!} main`)];
  const res = await operation(server, '/fhir/Organization/$register', registerHcpParameters(organization, locations), await registrationOffice());
  expect(res.statusCode, res.body).toBe(201);
  const out = res.json().parameter as ParametersParameter[];
  const org = out.find((p) => p.name === 'organization')!.resource as Organization & { id: string };
  const hcp = { id: org.id, name: org.name!, locations: out.filter((p) => p.name === 'location').map((p) => p.resource as Location & { id: string }) };
  if (options.active ?? true) await transition(server, hcp.id, 'approve');
  return hcp;
}

/** An HCP state change made by the registration office (200 expected). */
export async function transition(server: TestServer, id: string, action: 'approve' | 'suspend' | 'reinstate' | 'cancel' | 'withdraw', reason?: string): Promise<Organization> {
  const parameter: ParametersParameter[] = reason || action === 'suspend' || action === 'cancel' ? [{ name: 'reason', valueString: reason ?? `${action} for the test` }] : [];
  const res = await operation(server, `/fhir/Organization/${id}/$${action}`, parameter, await registrationOffice());
  expect(res.statusCode, res.body).toBe(200);
  return res.json() as Organization;
}

// ---- healthcare professionals and accounts ------------------------------------------------

export function practitionerResource(options: { group?: string; number?: string | null; validTo?: string | null; family?: string } = {}): Practitioner {
  const qualification: NonNullable<Practitioner['qualification']>[number] = {
    code: { coding: [{ system: SYSTEMS.professionalGroup, code: options.group ?? 'medical-practitioner' }] },
  };
  if (options.number !== null) qualification.identifier = [{ value: options.number ?? unique('M') }];
  if (options.validTo !== null) qualification.period = { start: '2010-01-01', end: options.validTo ?? isoDay(365) };
  return { resourceType: 'Practitioner', name: [{ family: options.family ?? 'Chan', given: ['Tai Man'] }], qualification: [qualification] };
}

/** Records a professional as the registration office (201 expected). */
export async function registerProfessional(server: TestServer, options: Parameters<typeof practitionerResource>[0] = {}): Promise<Practitioner & { id: string }> {
  const res = await operation(server, '/fhir/Practitioner/$register', [{ name: 'practitioner', resource: practitionerResource(options) }], await registrationOffice());
  expect(res.statusCode, res.body).toBe(201);
  return res.json() as Practitioner & { id: string };
}

export function createAccountCall(server: TestServer, organizationId: string, practitionerId: string, userAdministrator: boolean, headers: Headers): Promise<LightMyRequestResponse> {
  return operation(
    server,
    `/fhir/Organization/${organizationId}/$create-account`,
    [
      { name: 'practitioner', valueReference: { reference: `Practitioner/${practitionerId}` } },
      { name: 'userAdministrator', valueBoolean: userAdministrator },
    ],
    headers,
  );
}

/** An account (201 expected), created by `by` (the registration office when omitted). */
export async function createAccount(server: TestServer, organizationId: string, practitionerId: string, options: { userAdministrator?: boolean; by?: Headers } = {}): Promise<PractitionerRole & { id: string }> {
  const res = await createAccountCall(server, organizationId, practitionerId, options.userAdministrator ?? false, options.by ?? (await registrationOffice()));
  expect(res.statusCode, res.body).toBe(201);
  return res.json() as PractitionerRole & { id: string };
}

/** The user administrator of an HCP (appointed by the registration office): its account id and token headers. */
export async function userAdministratorOf(server: TestServer, organizationId: string): Promise<{ roleId: string; headers: Headers }> {
  const admin = await registerProfessional(server, { family: 'Admin' });
  const role = await createAccount(server, organizationId, admin.id, { userAdministrator: true });
  return { roleId: role.id, headers: await account(role.id) };
}
