import type { LightMyRequestResponse } from 'fastify';
import type { ParametersParameter } from 'fhir/r4.js';
import { afterEach, expect, it, vi } from 'vitest';
import { ACCESS_SYSTEMS, inForce } from '../../src/access/model.js';
import { CardReaders } from '../../src/participation/card-readings.js';
import { sampleRecords } from '../access/samples.js';
import { outcomeOf, useServer } from '../http/harness.js';
import { describeEachStore } from '../store/stores.js';
import { clinicianAt, extensionValue, HKIC, registerPatient, setClock, type Clinician, type TestPatient } from './access-fixtures.js';
import { cardReader, symmetricReading, withReading, type TestCardReader } from './card-reader-fixture.js';
import { account, expectOutcome, operation, registerHcp, systemClient, type Headers } from './fixtures.js';

/**
 * Smart HKIC evidence: a number printed on a card is no secret, so $give-consent (method
 * smart-hkic) and $grant-restricted-access take a reading signed by a card reader registered to
 * the account's HCP, fresh and used once, of the patient's card.
 */

type Res = LightMyRequestResponse;
const RESTRICTED = { security: [{ system: 'http://terminology.hl7.org/CodeSystem/v3-Confidentiality', code: 'R' }] };
const REASON = 'Review of psychiatric history before prescribing';
const nowSeconds = () => Math.floor(Date.now() / 1000);

describeEachStore('smart HKIC readings', (open) => {
  const readers = new CardReaders();
  const server = useServer(open, { publicProviders: true, recorders: [] }, { cardReaders: readers });
  afterEach(() => {
    vi.useRealTimers();
  });

  const giveBySmartHkic = (patientId: string, organizationId: string, headers: Headers, evidence: ParametersParameter[]): Promise<Res> =>
    operation(
      server,
      `/fhir/Patient/${patientId}/$give-consent`,
      [{ name: 'organization', valueReference: { reference: `Organization/${organizationId}` } }, { name: 'option', valueCode: 'indefinite' }, { name: 'method', valueCode: 'smart-hkic' }, ...evidence],
      headers,
    );
  const giveBySignedForm = (patientId: string, organizationId: string, headers: Headers, number: string): Promise<Res> =>
    operation(
      server,
      `/fhir/Patient/${patientId}/$give-consent`,
      [{ name: 'organization', valueReference: { reference: `Organization/${organizationId}` } }, { name: 'option', valueCode: 'indefinite' }, { name: 'method', valueCode: 'signed-form' }, { name: 'identityDocument', valueString: number }],
      headers,
    );
  const grant = (patientId: string, headers: Headers, evidence: ParametersParameter[]): Promise<Res> =>
    operation(server, `/fhir/Patient/${patientId}/$grant-restricted-access`, [{ name: 'reason', valueString: REASON }, ...evidence], headers);
  const establish = (number: string, headers: Headers): Promise<Res> => operation(server, '/fhir/Patient/$establish-care', [{ name: 'identifier', valueIdentifier: { system: HKIC, value: number } }], headers);
  const read = async (url: string, headers: Headers) => (await server.request({ method: 'GET', url, headers })).statusCode;
  async function consentsInForce(organizationId: string, patientId: string): Promise<number> {
    const res = await server.request({ method: 'GET', url: `/fhir/Consent?${inForce.sharingConsents(organizationId)}&patient=Patient/${patientId}`, headers: await systemClient() });
    return (res.json().entry ?? []).length;
  }

  /** A community HCP with a registered card reader and a clinician; a patient with a restricted and an ordinary record. */
  async function clinic(): Promise<{ hcpId: string; doctor: Clinician; reader: TestCardReader; patient: TestPatient; ordinary: string; restricted: string }> {
    const hcp = await registerHcp(server);
    const doctor = await clinicianAt(server, hcp.id);
    const reader = await cardReader(readers, hcp.id);
    const patient = await registerPatient(server);
    const record = sampleRecords(patient.id)['observations-lifestyle'];
    const ordinary = (await server.create(record)).id as string;
    const restricted = (await server.create({ ...record, meta: RESTRICTED })).id as string;
    return { hcpId: hcp.id, doctor, reader, patient, ordinary, restricted };
  }

  it('a typed HKIC number opens no restricted records: consent and restricted access need the HCP\'s card reader (or the password)', async () => {
    const { hcpId, doctor, reader, patient, ordinary, restricted } = await clinic();
    // Any clinician may still put the patient under care at a visit…
    expect((await establish(patient.hkic, doctor.headers)).statusCode).toBe(201);
    // …but the number is no smart HKIC evidence.
    const typed = await giveBySmartHkic(patient.id, hcpId, doctor.headers, [{ name: 'identityDocument', valueString: patient.hkic }]);
    expectOutcome(typed, 400, 'invalid', /cardReading/);
    expect(outcomeOf(typed).expressions).toEqual(["Parameters.parameter('identityDocument')"]);
    expect(await consentsInForce(hcpId, patient.id)).toBe(0);
    expect(await read(`/fhir/Observation/${ordinary}`, doctor.headers)).toBe(404);

    // A signed form, attested by the professional, still records consent; restricted records stay hidden.
    expect((await giveBySignedForm(patient.id, hcpId, doctor.headers, patient.hkic)).statusCode).toBe(201);
    expect(await read(`/fhir/Observation/${ordinary}`, doctor.headers)).toBe(200);
    const typedGrant = await grant(patient.id, doctor.headers, [{ name: 'identityDocument', valueString: patient.hkic }]);
    expectOutcome(typedGrant, 400, 'invalid', /cardReading/);
    expect(outcomeOf(typedGrant).expressions).toEqual(["Parameters.parameter('identityDocument')"]);
    expect(await read(`/fhir/Observation/${restricted}`, doctor.headers)).toBe(404);

    // The card read at the desk by the HCP's reader opens them.
    const granted = await grant(patient.id, doctor.headers, withReading(await reader.read(patient.hkic)));
    expect(granted.statusCode, granted.body).toBe(201);
    expect(extensionValue(granted.json(), ACCESS_SYSTEMS.consentMethod)).toBe('smart-hkic');
    expect(await read(`/fhir/Observation/${restricted}`, doctor.headers)).toBe(200);
  });

  it('$give-consent takes a fresh reading, once, from a reader of the account\'s own HCP, of the patient\'s own card', async () => {
    setClock(Date.now());
    const { hcpId, doctor, reader, patient } = await clinic();
    const other = await registerHcp(server);
    const otherReader = await cardReader(readers, other.id);
    const unregistered = await cardReader(undefined, hcpId);
    const stranger = await registerPatient(server);
    const give = (evidence: ParametersParameter[]) => giveBySmartHkic(patient.id, hcpId, doctor.headers, evidence);
    const reading = (options: Parameters<TestCardReader['read']>[1] = {}) => reader.read(patient.hkic, options);

    const refusals: [Res, number, string, RegExp][] = [
      [await give([]), 400, 'invalid', /cardReading.*required/],
      [await give(withReading('A123456(3)')), 400, 'invalid', /compact JWS/],
      [await give(withReading(await unregistered.read(patient.hkic))), 422, 'security', /not signed by a registered card reader/],
      [await give(withReading(await symmetricReading(reader.kid, patient.hkic))), 422, 'security', /does not verify/],
      [await give(withReading(await otherReader.read(patient.hkic))), 403, 'forbidden', /not registered to this account's healthcare provider/],
      [await give(withReading(await reading({ iat: nowSeconds() - 121 }))), 422, 'security', /more than 120 seconds old/],
      [await give(withReading(await reading({ iat: nowSeconds() + 60 }))), 422, 'security', /future/],
      [await give(withReading(await reader.read(stranger.hkic))), 422, 'business-rule', /does not match/],
      [await give(withReading(await reader.read(patient.hkic, { system: 'https://ehealth.example.hk/fhir/sid/passport' }))), 422, 'business-rule', /does not match/],
    ];
    for (const [res, status, code, text] of refusals) {
      expectOutcome(res, status, code, text);
      expect(outcomeOf(res).expressions.length === 0 || outcomeOf(res).expressions.includes("Parameters.parameter('cardReading')"), res.body).toBe(true);
    }
    expect(await consentsInForce(hcpId, patient.id)).toBe(0);

    // A reading a little old, or from a reader whose clock runs a little ahead, is accepted once.
    const ok = await give(withReading(await reading({ iat: nowSeconds() - 100 })));
    expect(ok.statusCode, ok.body).toBe(201);
    expect(extensionValue(ok.json(), ACCESS_SYSTEMS.consentMethod)).toBe('smart-hkic');
    const ahead = await reading({ iat: nowSeconds() + 20 });
    expect((await give(withReading(ahead))).statusCode).toBe(200);
    expectOutcome(await give(withReading(ahead)), 422, 'security', /used before/);
    // A reading used for consent cannot open restricted records either.
    expect((await establish(patient.hkic, await account(doctor.roleId))).statusCode).toBe(201);
    expectOutcome(await grant(patient.id, doctor.headers, withReading(ahead)), 422, 'security', /used before/);
  });

  it('a reading that is no evidence gets the same answer whoever the patient is', async () => {
    const { hcpId, doctor, patient } = await clinic();
    const unregistered = await cardReader(undefined, hcpId);
    const forged = await unregistered.read(patient.hkic);
    const answers = [];
    for (const id of [patient.id, 'not-there']) {
      const res = await giveBySmartHkic(id, hcpId, doctor.headers, withReading(forged));
      answers.push([res.statusCode, outcomeOf(res).text]);
    }
    expect(answers[0]).toEqual([422, 'The card reading is not signed by a registered card reader']);
    expect(answers[1]).toEqual(answers[0]);
  });

  it('$grant-restricted-access takes a reading of the patient\'s card by the HCP\'s reader, once; wrong cards count towards the lock', async () => {
    const { hcpId, doctor, reader, patient } = await clinic();
    expect((await giveBySignedForm(patient.id, hcpId, doctor.headers, patient.hkic)).statusCode).toBe(201);
    expect((await establish(patient.hkic, doctor.headers)).statusCode).toBe(201);
    const otherReader = await cardReader(readers, (await registerHcp(server)).id);
    const stranger = await registerPatient(server);

    expectOutcome(await grant(patient.id, doctor.headers, []), 400, 'invalid', /otp.*cardReading/);
    expectOutcome(await grant(patient.id, doctor.headers, withReading(await otherReader.read(patient.hkic))), 403, 'forbidden');
    const wrongCard = await grant(patient.id, doctor.headers, withReading(await reader.read(stranger.hkic)));
    expectOutcome(wrongCard, 422, 'business-rule', /not the patient's registered HKIC/);
    expect(outcomeOf(wrongCard).expressions).toEqual(["Parameters.parameter('cardReading')"]);

    const reading = await reader.read(patient.hkic.replace(/[()]/g, '').toLowerCase());
    const granted = await grant(patient.id, doctor.headers, withReading(reading));
    expect(granted.statusCode, granted.body).toBe(201);
    expect(extensionValue(granted.json(), ACCESS_SYSTEMS.consentMethod)).toBe('smart-hkic');
    expectOutcome(await grant(patient.id, doctor.headers, withReading(reading)), 422, 'security', /used before/);

    for (let i = 1; i <= 5; i++) {
      expectOutcome(await grant(patient.id, doctor.headers, withReading(await reader.read(stranger.hkic))), 422, 'business-rule', i === 5 ? /locked/ : /not the patient's/);
    }
    expectOutcome(await grant(patient.id, doctor.headers, withReading(await reader.read(patient.hkic))), 429, 'throttled');
  });
});
