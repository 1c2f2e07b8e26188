import { expect, it } from 'vitest';
import { hkicCheckDigit } from '../../src/participation/hkic.js';
import { SYSTEMS } from '../../src/participation/rules.js';
import { bearer, tokenFor } from '../auth-fixture.js';
import { FHIR_JSON, outcomeOf, useServer, type TestServer } from '../http/harness.js';
import { describeEachStore } from '../store/stores.js';

/** Healthcare recipients: registration, SDMs, newborns, activation and withdrawal. */

const HKIC = SYSTEMS.identityDocument('hkic');
let serial = 100_000;
/** A fresh, valid HKIC number. */
function hkic(letter = 'K'): string {
  const digits = String(serial++);
  return `${letter}${digits}(${hkicCheckDigit(letter, digits)})`;
}
const yearsAgo = (years: number, days = 0) => {
  const d = new Date();
  d.setUTCFullYear(d.getUTCFullYear() - years);
  d.setUTCDate(d.getUTCDate() - days);
  return d.toISOString().slice(0, 10);
};

const person = (id: string, extra: Record<string, unknown> = {}) => ({
  resourceType: 'Patient',
  name: [{ family: 'Chan', given: ['Tai Man'] }],
  gender: 'male',
  birthDate: yearsAgo(40),
  identifier: [{ system: HKIC, value: id }],
  ...extra,
});
const sdm = (relationship = 'parent') => ({
  resourceType: 'RelatedPerson',
  patient: { reference: 'Patient/placeholder' },
  name: [{ family: 'Chan', given: ['Siu Ming'] }],
  identifier: [{ system: HKIC, value: hkic('P') }],
  relationship: [{ coding: [{ system: SYSTEMS.sdmRelationship, code: relationship }] }],
});

const RO = { kind: 'registration-office', staffId: 'ro-1' } as const;

async function as(claim: Parameters<typeof tokenFor>[0]) {
  return bearer(await tokenFor(claim));
}

function operation(server: TestServer, url: string, parameter: unknown[], headers: Record<string, string>) {
  return server.request({ method: 'POST', url, headers: { ...FHIR_JSON, ...headers }, payload: { resourceType: 'Parameters', parameter } });
}

describeEachStore('patient participation', (open) => {
  const server = useServer(open, { publicProviders: true });
  const register = async (patient: unknown, extra: unknown[] = [], headers?: Record<string, string>) =>
    operation(server, '/fhir/Patient/$register', [{ name: 'patient', resource: patient }, ...extra], headers ?? (await as(RO)));
  const registered = async (patient: unknown, extra: unknown[] = []) => {
    const res = await register(patient, extra);
    if (res.statusCode !== 201) throw new Error(`registration failed: ${res.body}`);
    const out = res.json().parameter as { name: string; resource?: Record<string, any>; valueIdentifier?: { value: string } }[];
    return { patient: out.find((p) => p.name === 'patient')!.resource!, sdm: out.find((p) => p.name === 'sdm')?.resource, ehrNumber: out.find((p) => p.name === 'ehrNumber')!.valueIdentifier!.value };
  };
  const status = (patient: Record<string, any>) =>
    (patient.extension as { url: string; extension: { url: string; valueCode?: string }[] }[]).find((e) => e.url === SYSTEMS.participationStatus)!.extension.find((e) => e.url === 'status')!.valueCode;

  it('registers an adult with a valid HKIC: a 12-digit eHR number, pending activation, Location header', async () => {
    const id = hkic();
    const res = await register(person(id.replace(/[()]/g, '')));
    expect(res.statusCode).toBe(201);
    expect(res.headers.location).toMatch(/^http:\/\/fhir\.test\/fhir\/Patient\/[^/]+$/);
    const { patient, ehrNumber } = await registered(person(hkic()));
    expect(ehrNumber).toMatch(/^[1-9]\d{11}$/);
    expect(patient.identifier).toContainEqual({ use: 'official', system: SYSTEMS.ehrNumber, value: ehrNumber });
    expect(status(patient)).toBe('pending-activation');
    expect(patient.active).toBe(false);
    // The number is stored in its canonical form, whatever the spelling given.
    const stored = (res.json().parameter as { name: string; resource: Record<string, any> }[])[1]!.resource;
    expect(stored.identifier).toContainEqual({ system: HKIC, value: id });
  });

  it('refuses HKIC numbers with a wrong check digit or format, naming the identifier', async () => {
    const good = hkic();
    const wrong = good.replace(/\((.)\)$/, (_m, d: string) => `(${d === '0' ? '1' : '0'})`);
    for (const value of [wrong, 'A12345(6)', '1234567']) {
      const res = await register(person(value));
      expect(res.statusCode, value).toBe(422);
      expect(outcomeOf(res).text).toMatch(/HKIC|Identity Card/);
      expect(outcomeOf(res).expressions).toContain('Patient.identifier');
    }
  });

  it('validates date of birth and sex', async () => {
    const future = new Date(Date.now() + 5 * 86_400_000).toISOString().slice(0, 10);
    const res = await register(person(hkic(), { birthDate: future }));
    expect(res.statusCode).toBe(422);
    expect(outcomeOf(res).expressions).toContain('Patient.birthDate');
    const noSex = person(hkic()) as Record<string, unknown>;
    delete noSex.gender;
    expect((await register(noSex)).statusCode).toBe(422);
    // Not an administrative-gender code: the FHIR schema refuses it.
    expect((await register(person(hkic(), { gender: 'M' }))).statusCode).toBe(400);
  });

  it('refuses a second registration with the same identity document, with a clear reason', async () => {
    const id = hkic();
    await registered(person(id));
    const again = await register(person(id.replace('(', ' (').toLowerCase(), { name: [{ family: 'Other' }] }));
    expect(again.statusCode).toBe(409);
    expect(outcomeOf(again).text).toMatch(/already registered/);
  });

  it('a child under 16 is registered by an SDM; the SDM must be a parent, family member or person residing with them', async () => {
    const child = person(hkic(), { birthDate: yearsAgo(9) });
    const alone = await register(child);
    expect(alone.statusCode).toBe(422);
    expect(outcomeOf(alone).text).toMatch(/substitute decision maker/);
    const stranger = await register(child, [{ name: 'sdm', resource: { ...sdm(), relationship: [{ text: 'neighbour' }] } }]);
    expect(stranger.statusCode).toBe(422);
    const { patient, sdm: recorded } = await registered(child, [{ name: 'sdm', resource: sdm('parent') }]);
    expect(recorded!.patient).toEqual({ reference: `Patient/${patient.id}` });
    expect(recorded!.relationship.flatMap((r: { coding: { code: string }[] }) => r.coding.map((c) => c.code))).toEqual(['parent', 'under-16']);
  });

  it('an adult is registered by an SDM only when incapable of consent', async () => {
    const adult = person(hkic(), { birthDate: yearsAgo(70) });
    const res = await register(adult, [{ name: 'sdm', resource: sdm('family-member') }]);
    expect(res.statusCode).toBe(422);
    const ok = await registered(adult, [{ name: 'sdm', resource: sdm('resides-with') }, { name: 'sdmBasis', valueCode: 'incapable-of-consent' }]);
    expect(ok.sdm!.relationship.flatMap((r: { coding: { code: string }[] }) => r.coding.map((c) => c.code))).toContain('incapable-of-consent');
  });

  it("a newborn registers with the birth hospital's document and is completed with the birth certificate", async () => {
    const doc = { system: SYSTEMS.identityDocument('birth-hospital-record'), value: 'QEH-2026-000123' };
    const baby = person('unused', { birthDate: yearsAgo(0, 3), identifier: [doc], name: [{ family: 'Wong', given: ['Baby of Wong Mei'] }], gender: 'female' });
    const { patient } = await registered(baby, [{ name: 'sdm', resource: sdm('parent') }]);
    const older = await register({ ...baby, birthDate: yearsAgo(3), identifier: [{ ...doc, value: 'QEH-2023-1' }] }, [{ name: 'sdm', resource: sdm() }]);
    expect(older.statusCode).toBe(422);

    const certificate = hkic('N');
    const url = `/fhir/Patient/${patient.id}/$complete-newborn-registration`;
    expect((await operation(server, url, [{ name: 'birthCertificate', valueString: certificate }], await as({ kind: 'account', practitionerRoleId: 'x' }))).statusCode).toBe(401);
    const bad = await operation(server, url, [{ name: 'birthCertificate', valueString: certificate.replace(/\(.\)/, '(X)') }], await as(RO));
    expect(bad.statusCode).toBe(422);
    const done = await operation(server, url, [{ name: 'birthCertificate', valueString: certificate }], await as(RO));
    expect(done.statusCode).toBe(200);
    const ids = done.json().identifier as { system: string; value: string; period?: { end?: string } }[];
    expect(ids.find((i) => i.system === SYSTEMS.identityDocument('hk-birth-certificate'))?.value).toBe(certificate);
    expect(ids.find((i) => i.system === doc.system)?.period?.end).toBeDefined();
    expect((await operation(server, url, [{ name: 'birthCertificate', valueString: hkic('N') }], await as(RO))).statusCode).toBe(409);
  });

  it('only the registration office activates a record, after checking the identity document in person', async () => {
    const id = hkic();
    const { patient } = await registered(person(id));
    const url = `/fhir/Patient/${patient.id}/$activate`;
    const patientToken = await as({ kind: 'patient', patientId: patient.id });
    const self = await operation(server, url, [{ name: 'identityDocument', valueString: id }], patientToken);
    expect(self.statusCode).toBe(403);
    const system = await operation(server, url, [{ name: 'identityDocument', valueString: id }], {});
    expect(system.statusCode).toBe(403);
    const mismatch = await operation(server, url, [{ name: 'identityDocument', valueString: hkic() }], await as(RO));
    expect(mismatch.statusCode).toBe(422);
    const ok = await operation(server, url, [{ name: 'identityDocument', valueString: id.replace(/[()]/g, '') }], await as(RO));
    expect(ok.statusCode).toBe(200);
    expect(status(ok.json())).toBe('active');
    expect(ok.json().active).toBe(true);
    expect((await operation(server, url, [{ name: 'identityDocument', valueString: id }], await as(RO))).statusCode).toBe(409);
    expect((await operation(server, '/fhir/Patient/not-there/$activate', [{ name: 'identityDocument', valueString: id }], await as(RO))).statusCode).toBe(404);
  });

  it('a patient sees only their own participation record, and withdraws; the record is kept', async () => {
    const id = hkic();
    const { patient } = await registered(person(id));
    const { patient: other } = await registered(person(hkic()));
    await operation(server, `/fhir/Patient/${patient.id}/$activate`, [{ name: 'identityDocument', valueString: id }], await as(RO));
    const token = await as({ kind: 'patient', patientId: patient.id });

    expect((await server.request({ method: 'GET', url: `/fhir/Patient/${patient.id}`, headers: token })).statusCode).toBe(200);
    expect((await server.request({ method: 'GET', url: `/fhir/Patient/${other.id}`, headers: token })).statusCode).toBe(404);
    expect((await server.request({ method: 'GET', url: '/fhir/Patient', headers: token })).statusCode).toBe(403);
    expect((await server.request({ method: 'GET', url: '/fhir/Observation', headers: token })).statusCode).toBe(403);
    const edit = await server.request({ method: 'PUT', url: `/fhir/Patient/${patient.id}`, headers: { ...FHIR_JSON, ...token }, payload: { ...patient, gender: 'female' } });
    expect(edit.statusCode).toBe(403);
    expect((await operation(server, `/fhir/Patient/${other.id}/$withdraw`, [], token)).statusCode).toBe(403);

    const withdrawn = await operation(server, `/fhir/Patient/${patient.id}/$withdraw`, [{ name: 'reason', valueString: 'moving abroad' }], token);
    expect(withdrawn.statusCode).toBe(200);
    expect(status(withdrawn.json())).toBe('withdrawn');
    expect(withdrawn.json().active).toBe(false);
    expect((await operation(server, `/fhir/Patient/${patient.id}/$withdraw`, [], token)).statusCode).toBe(409);
    expect((await operation(server, `/fhir/Patient/${patient.id}/$activate`, [{ name: 'identityDocument', valueString: id }], await as(RO))).statusCode).toBe(409);
    // Withdrawal loses nothing: every version is still there.
    const history = await server.request({ method: 'GET', url: `/fhir/Patient/${patient.id}/_history` });
    expect(history.json().total).toBe(3);
  });

  it('an SDM acts for their patient only', async () => {
    const { patient, sdm: guardian } = await registered(person(hkic(), { birthDate: yearsAgo(8) }), [{ name: 'sdm', resource: sdm() }]);
    const { patient: other } = await registered(person(hkic()));
    const token = await as({ kind: 'sdm', relatedPersonId: guardian!.id });
    expect((await server.request({ method: 'GET', url: `/fhir/Patient/${patient.id}`, headers: token })).statusCode).toBe(200);
    expect((await server.request({ method: 'GET', url: `/fhir/RelatedPerson/${guardian!.id}`, headers: token })).statusCode).toBe(200);
    expect((await server.request({ method: 'GET', url: `/fhir/Patient/${other.id}`, headers: token })).statusCode).toBe(404);
    expect((await operation(server, `/fhir/Patient/${other.id}/$withdraw`, [], token)).statusCode).toBe(403);
    expect((await operation(server, `/fhir/Patient/${patient.id}/$withdraw`, [], token)).statusCode).toBe(200);
  });

  it('participation status and the eHR number change only through the operations', async () => {
    const { patient } = await registered(person(hkic()));
    const ro = await as(RO);
    const put = (body: Record<string, unknown>) => server.request({ method: 'PUT', url: `/fhir/Patient/${patient.id}`, headers: { ...FHIR_JSON, ...ro }, payload: body });
    const activated = structuredClone(patient);
    activated.extension[0].extension[0].valueCode = 'active';
    activated.active = true;
    expect((await put(activated)).statusCode).toBe(422);
    expect((await put({ ...patient, active: true })).statusCode).toBe(422);
    expect((await put({ ...patient, identifier: patient.identifier.map((i: { system: string }) => (i.system === SYSTEMS.ehrNumber ? { ...i, value: '999999999999' } : i)) })).statusCode).toBe(422);
    const badHkic = await put({ ...patient, identifier: [...patient.identifier, { system: HKIC, value: 'A123456(4)' }] });
    expect(badHkic.statusCode).toBe(422);
    // Ordinary corrections by the registration office go through.
    const fixed = await put({ ...patient, telecom: [{ system: 'phone', value: '+852 9123 4567' }] });
    expect(fixed.statusCode).toBe(200);
    // Nobody declares themselves a participant with a plain create.
    const forged = await server.request({ method: 'POST', url: '/fhir/Patient', headers: FHIR_JSON, payload: { ...patient, id: undefined } });
    expect(forged.statusCode).toBe(422);
  });

  it('registration is open to the registration office, a registered HCP, and backend clients with Patient write; not to patients', async () => {
    const self = await registered(person(hkic()));
    const patientToken = await as({ kind: 'patient', patientId: self.patient.id });
    expect((await register(person(hkic()), [], patientToken)).statusCode).toBe(403);
    const reader = await as({ kind: 'system', clientId: 'reader', scopes: ['system/*.read'] });
    expect((await register(person(hkic()), [], reader)).statusCode).toBe(403);
    expect((await register(person(hkic()), [], {})).statusCode).toBe(201);
    const notParameters = await server.request({ method: 'POST', url: '/fhir/Patient/$register', headers: { ...FHIR_JSON, ...(await as(RO)) }, payload: person(hkic()) });
    expect(notParameters.statusCode).toBe(400);
  });
});
