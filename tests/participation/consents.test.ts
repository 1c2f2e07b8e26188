import type { LightMyRequestResponse } from 'fastify';
import type { Bundle, Consent, ParametersParameter } from 'fhir/r4.js';
import { afterEach, expect, it, vi } from 'vitest';
import { ACCESS_SYSTEMS, inForce } from '../../src/access/model.js';
import { CardReaders } from '../../src/participation/card-readings.js';
import { IMPLICIT_CONSENT_TAG, oneYearEnd, sharingConsentId } from '../../src/participation/consents.js';
import { endOfDay, territoryDate } from '../../src/participation/rules.js';
import { FHIR_JSON, outcomeOf, useServer, type TestServer } from '../http/harness.js';
import { describeEachStore } from '../store/stores.js';
import { advanceClock, clinicianAt, extensionValue, MINUTE, registerPatient, setClock, type TestPatient } from './access-fixtures.js';
import { cardReader, withReading } from './card-reader-fixture.js';
import { account, expectOutcome, operation, patient as patientToken, registerHcp, registrationOffice, systemClient, transition, type Headers } from './fixtures.js';

/** Sharing consents: access keys, giving, replacing, revoking and listing them. */

type Res = LightMyRequestResponse;

const give = (server: TestServer, patientId: string, organizationId: string, method: string, headers: Headers, extra: ParametersParameter[] = [], option = 'indefinite'): Promise<Res> =>
  operation(
    server,
    `/fhir/Patient/${patientId}/$give-consent`,
    [{ name: 'organization', valueReference: { reference: `Organization/${organizationId}` } }, { name: 'option', valueCode: option }, { name: 'method', valueCode: method }, ...extra],
    headers,
  );
const revoke = (server: TestServer, patientId: string, organizationId: string, headers: Headers): Promise<Res> =>
  operation(server, `/fhir/Patient/${patientId}/$revoke-consent`, [{ name: 'organization', valueReference: { reference: `Organization/${organizationId}` } }], headers);
const generateKey = (server: TestServer, patient: TestPatient, headers = patient.headers): Promise<Res> => operation(server, `/fhir/Patient/${patient.id}/$generate-access-key`, [], headers);
const keyOf = async (server: TestServer, patient: TestPatient): Promise<string> => {
  const res = await generateKey(server, patient);
  expect(res.statusCode, res.body).toBe(200);
  return (res.json().parameter as ParametersParameter[]).find((p) => p.name === 'accessKey')!.valueString!;
};
const withKey = (key: string): ParametersParameter[] => [{ name: 'accessKey', valueString: key }];
const withDocument = (number: string): ParametersParameter[] => [{ name: 'identityDocument', valueString: number }];
/** Another 8-digit key than `key`. */
const otherKey = (key: string) => String((Number(key) + 1) % 100_000_000).padStart(8, '0');
/** Tokens made now: after the clock moves, earlier ones may have expired. */
const patientHeaders = (patient: TestPatient) => patientToken(patient.id);
const doctorHeaders = (doctor: { roleId: string }) => account(doctor.roleId);

/** The sharing consents the visibility rules find in force for the HCP (as a backend client). */
async function inForceFor(server: TestServer, organizationId: string, patientId: string): Promise<Consent[]> {
  const res = await server.request({ method: 'GET', url: `/fhir/Consent?${inForce.sharingConsents(organizationId)}&patient=Patient/${patientId}`, headers: await systemClient() });
  expect(res.statusCode, res.body).toBe(200);
  return ((res.json() as Bundle).entry ?? []).map((e) => e.resource as Consent);
}

describeEachStore('sharing consents', (open) => {
  const readers = new CardReaders();
  const server = useServer(open, { publicProviders: true }, { cardReaders: readers });
  afterEach(() => {
    vi.useRealTimers();
  });

  it('a patient generates an 8-digit access key for ten minutes; nobody else can', async () => {
    const patient = await registerPatient(server);
    const res = await generateKey(server, patient);
    expect(res.statusCode, res.body).toBe(200);
    const out = res.json().parameter as ParametersParameter[];
    expect(out.find((p) => p.name === 'accessKey')!.valueString).toMatch(/^\d{8}$/);
    const expires = Date.parse(out.find((p) => p.name === 'expires')!.valueInstant!);
    expect(expires - Date.now()).toBeGreaterThan(9 * MINUTE);
    expect(expires - Date.now()).toBeLessThanOrEqual(10 * MINUTE);

    const other = await registerPatient(server);
    expectOutcome(await generateKey(server, patient, other.headers), 403, 'forbidden');
    expectOutcome(await generateKey(server, patient, await registrationOffice()), 403, 'forbidden');
    const hcp = await registerHcp(server);
    expectOutcome(await generateKey(server, patient, (await clinicianAt(server, hcp.id)).headers), 403, 'forbidden');
    const pending = await registerPatient(server, { state: 'pending' });
    expectOutcome(await generateKey(server, pending), 409, 'business-rule', /pending-activation/);
  });

  it("an HCP's account records consent with the patient's access key: one Consent the visibility query finds; the key works once", async () => {
    const hcp = await registerHcp(server);
    const doctor = await clinicianAt(server, hcp.id);
    const patient = await registerPatient(server);
    const key = await keyOf(server, patient);

    const res = await give(server, patient.id, hcp.id, 'access-key', doctor.headers, withKey(key));
    expect(res.statusCode, res.body).toBe(201);
    expect(res.headers.location).toBe(`http://fhir.test/fhir/Consent/${sharingConsentId(patient.id, hcp.id)}`);
    const consent = res.json() as Consent;
    expect(consent).toMatchObject({
      resourceType: 'Consent',
      id: sharingConsentId(patient.id, hcp.id),
      status: 'active',
      category: [{ coding: [{ system: ACCESS_SYSTEMS.consentCategory, code: 'sharing' }] }],
      patient: { reference: `Patient/${patient.id}` },
      performer: [{ reference: `Patient/${patient.id}` }],
      provision: { type: 'permit', actor: [{ reference: { reference: `Organization/${hcp.id}` } }] },
    });
    expect(extensionValue(consent, ACCESS_SYSTEMS.consentMethod)).toBe('access-key');
    expect(extensionValue(consent, ACCESS_SYSTEMS.consentOption)).toBe('indefinite');
    expect(consent.provision!.period!.end).toBeUndefined();
    expect(Math.abs(Date.parse(consent.provision!.period!.start!) - Date.now())).toBeLessThan(MINUTE);
    expect(consent.dateTime).toBe(consent.provision!.period!.start);
    expect((await inForceFor(server, hcp.id, patient.id)).map((c) => c.id)).toEqual([consent.id]);

    // Single use.
    const again = await give(server, patient.id, hcp.id, 'access-key', doctor.headers, withKey(key));
    expectOutcome(again, 422, 'business-rule', /wrong, expired or already used/);
    expect(outcomeOf(again).expressions).toEqual(["Parameters.parameter('accessKey')"]);
  });

  it('a new key replaces the old one; keys expire after ten minutes', async () => {
    setClock(Date.now());
    const hcp = await registerHcp(server);
    const doctor = await clinicianAt(server, hcp.id);
    const patient = await registerPatient(server);
    const first = await keyOf(server, patient);
    const second = await keyOf(server, patient);
    if (first !== second) expectOutcome(await give(server, patient.id, hcp.id, 'access-key', doctor.headers, withKey(first)), 422, 'business-rule');

    const third = await keyOf(server, patient);
    advanceClock(10 * MINUTE + 1000);
    expectOutcome(await give(server, patient.id, hcp.id, 'access-key', await doctorHeaders(doctor), withKey(third)), 422, 'business-rule', /expired/);
    const fresh = await keyOf(server, { ...patient, headers: await patientHeaders(patient) });
    expect((await give(server, patient.id, hcp.id, 'access-key', await doctorHeaders(doctor), withKey(fresh))).statusCode).toBe(201);
  });

  it("five wrong keys lock the patient's key for fifteen minutes (429), then it works again", async () => {
    setClock(Date.now());
    const hcp = await registerHcp(server);
    const doctor = await clinicianAt(server, hcp.id);
    const patient = await registerPatient(server);
    const key = await keyOf(server, patient);
    for (let i = 1; i <= 5; i++) {
      const res = await give(server, patient.id, hcp.id, 'access-key', doctor.headers, withKey(otherKey(key)));
      expectOutcome(res, 422, 'business-rule', i === 5 ? /locked for 15 minutes/ : /wrong/);
    }
    // Locked: even the right key (and a new one) is refused for now.
    expectOutcome(await give(server, patient.id, hcp.id, 'access-key', doctor.headers, withKey(key)), 429, 'throttled');
    const during = await keyOf(server, patient);
    expectOutcome(await give(server, patient.id, hcp.id, 'access-key', doctor.headers, withKey(during)), 429, 'throttled');
    // A malformed key is not a guess and does not count.
    expectOutcome(await give(server, patient.id, hcp.id, 'access-key', doctor.headers, withKey('12ab')), 422, 'business-rule', /8 digits/);

    advanceClock(15 * MINUTE + 1000);
    const after = await keyOf(server, { ...patient, headers: await patientHeaders(patient) });
    expect((await give(server, patient.id, hcp.id, 'access-key', await doctorHeaders(doctor), withKey(after))).statusCode).toBe(201);
  });

  it('a one-year consent ends at the end of the Hong Kong day a year on; giving again replaces it, one Consent', async () => {
    // 17:30 UTC is 01:30 the next day in Hong Kong.
    const at = new Date();
    at.setUTCHours(17, 30, 0, 0);
    if (at.getTime() < Date.now()) at.setUTCDate(at.getUTCDate() + 1);
    setClock(at);
    const hcp = await registerHcp(server);
    const patient = await registerPatient(server);
    const res = await give(server, patient.id, hcp.id, 'ehealth-app', patient.headers, [], 'one-year');
    expect(res.statusCode, res.body).toBe(201);
    const consent = res.json() as Consent;
    const hkDay = territoryDate(at);
    expect(hkDay).not.toBe(at.toISOString().slice(0, 10));
    const expected = `${Number(hkDay.slice(0, 4)) + 1}${hkDay.slice(4)}`;
    expect(Date.parse(consent.provision!.period!.end!)).toBe(endOfDay(expected));
    expect(extensionValue(consent, ACCESS_SYSTEMS.consentOption)).toBe('one-year');
    expect(extensionValue(consent, ACCESS_SYSTEMS.consentMethod)).toBe('ehealth-app');

    advanceClock(MINUTE);
    const replaced = await give(server, patient.id, hcp.id, 'voice-response', await patientHeaders(patient));
    expect(replaced.statusCode, replaced.body).toBe(200);
    expect(replaced.json()).toMatchObject({ id: consent.id, status: 'active', meta: { versionId: '2' } });
    expect(replaced.json().provision.period.end).toBeUndefined();
    expect(extensionValue(replaced.json(), ACCESS_SYSTEMS.consentOption)).toBe('indefinite');
    expect(extensionValue(replaced.json(), ACCESS_SYSTEMS.consentMethod)).toBe('voice-response');
    const all = await server.request({ method: 'GET', url: `/fhir/Consent?patient=Patient/${patient.id}`, headers: await systemClient() });
    expect(all.json().total ?? all.json().entry.length).toBe(1);
  });

  it('a one-year consent given on 29 February ends on 28 February', () => {
    expect(oneYearEnd(new Date('2028-02-28T16:30:00Z'))).toBe(new Date(endOfDay('2029-02-28')).toISOString());
    expect(oneYearEnd(new Date('2028-02-28T15:59:59Z'))).toBe(new Date(endOfDay('2029-02-28')).toISOString());
    expect(oneYearEnd(new Date('2027-12-31T16:00:00Z'))).toBe(new Date(endOfDay('2029-01-01')).toISOString());
  });

  it('concurrent gives to one HCP leave one Consent', async () => {
    const hcp = await registerHcp(server);
    const patient = await registerPatient(server);
    const results = await Promise.all([1, 2, 3].map(() => give(server, patient.id, hcp.id, 'ehealth-app', patient.headers)));
    expect(results.map((r) => r.statusCode).sort()).toEqual([200, 200, 201]);
    expect(await inForceFor(server, hcp.id, patient.id)).toHaveLength(1);
  });

  it('smart HKIC needs the HCP\'s reading of the matching card, signed forms at the HCP the matching number; the registration office records signed forms; an SDM gives consent for a child', async () => {
    const hcp = await registerHcp(server);
    const doctor = await clinicianAt(server, hcp.id);
    const reader = await cardReader(readers, hcp.id);
    const patient = await registerPatient(server);
    const wrong = await give(server, patient.id, hcp.id, 'smart-hkic', doctor.headers, withReading(await reader.read('A123456(3)')));
    expectOutcome(wrong, 422, 'business-rule', /does not match/);
    expect(outcomeOf(wrong).expressions).toEqual(["Parameters.parameter('cardReading')"]);
    expectOutcome(await give(server, patient.id, hcp.id, 'smart-hkic', doctor.headers), 400, 'invalid', /cardReading/);
    const spelled = patient.hkic.replace(/[()]/g, '').toLowerCase();
    const ok = await give(server, patient.id, hcp.id, 'smart-hkic', doctor.headers, withReading(await reader.read(spelled)));
    expect(ok.statusCode, ok.body).toBe(201);
    expect(extensionValue(ok.json(), ACCESS_SYSTEMS.consentMethod)).toBe('smart-hkic');
    const wrongForm = await give(server, patient.id, hcp.id, 'signed-form', doctor.headers, withDocument('A123456(3)'));
    expectOutcome(wrongForm, 422, 'business-rule', /does not match/);
    expect(outcomeOf(wrongForm).expressions).toEqual(["Parameters.parameter('identityDocument')"]);
    expect((await give(server, patient.id, hcp.id, 'signed-form', doctor.headers, withDocument(patient.hkic))).statusCode).toBe(200);

    const other = await registerHcp(server);
    const office = await give(server, patient.id, other.id, 'signed-form', await registrationOffice());
    expect(office.statusCode, office.body).toBe(201);

    const child = await registerPatient(server, { child: true });
    const bySdm = await give(server, child.id, hcp.id, 'ehealth-app', child.sdm!.headers);
    expect(bySdm.statusCode, bySdm.body).toBe(201);
    expect(bySdm.json().performer).toEqual([{ reference: `RelatedPerson/${child.sdm!.id}` }]);
  });

  it('refuses the wrong principal (403), the wrong method for the principal, bad parameters (400/422 naming them)', async () => {
    const hcp = await registerHcp(server);
    const elsewhere = await registerHcp(server);
    const doctor = await clinicianAt(server, hcp.id);
    const patient = await registerPatient(server);
    const other = await registerPatient(server);

    expectOutcome(await give(server, patient.id, elsewhere.id, 'signed-form', doctor.headers, withDocument(patient.hkic)), 403, 'forbidden', /own HCP/);
    expectOutcome(await give(server, patient.id, hcp.id, 'ehealth-app', other.headers), 403, 'forbidden');
    expectOutcome(await give(server, patient.id, hcp.id, 'ehealth-app', await systemClient()), 403, 'forbidden');

    const byMethod = await give(server, patient.id, hcp.id, 'smart-hkic', patient.headers);
    expectOutcome(byMethod, 422, 'business-rule', /ehealth-app, voice-response/);
    expect(outcomeOf(byMethod).expressions).toEqual(["Parameters.parameter('method')"]);
    expectOutcome(await give(server, patient.id, hcp.id, 'ehealth-app', doctor.headers), 422, 'business-rule');
    expectOutcome(await give(server, patient.id, hcp.id, 'access-key', await registrationOffice(), withKey('12345678')), 422, 'business-rule');

    const noOrganization = await operation(server, `/fhir/Patient/${patient.id}/$give-consent`, [{ name: 'option', valueCode: 'indefinite' }, { name: 'method', valueCode: 'ehealth-app' }], patient.headers);
    expectOutcome(noOrganization, 400, 'invalid');
    expect(outcomeOf(noOrganization).expressions).toEqual(["Parameters.parameter('organization')"]);
    const badOption = await give(server, patient.id, hcp.id, 'ehealth-app', patient.headers, [], 'forever');
    expectOutcome(badOption, 400, 'invalid', /indefinite, one-year/);
    expect(outcomeOf(badOption).expressions).toEqual(["Parameters.parameter('option')"]);
    expect(outcomeOf(await give(server, patient.id, hcp.id, 'carrier-pigeon', patient.headers)).expressions).toEqual(["Parameters.parameter('method')"]);
    expect(outcomeOf(await give(server, patient.id, hcp.id, 'access-key', doctor.headers)).expressions).toEqual(["Parameters.parameter('accessKey')"]);
    expectOutcome(await give(server, patient.id, 'not-there', 'ehealth-app', patient.headers), 422, 'business-rule', /not a registered healthcare provider/);
    expectOutcome(await give(server, 'not-there', hcp.id, 'signed-form', await registrationOffice()), 404, 'not-found');
  });

  it('HA and DH hold consent from joining (422); the patient must be active and the HCP active', async () => {
    const patient = await registerPatient(server);
    for (const publicProvider of ['ha', 'dh']) {
      const res = await give(server, patient.id, publicProvider, 'ehealth-app', patient.headers);
      expectOutcome(res, 422, 'business-rule', /holds sharing consent from the patient's joining/);
      expectOutcome(await revoke(server, patient.id, publicProvider, patient.headers), 422, 'business-rule', /withdraw/);
    }
    const hcp = await registerHcp(server);
    const doctor = await clinicianAt(server, hcp.id);
    const pending = await registerPatient(server, { state: 'pending' });
    expectOutcome(await give(server, pending.id, hcp.id, 'ehealth-app', pending.headers), 409, 'business-rule', /pending-activation/);
    // An account learns nothing about a record that is not active.
    expectOutcome(await give(server, pending.id, hcp.id, 'signed-form', doctor.headers, withDocument(pending.hkic)), 404, 'not-found');
    const withdrawn = await registerPatient(server, { state: 'withdrawn' });
    expectOutcome(await give(server, withdrawn.id, hcp.id, 'ehealth-app', withdrawn.headers), 409, 'business-rule', /withdrawn/);

    const suspended = await registerHcp(server);
    await transition(server, suspended.id, 'suspend');
    expectOutcome(await give(server, patient.id, suspended.id, 'ehealth-app', patient.headers), 409, 'business-rule', /suspended/);
  });

  it('the patient revokes at once: inactive, period ended, no longer in force; again is 409; others may not', async () => {
    setClock(Date.now());
    const hcp = await registerHcp(server);
    const doctor = await clinicianAt(server, hcp.id);
    const patient = await registerPatient(server);
    expect((await give(server, patient.id, hcp.id, 'ehealth-app', patient.headers, [], 'one-year')).statusCode).toBe(201);

    expectOutcome(await revoke(server, patient.id, hcp.id, doctor.headers), 403, 'forbidden');
    expectOutcome(await revoke(server, patient.id, hcp.id, (await registerPatient(server)).headers), 403, 'forbidden');
    advanceClock(MINUTE);
    const res = await revoke(server, patient.id, hcp.id, await patientHeaders(patient));
    expect(res.statusCode, res.body).toBe(200);
    const revoked = res.json() as Consent;
    expect(revoked.status).toBe('inactive');
    expect(revoked.provision!.period!.end).toBe(new Date().toISOString());
    expect(await inForceFor(server, hcp.id, patient.id)).toEqual([]);
    expectOutcome(await revoke(server, patient.id, hcp.id, await patientHeaders(patient)), 409, 'business-rule', /already been revoked/);
    expectOutcome(await revoke(server, patient.id, (await registerHcp(server)).id, await patientHeaders(patient)), 409, 'business-rule', /no sharing consent/);

    // Given again, it is in force again; the registration office may revoke too.
    expect((await give(server, patient.id, hcp.id, 'ehealth-app', await patientHeaders(patient))).statusCode).toBe(200);
    expect(await inForceFor(server, hcp.id, patient.id)).toHaveLength(1);
    expect((await revoke(server, patient.id, hcp.id, await registrationOffice())).statusCode).toBe(200);
  });

  it('$consents lists the patient\'s consents, in force and past, with HA and DH shown as implicit', async () => {
    const hcp = await registerHcp(server);
    const revokedHcp = await registerHcp(server);
    const patient = await registerPatient(server);
    await give(server, patient.id, hcp.id, 'ehealth-app', patient.headers);
    await give(server, patient.id, revokedHcp.id, 'ehealth-app', patient.headers);
    await revoke(server, patient.id, revokedHcp.id, patient.headers);
    const other = await registerPatient(server);
    await give(server, other.id, hcp.id, 'ehealth-app', other.headers);

    const list = (headers: Headers, id = patient.id) => server.request({ method: 'GET', url: `/fhir/Patient/${id}/$consents`, headers: { ...FHIR_JSON, ...headers } });
    const res = await list(patient.headers);
    expect(res.statusCode, res.body).toBe(200);
    const bundle = res.json() as Bundle<Consent>;
    expect(bundle).toMatchObject({ resourceType: 'Bundle', type: 'searchset', total: 4 });
    const byActor = new Map(bundle.entry!.map((e) => [e.resource!.provision!.actor![0]!.reference.reference, e.resource!]));
    expect([...byActor.keys()].sort()).toEqual([`Organization/${hcp.id}`, `Organization/${revokedHcp.id}`, 'Organization/dh', 'Organization/ha'].sort());
    expect(byActor.get(`Organization/${hcp.id}`)!.status).toBe('active');
    expect(byActor.get(`Organization/${revokedHcp.id}`)!.status).toBe('inactive');
    for (const implicit of ['Organization/ha', 'Organization/dh']) {
      const consent = byActor.get(implicit)!;
      expect(consent.id).toBeUndefined();
      expect(consent.status).toBe('active');
      expect(consent.meta!.tag).toContainEqual(expect.objectContaining({ system: IMPLICIT_CONSENT_TAG.system, code: IMPLICIT_CONSENT_TAG.code }));
    }
    // Nothing is stored for HA and DH.
    expect(await inForceFor(server, 'ha', patient.id)).toEqual([]);

    expect((await list(await registrationOffice())).statusCode).toBe(200);
    expectOutcome(await list(other.headers), 403, 'forbidden');
    expectOutcome(await list((await clinicianAt(server, hcp.id)).headers), 403, 'forbidden');
    expect((await list(await registrationOffice(), 'not-there')).statusCode).toBe(404);
    const pending = await registerPatient(server, { state: 'pending' });
    expect((await list(pending.headers, pending.id)).json()).toEqual({ resourceType: 'Bundle', type: 'searchset', total: 0 });
  });

  it('the operations are in the CapabilityStatement with their OperationDefinitions', async () => {
    const metadata = await server.request({ method: 'GET', url: '/fhir/metadata', headers: { authorization: '' } });
    const patientOps = (metadata.json().rest[0].resource as { type: string; operation?: { name: string }[] }[]).find((r) => r.type === 'Patient')!.operation!.map((o) => o.name);
    expect(patientOps).toEqual(expect.arrayContaining(['generate-access-key', 'give-consent', 'revoke-consent', 'consents', 'establish-care', 'request-restricted-access', 'grant-restricted-access']));
    const definition = await server.request({ method: 'GET', url: '/fhir/OperationDefinition/Patient-give-consent', headers: { authorization: '' } });
    expect(definition.statusCode).toBe(200);
    expect(definition.json().parameter.map((p: { name: string }) => p.name)).toEqual(['organization', 'option', 'method', 'accessKey', 'cardReading', 'identityDocument', 'return']);
  });
});

