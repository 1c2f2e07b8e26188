import type { LightMyRequestResponse } from 'fastify';
import type { Bundle, Consent, EpisodeOfCare, ParametersParameter } from 'fhir/r4.js';
import { afterEach, beforeEach, expect, it, vi, type MockInstance } from 'vitest';
import type { PatientMessage } from '../../src/access/events.js';
import { ACCESS_SYSTEMS, inForce, RESTRICTED_GRANT_MS } from '../../src/access/model.js';
import { CardReaders } from '../../src/participation/card-readings.js';
import { discardingSender } from '../../src/participation/restricted-access.js';
import { outcomeOf, useServer, type TestServer } from '../http/harness.js';
import { describeEachStore } from '../store/stores.js';
import { advanceClock, clerkAt, clinicianAt, extensionValue, HKIC, MINUTE, registerPatient, setClock, type Clinician, type TestPatient } from './access-fixtures.js';
import { cardReader, withReading, type TestCardReader } from './card-reader-fixture.js';
import { account, expectOutcome, operation, registerHcp, registrationOffice, systemClient, userAdministratorOf, type Headers } from './fixtures.js';

/** Care relationships ($establish-care, $end-care) and restricted-access grants. */

type Res = LightMyRequestResponse;

const establish = (server: TestServer, number: string, headers: Headers, system = HKIC): Promise<Res> =>
  operation(server, '/fhir/Patient/$establish-care', [{ name: 'identifier', valueIdentifier: { system, value: number } }], headers);
const endCare = (server: TestServer, episodeId: string, headers: Headers): Promise<Res> => operation(server, `/fhir/EpisodeOfCare/${episodeId}/$end-care`, [], headers);
const episodeOf = (res: Res) => (res.json().parameter as ParametersParameter[]).find((p) => p.name === 'episodeOfCare')!.resource as EpisodeOfCare & { id: string };

async function careInForce(server: TestServer, organizationId: string, patientId: string): Promise<EpisodeOfCare[]> {
  const res = await server.request({ method: 'GET', url: `/fhir/EpisodeOfCare?${inForce.careRelationships(organizationId)}&patient=Patient/${patientId}`, headers: await systemClient() });
  expect(res.statusCode, res.body).toBe(200);
  return ((res.json() as Bundle).entry ?? []).map((e) => e.resource as EpisodeOfCare);
}

describeEachStore('care relationships', (open) => {
  const server = useServer(open, { publicProviders: true });

  it('a clinician who verified the identity document puts the patient under the HCP\'s care; again keeps the same relationship', async () => {
    const hcp = await registerHcp(server);
    const doctor = await clinicianAt(server, hcp.id);
    const patient = await registerPatient(server);
    // Spelled as read from the card: no brackets, lower case.
    const res = await establish(server, patient.hkic.replace(/[()]/g, '').toLowerCase(), doctor.headers);
    expect(res.statusCode, res.body).toBe(201);
    const out = res.json().parameter as ParametersParameter[];
    expect(out.find((p) => p.name === 'patient')!.valueReference).toEqual({ reference: `Patient/${patient.id}` });
    const episode = episodeOf(res);
    expect(res.headers.location).toBe(`http://fhir.test/fhir/EpisodeOfCare/${episode.id}`);
    expect(episode).toMatchObject({
      status: 'active',
      type: [{ coding: [{ system: ACCESS_SYSTEMS.careRelationship, code: 'under-care' }] }],
      patient: { reference: `Patient/${patient.id}` },
      managingOrganization: { reference: `Organization/${hcp.id}` },
      careManager: { reference: `PractitionerRole/${doctor.roleId}` },
    });
    expect(Math.abs(Date.parse(episode.period!.start!) - Date.now())).toBeLessThan(MINUTE);
    expect(episode.period!.end).toBeUndefined();
    expect((await careInForce(server, hcp.id, patient.id)).map((e) => e.id)).toEqual([episode.id]);

    // The identifier may also come as a token string; an existing relationship is kept.
    const again = await operation(server, '/fhir/Patient/$establish-care', [{ name: 'identifier', valueString: `${HKIC}|${patient.hkic}` }], doctor.headers);
    expect(again.statusCode, again.body).toBe(200);
    expect(episodeOf(again).id).toBe(episode.id);
    const concurrent = await Promise.all([1, 2, 3].map(() => establish(server, patient.hkic, doctor.headers)));
    expect(concurrent.map((r) => r.statusCode)).toEqual([200, 200, 200]);

    // Another HCP's care is its own.
    const other = await registerHcp(server);
    const elsewhere = await establish(server, patient.hkic, (await clinicianAt(server, other.id)).headers);
    expect(elsewhere.statusCode).toBe(201);
    expect(episodeOf(elsewhere).id).not.toBe(episode.id);
    expect(await careInForce(server, hcp.id, patient.id)).toHaveLength(1);
  });

  it('what these operations write is what the access rules read: the clinician reads the patient only with consent and care', async () => {
    const hcp = await registerHcp(server);
    const doctor = await clinicianAt(server, hcp.id);
    const patient = await registerPatient(server);
    const read = async () => (await server.request({ method: 'GET', url: `/fhir/Patient/${patient.id}`, headers: await account(doctor.roleId) })).statusCode;
    const consent = (op: string, extra: ParametersParameter[] = []) =>
      operation(server, `/fhir/Patient/${patient.id}/$${op}`, [{ name: 'organization', valueReference: { reference: `Organization/${hcp.id}` } }, ...extra], patient.headers);

    expect(await read()).toBe(404);
    const episode = episodeOf(await establish(server, patient.hkic, doctor.headers));
    expect(await read()).toBe(404);
    expect((await consent('give-consent', [{ name: 'option', valueCode: 'one-year' }, { name: 'method', valueCode: 'ehealth-app' }])).statusCode).toBe(201);
    expect(await read()).toBe(200);
    expect((await consent('revoke-consent')).statusCode).toBe(200);
    expect(await read()).toBe(404);
    expect((await consent('give-consent', [{ name: 'option', valueCode: 'indefinite' }, { name: 'method', valueCode: 'voice-response' }])).statusCode).toBe(200);
    expect(await read()).toBe(200);
    expect((await endCare(server, episode.id, doctor.headers)).statusCode).toBe(200);
    expect(await read()).toBe(404);
  });

  it('answers the same 404 for a document nobody, a pending or a withdrawn patient holds; refuses principals without clinical access', async () => {
    const hcp = await registerHcp(server);
    const doctor = await clinicianAt(server, hcp.id);
    const pending = await registerPatient(server, { state: 'pending' });
    const withdrawn = await registerPatient(server, { state: 'withdrawn' });
    const texts = [];
    for (const number of [pending.hkic, withdrawn.hkic, 'A123456(3)']) {
      const res = await establish(server, number, doctor.headers);
      expectOutcome(res, 404, 'not-found');
      texts.push(outcomeOf(res).text);
    }
    expect(new Set(texts).size).toBe(1);

    const patient = await registerPatient(server);
    expectOutcome(await establish(server, patient.hkic, patient.headers), 403, 'forbidden');
    expectOutcome(await establish(server, patient.hkic, await registrationOffice()), 403, 'forbidden');
    expectOutcome(await establish(server, patient.hkic, (await clerkAt(server, hcp.id)).headers), 403, 'forbidden', /not a registered healthcare professional/);

    const badSystem = await establish(server, patient.hkic, doctor.headers, 'http://example.org/passport');
    expectOutcome(badSystem, 422, 'business-rule', /identity document system/);
    expect(outcomeOf(badSystem).expressions).toEqual(["Parameters.parameter('identifier')"]);
    const missing = await operation(server, '/fhir/Patient/$establish-care', [], doctor.headers);
    expectOutcome(missing, 400, 'invalid');
    expect(outcomeOf(missing).expressions).toEqual(["Parameters.parameter('identifier')"]);
  });

  it('an account of the same HCP (or the registration office) ends care: finished, period ended, no longer in force', async () => {
    const hcp = await registerHcp(server);
    const admin = await userAdministratorOf(server, hcp.id);
    const doctor = await clinicianAt(server, hcp.id, admin);
    const colleague = await clinicianAt(server, hcp.id, admin);
    const patient = await registerPatient(server);
    const episode = episodeOf(await establish(server, patient.hkic, doctor.headers));

    const other = await registerHcp(server);
    expectOutcome(await endCare(server, episode.id, (await clinicianAt(server, other.id)).headers), 404, 'not-found');
    expectOutcome(await endCare(server, episode.id, patient.headers), 403, 'forbidden');
    expectOutcome(await endCare(server, 'not-there', colleague.headers), 404, 'not-found');

    const res = await endCare(server, episode.id, colleague.headers);
    expect(res.statusCode, res.body).toBe(200);
    const ended = res.json() as EpisodeOfCare;
    expect(ended.status).toBe('finished');
    expect(ended.period!.end).toBeDefined();
    expect(ended.statusHistory).toEqual([{ status: 'active', period: { start: episode.period!.start, end: ended.period!.end } }]);
    expect(await careInForce(server, hcp.id, patient.id)).toEqual([]);
    expectOutcome(await endCare(server, episode.id, colleague.headers), 409, 'business-rule');

    // A later visit starts a new relationship, which the registration office may end.
    const next = await establish(server, patient.hkic, doctor.headers);
    expect(next.statusCode).toBe(201);
    expect(episodeOf(next).id).not.toBe(episode.id);
    expect((await endCare(server, episodeOf(next).id, await registrationOffice())).statusCode).toBe(200);
  });
});

describeEachStore('restricted access', (open) => {
  const readers = new CardReaders();
  const server = useServer(open, { publicProviders: true, notificationSender: discardingSender, recorders: [] }, { cardReaders: readers }); // only the passwords reach the sender
  let sent: MockInstance<(message: PatientMessage) => Promise<void>>;
  beforeEach(() => {
    sent = vi.spyOn(discardingSender, 'send');
  });
  afterEach(() => {
    sent.mockRestore();
    vi.useRealTimers();
  });

  const request = (patientId: string, headers: Headers, reason: string | null = 'Review of psychiatric history before prescribing'): Promise<Res> =>
    operation(server, `/fhir/Patient/${patientId}/$request-restricted-access`, reason === null ? [] : [{ name: 'reason', valueString: reason }], headers);
  const grant = (patientId: string, headers: Headers, evidence: ParametersParameter[], reason = 'Review of psychiatric history before prescribing'): Promise<Res> =>
    operation(server, `/fhir/Patient/${patientId}/$grant-restricted-access`, [{ name: 'reason', valueString: reason }, ...evidence], headers);
  const otp = (code: string): ParametersParameter[] => [{ name: 'otp', valueString: code }];
  /** The password in the last message sent. */
  const lastPassword = () => /password: (\d{6})/.exec(sent.mock.calls.at(-1)![0].text)![1]!;
  const wrongPassword = (code: string) => String((Number(code) + 1) % 1_000_000).padStart(6, '0');

  /** A community HCP with a clinician and a card reader, and a patient who consented to it and is under its care. */
  async function reachablePatient(options: Parameters<typeof registerPatient>[1] = {}): Promise<{ hcpId: string; doctor: Clinician; reader: TestCardReader; patient: TestPatient }> {
    const hcp = await registerHcp(server);
    const doctor = await clinicianAt(server, hcp.id);
    const reader = await cardReader(readers, hcp.id);
    const patient = await registerPatient(server, options);
    const consent = await operation(server, `/fhir/Patient/${patient.id}/$give-consent`, [{ name: 'organization', valueReference: { reference: `Organization/${hcp.id}` } }, { name: 'option', valueCode: 'indefinite' }, { name: 'method', valueCode: 'ehealth-app' }], patient.headers);
    expect(consent.statusCode, consent.body).toBe(201);
    expect((await establish(server, patient.hkic, doctor.headers)).statusCode).toBe(201);
    return { hcpId: hcp.id, doctor, reader, patient };
  }

  it('sends the patient a one-time password; the patient reading it out grants this account two hours, once', async () => {
    const { doctor, patient } = await reachablePatient();
    const res = await request(patient.id, doctor.headers);
    expect(res.statusCode, res.body).toBe(200);
    expect(res.json()).toMatchObject({ resourceType: 'OperationOutcome', issue: [{ severity: 'information', code: 'informational' }] });
    expect(outcomeOf(res).text).toMatch(/sms/);
    expect(sent).toHaveBeenCalledTimes(1);
    const message = sent.mock.calls[0]![0];
    expect(message).toMatchObject({ channel: 'sms', to: '+852 9123 4567' });
    expect(message.text).toMatch(/Review of psychiatric history/);
    const code = lastPassword();

    const granted = await grant(patient.id, doctor.headers, otp(code));
    expect(granted.statusCode, granted.body).toBe(201);
    const consent = granted.json() as Consent & { id: string };
    expect(granted.headers.location).toBe(`http://fhir.test/fhir/Consent/${consent.id}`);
    expect(consent).toMatchObject({
      status: 'active',
      category: [{ coding: [{ system: ACCESS_SYSTEMS.consentCategory, code: 'restricted-access' }] }],
      patient: { reference: `Patient/${patient.id}` },
      provision: { actor: [{ reference: { reference: `PractitionerRole/${doctor.roleId}` } }] },
    });
    expect(extensionValue(consent, ACCESS_SYSTEMS.accessReason)).toBe('Review of psychiatric history before prescribing');
    expect(extensionValue(consent, ACCESS_SYSTEMS.consentMethod)).toBe('otp');
    const { start, end } = consent.provision!.period!;
    expect(Date.parse(end!) - Date.parse(start!)).toBe(RESTRICTED_GRANT_MS);
    const found = await server.request({ method: 'GET', url: `/fhir/Consent?${inForce.restrictedGrants(doctor.roleId)}`, headers: await systemClient() });
    expect(found.json().entry.map((e: { resource: Consent }) => e.resource.id)).toEqual([consent.id]);

    // Single use.
    const reused = await grant(patient.id, doctor.headers, otp(code));
    expectOutcome(reused, 422, 'business-rule', /wrong, expired or already used/);
    expect(outcomeOf(reused).expressions).toEqual(["Parameters.parameter('otp')"]);
  });

  it('with the smart HKIC instead: the HCP\'s card reader must have read the patient\'s card', async () => {
    const { doctor, reader, patient } = await reachablePatient();
    const wrong = await grant(patient.id, doctor.headers, withReading(await reader.read('A123456(3)')));
    expectOutcome(wrong, 422, 'business-rule', /not the patient's registered HKIC/);
    expect(outcomeOf(wrong).expressions).toEqual(["Parameters.parameter('cardReading')"]);
    expectOutcome(await grant(patient.id, doctor.headers, [{ name: 'identityDocument', valueString: patient.hkic }]), 400, 'invalid', /cardReading/);
    const ok = await grant(patient.id, doctor.headers, withReading(await reader.read(patient.hkic)));
    expect(ok.statusCode, ok.body).toBe(201);
    expect(extensionValue(ok.json(), ACCESS_SYSTEMS.consentMethod)).toBe('smart-hkic');
    expect(sent).not.toHaveBeenCalled();
  });

  it('a password expires after five minutes, another account cannot use it, and the reason must be the one sent', async () => {
    setClock(Date.now());
    const { hcpId, doctor, patient } = await reachablePatient();
    await request(patient.id, doctor.headers);
    const code = lastPassword();
    const colleague = await clinicianAt(server, hcpId);
    expectOutcome(await grant(patient.id, colleague.headers, otp(code)), 422, 'business-rule');
    const differs = await grant(patient.id, doctor.headers, otp(code), 'Curiosity');
    expectOutcome(differs, 422, 'business-rule', /reason differs/);
    expect(outcomeOf(differs).expressions).toEqual(["Parameters.parameter('reason')"]);
    advanceClock(5 * MINUTE + 1000);
    expectOutcome(await grant(patient.id, await account(doctor.roleId), otp(code)), 422, 'business-rule', /expired/);
  });

  it('five wrong passwords lock additional consent for the patient and account (429) for fifteen minutes', async () => {
    setClock(Date.now());
    const { doctor, reader, patient } = await reachablePatient();
    await request(patient.id, doctor.headers);
    const code = lastPassword();
    for (let i = 1; i <= 5; i++) {
      expectOutcome(await grant(patient.id, doctor.headers, otp(wrongPassword(code))), 422, 'business-rule', i === 5 ? /locked for 15 minutes/ : /wrong/);
    }
    expectOutcome(await grant(patient.id, doctor.headers, otp(code)), 429, 'throttled');
    expectOutcome(await grant(patient.id, doctor.headers, withReading(await reader.read(patient.hkic))), 429, 'throttled');
    advanceClock(15 * MINUTE + 1000);
    const headers = await account(doctor.roleId);
    // The password outstanding at the lock is gone; a new one works.
    expectOutcome(await grant(patient.id, headers, otp(code)), 422, 'business-rule');
    await request(patient.id, headers);
    expect((await grant(patient.id, headers, otp(lastPassword()))).statusCode).toBe(201);
  });

  it('at most five passwords per patient and account in fifteen minutes', async () => {
    const { doctor, patient } = await reachablePatient();
    for (let i = 0; i < 5; i++) expect((await request(patient.id, doctor.headers)).statusCode).toBe(200);
    expectOutcome(await request(patient.id, doctor.headers), 429, 'throttled');
    expect(sent).toHaveBeenCalledTimes(5);
  });

  it('a patient the HCP cannot reach is not known (404, like an unknown id): no consent, no care, withdrawn', async () => {
    const { hcpId, doctor, reader, patient } = await reachablePatient();
    const unknown = await request('not-there', doctor.headers);
    expectOutcome(unknown, 404, 'not-found');
    const notKnown = (id: string) => `Patient/${id} is not known`;
    expect(outcomeOf(unknown).text).toBe(notKnown('not-there'));

    const noConsent = await registerPatient(server);
    expect((await establish(server, noConsent.hkic, doctor.headers)).statusCode).toBe(201);
    expect(outcomeOf(await request(noConsent.id, doctor.headers)).text).toBe(notKnown(noConsent.id));
    expect(outcomeOf(await grant(noConsent.id, doctor.headers, withReading(await reader.read(noConsent.hkic)))).text).toBe(notKnown(noConsent.id));

    const noCare = await registerPatient(server);
    await operation(server, `/fhir/Patient/${noCare.id}/$give-consent`, [{ name: 'organization', valueReference: { reference: `Organization/${hcpId}` } }, { name: 'option', valueCode: 'indefinite' }, { name: 'method', valueCode: 'ehealth-app' }], noCare.headers);
    expectOutcome(await request(noCare.id, doctor.headers), 404, 'not-found');

    // Another HCP's clinician does not reach this HCP's patient.
    const other = await registerHcp(server);
    expectOutcome(await request(patient.id, (await clinicianAt(server, other.id)).headers), 404, 'not-found');

    await operation(server, `/fhir/Patient/${patient.id}/$withdraw`, [], patient.headers);
    expectOutcome(await request(patient.id, doctor.headers), 404, 'not-found');
    expect(sent).not.toHaveBeenCalled();
  });

  it('HA and DH need no additional consent (422); only clinical accounts ask (403); the reason is required (400); no contact is 422', async () => {
    const patient = await registerPatient(server);
    const haDoctor = await clinicianAt(server, 'ha');
    expect((await establish(server, patient.hkic, haDoctor.headers)).statusCode).toBe(201);
    expectOutcome(await request(patient.id, haDoctor.headers), 422, 'business-rule', /community/);
    expectOutcome(await grant(patient.id, haDoctor.headers, withReading(await (await cardReader(readers, 'ha')).read(patient.hkic))), 422, 'business-rule', /community/);

    const { hcpId, doctor, patient: reachable } = await reachablePatient();
    expectOutcome(await request(reachable.id, reachable.headers), 403, 'forbidden');
    expectOutcome(await request(reachable.id, await registrationOffice()), 403, 'forbidden');
    expectOutcome(await request(reachable.id, (await clerkAt(server, hcpId)).headers), 403, 'forbidden');
    for (const reason of [null, '   ']) {
      const res = await request(reachable.id, doctor.headers, reason);
      expectOutcome(res, 400, 'invalid');
      expect(outcomeOf(res).expressions).toEqual(["Parameters.parameter('reason')"]);
    }
    const neither = await grant(reachable.id, doctor.headers, []);
    expectOutcome(neither, 400, 'invalid', /otp.*cardReading/);
    expectOutcome(await grant(reachable.id, doctor.headers, otp('12345')), 422, 'business-rule', /6 digits/);

    const silent = await reachablePatient({ telecom: [] });
    expectOutcome(await request(silent.patient.id, silent.doctor.headers), 422, 'business-rule', /smart HKIC instead/);
    expect(sent).not.toHaveBeenCalled();
  });
});
