import type { CapabilityStatement, CapabilityStatementRestResourceOperation, Practitioner, PractitionerRole } from 'fhir/r4.js';
import { describe, expect, it } from 'vitest';
import { canonicalOf, OPERATIONS } from '../../src/participation/operations.js';
import { RULES, SYSTEMS, USER_ADMINISTRATOR } from '../../src/participation/rules.js';
import { FHIR_JSON, useServer, type TestServer } from '../http/harness.js';
import { describeEachStore } from '../store/stores.js';
import { patientOf } from '../access/territory.js';
import {
  account,
  createAccount,
  createAccountCall,
  expectOutcome,
  isoDay,
  operation,
  patient,
  practitionerResource,
  registerHcp,
  registerProfessional,
  registrationOffice,
  systemClient,
  transition,
  unique,
  userAdministratorOf,
  type Headers,
} from './fixtures.js';

const codesOf = (role: PractitionerRole) => (role.code ?? []).flatMap((c) => c.coding ?? []).map((c) => `${c.system}|${c.code}`);

/** One HCP with a user administrator, and a doctor holding an account there. */
async function clinicWithDoctor(server: TestServer) {
  const hcp = await registerHcp(server);
  const admin = await userAdministratorOf(server, hcp.id);
  const doctor = await registerProfessional(server);
  const role = await createAccount(server, hcp.id, doctor.id, { by: admin.headers });
  const patient = await patientOf(server, hcp.id);
  return { hcp, admin, doctor, role, patient, headers: await account(role.id) };
}

/** A vital-signs Observation for a patient under the HCP's care (uploads must name one). */
async function createObservation(server: TestServer, headers: Headers, patientId: string, performer?: string) {
  const observation = {
    resourceType: 'Observation',
    status: 'final',
    category: [{ coding: [{ system: 'http://terminology.hl7.org/CodeSystem/observation-category', code: 'vital-signs' }] }],
    code: { text: 'Blood pressure' },
    subject: { reference: `Patient/${patientId}` },
    ...(performer && { performer: [{ reference: `Practitioner/${performer}` }] }),
  };
  return server.request({ method: 'POST', url: '/fhir/Observation', headers: { ...FHIR_JSON, ...headers }, payload: observation });
}

const deactivateCall = (server: TestServer, roleId: string, headers: Headers) => operation(server, `/fhir/PractitionerRole/${roleId}/$deactivate`, [{ name: 'reason', valueString: 'Left the clinic' }], headers);

describeEachStore('healthcare professionals and accounts', (open) => {
  const server = useServer(open, { publicProviders: true });
  const registerCall = async (practitioner: Practitioner, headers?: Headers) =>
    operation(server, '/fhir/Practitioner/$register', [{ name: 'practitioner', resource: practitioner }], headers ?? (await registrationOffice()));

  describe('Practitioner $register', () => {
    it('covers the 13 professional groups', () => {
      expect(RULES.professionalGroups).toHaveLength(13);
    });

    it.each(RULES.professionalGroups.map((g) => g.code))('the registration office records a %s: 201 with the registration number as an identifier', async (group) => {
      const number = unique(group.slice(0, 3).toUpperCase());
      const res = await registerCall(practitionerResource({ group, number }));
      expect(res.statusCode, res.body).toBe(201);
      const stored = res.json() as Practitioner & { id: string };
      expect(res.headers.location).toBe(`http://fhir.test/fhir/Practitioner/${stored.id}`);
      expect(stored.active).toBe(true);
      expect(stored.identifier).toContainEqual({ system: SYSTEMS.professionalRegistration(group), value: number });
      expect(stored.qualification![0]!.code.coding![0]!.code).toBe(group);
      const found = await server.request({ method: 'GET', url: `/fhir/Practitioner?identifier=${encodeURIComponent(`${SYSTEMS.professionalRegistration(group)}|${number}`)}` });
      expect(found.json().entry.map((e: { resource: { id: string } }) => e.resource.id)).toEqual([stored.id]);
    });

    it('an unknown professional group is refused with 422', async () => {
      expectOutcome(await registerCall(practitionerResource({ group: 'herbalist' })), 422, 'business-rule', /'herbalist' is not one of the 13/);
      const noGroup = practitionerResource();
      noGroup.qualification![0]!.code = { text: 'Doctor' };
      expectOutcome(await registerCall(noGroup), 422, 'business-rule', /professional group/);
    });

    it('a missing registration number or validity is refused with 422', async () => {
      expectOutcome(await registerCall(practitionerResource({ number: null })), 422, 'business-rule', /registration number/);
      expectOutcome(await registerCall(practitionerResource({ validTo: null })), 422, 'business-rule', /validity/);
    });

    it('an expired registration is refused with 422', async () => {
      expectOutcome(await registerCall(practitionerResource({ validTo: isoDay(-1) })), 422, 'business-rule', /not valid/);
    });

    it('a professional without a name is refused with 422', async () => {
      const nameless = practitionerResource();
      delete nameless.name;
      expectOutcome(await registerCall(nameless), 422, 'business-rule', /name/);
    });

    it('a second record with the same group and registration number is refused with 409; the same number in another group is fine', async () => {
      const number = unique('M');
      const first = await registerProfessional(server, { group: 'medical-practitioner', number });
      const again = await registerCall(practitionerResource({ group: 'medical-practitioner', number, family: 'Lee' }));
      expectOutcome(again, 409, 'business-rule', new RegExp(`Practitioner/${first.id}`));
      expect((await registerCall(practitionerResource({ group: 'nurse', number }))).statusCode).toBe(201);
    });

    it('a user administrator may record a professional; an ordinary account, a patient and a system client may not (403)', async () => {
      const { admin, headers } = await clinicWithDoctor(server);
      expect((await registerCall(practitionerResource(), admin.headers)).statusCode).toBe(201);
      const person = await server.create({ resourceType: 'Patient' });
      for (const caller of [headers, await patient(person.id as string), await systemClient()]) {
        expectOutcome(await registerCall(practitionerResource(), caller), 403, 'forbidden');
      }
    });
  });

  describe('accounts', () => {
    it('the registration office appoints a user administrator (201) but gets 403 for an ordinary account', async () => {
      const hcp = await registerHcp(server);
      const person = await registerProfessional(server);
      const ordinary = await createAccountCall(server, hcp.id, person.id, false, await registrationOffice());
      expectOutcome(ordinary, 403, 'forbidden', /user administrators only/);

      const res = await createAccountCall(server, hcp.id, person.id, true, await registrationOffice());
      expect(res.statusCode, res.body).toBe(201);
      const role = res.json() as PractitionerRole & { id: string };
      expect(res.headers.location).toBe(`http://fhir.test/fhir/PractitionerRole/${role.id}`);
      expect(role.active).toBe(true);
      expect(role.organization?.reference).toBe(`Organization/${hcp.id}`);
      expect(role.practitioner?.reference).toBe(`Practitioner/${person.id}`);
      expect(codesOf(role)).toContain(`${SYSTEMS.accountRole}|${USER_ADMINISTRATOR}`);
    });

    it("the user administrator creates a doctor's account: 201, active, with the professional group", async () => {
      const hcp = await registerHcp(server);
      const admin = await userAdministratorOf(server, hcp.id);
      const doctor = await registerProfessional(server, { group: 'medical-practitioner' });
      const res = await createAccountCall(server, hcp.id, doctor.id, false, admin.headers);
      expect(res.statusCode, res.body).toBe(201);
      const role = res.json() as PractitionerRole;
      expect(role.active).toBe(true);
      expect(role.organization?.reference).toBe(`Organization/${hcp.id}`);
      expect(role.practitioner?.reference).toBe(`Practitioner/${doctor.id}`);
      expect(codesOf(role)).toEqual([`${SYSTEMS.professionalGroup}|medical-practitioner`]);
    });

    it('a second active account for the same professional at the same HCP is refused with 409', async () => {
      const { hcp, admin, doctor, role } = await clinicWithDoctor(server);
      expectOutcome(await createAccountCall(server, hcp.id, doctor.id, false, admin.headers), 409, 'business-rule', new RegExp(`PractitionerRole/${role.id}`));
    });

    it('an account for an unknown practitioner is refused with 422; at an unknown HCP, 404', async () => {
      const hcp = await registerHcp(server);
      const admin = await userAdministratorOf(server, hcp.id);
      expectOutcome(await createAccountCall(server, hcp.id, 'no-such-person', false, admin.headers), 422, 'business-rule', /recorded Practitioner/);
      const person = await registerProfessional(server);
      expectOutcome(await createAccountCall(server, 'no-such-hcp', person.id, true, await registrationOffice()), 404, 'not-found');
    });

    it('a user administrator of HCP B may not create or deactivate accounts of HCP A (403)', async () => {
      const a = await clinicWithDoctor(server);
      const b = await clinicWithDoctor(server);
      const nurse = await registerProfessional(server, { group: 'nurse' });
      expectOutcome(await createAccountCall(server, a.hcp.id, nurse.id, false, b.admin.headers), 403, 'forbidden', /own HCP/);
      expectOutcome(await deactivateCall(server, a.role.id, b.admin.headers), 403, 'forbidden', /own HCP/);
      expect((await server.request({ method: 'GET', url: '/fhir/Organization', headers: a.headers })).statusCode).toBe(200);
    });

    it('the registration office, a patient and a system client may not deactivate an account (403)', async () => {
      const { role, headers } = await clinicWithDoctor(server);
      const person = await server.create({ resourceType: 'Patient' });
      for (const caller of [await registrationOffice(), await patient(person.id as string), await systemClient(), headers]) {
        expectOutcome(await deactivateCall(server, role.id, caller), 403, 'forbidden');
      }
    });

    it('accounts are not written through plain REST, even by the registration office (403)', async () => {
      const { hcp, doctor } = await clinicWithDoctor(server);
      const role = { resourceType: 'PractitionerRole', active: true, practitioner: { reference: `Practitioner/${doctor.id}` }, organization: { reference: `Organization/${hcp.id}` } };
      const res = await server.request({ method: 'POST', url: '/fhir/PractitionerRole', headers: { ...FHIR_JSON, ...(await registrationOffice()) }, payload: role });
      expectOutcome(res, 403, 'forbidden', /user administrator/);
    });
  });

  describe("what a doctor's account may do", () => {
    it('create and read an Observation; not write an Organization or a Patient; not create accounts', async () => {
      const { hcp, doctor, patient, headers } = await clinicWithDoctor(server);
      const created = await createObservation(server, headers, patient.id);
      expect(created.statusCode, created.body).toBe(201);
      const read = await server.request({ method: 'GET', url: `/fhir/Observation/${created.json().id}`, headers });
      expect(read.statusCode).toBe(200);
      expect(read.json().code.text).toBe('Blood pressure');

      const org = (await server.request({ method: 'GET', url: `/fhir/Organization/${hcp.id}`, headers })).json();
      const putOrg = await server.request({ method: 'PUT', url: `/fhir/Organization/${hcp.id}`, headers: { ...FHIR_JSON, ...headers }, payload: { ...org, telecom: [{ system: 'phone', value: '+852 1' }] } });
      expectOutcome(putOrg, 403, 'forbidden', /registration operations/);
      const postPatient = await server.request({ method: 'POST', url: '/fhir/Patient', headers: { ...FHIR_JSON, ...headers }, payload: { resourceType: 'Patient', name: [{ family: 'Ho' }] } });
      expectOutcome(postPatient, 403, 'forbidden');
      const deleteOrg = await server.request({ method: 'DELETE', url: `/fhir/Organization/${hcp.id}`, headers });
      expectOutcome(deleteOrg, 403, 'forbidden');

      const colleague = await registerProfessional(server, { group: 'nurse' });
      expectOutcome(await createAccountCall(server, hcp.id, colleague.id, false, headers), 403, 'forbidden', /user administrator/);
      expectOutcome(await createAccountCall(server, hcp.id, doctor.id, true, headers), 403, 'forbidden');
    });

    it('one doctor with accounts at two HCPs; deactivating one leaves the other working', async () => {
      const clinic = await registerHcp(server, { type: 'medical-clinic' });
      const hospital = await registerHcp(server, { type: 'private-hospital' });
      const clinicAdmin = await userAdministratorOf(server, clinic.id);
      const hospitalAdmin = await userAdministratorOf(server, hospital.id);
      const doctor = await registerProfessional(server);
      const atClinic = await createAccount(server, clinic.id, doctor.id, { by: clinicAdmin.headers });
      const atHospital = await createAccount(server, hospital.id, doctor.id, { by: hospitalAdmin.headers });
      const clinicToken = await account(atClinic.id);
      const hospitalToken = await account(atHospital.id);
      const clinicPatient = await patientOf(server, clinic.id);
      const hospitalPatient = await patientOf(server, hospital.id);
      expect((await createObservation(server, clinicToken, clinicPatient.id)).statusCode).toBe(201);
      expect((await createObservation(server, hospitalToken, hospitalPatient.id)).statusCode).toBe(201);
      // Each account reaches its own HCP's patients only.
      expect((await createObservation(server, hospitalToken, clinicPatient.id)).statusCode).toBe(403);

      // The hospital's administrator cannot end the clinic account; the clinic's can.
      expectOutcome(await deactivateCall(server, atClinic.id, hospitalAdmin.headers), 403, 'forbidden');
      const res = await deactivateCall(server, atClinic.id, clinicAdmin.headers);
      expect(res.statusCode, res.body).toBe(200);
      expect(res.json().active).toBe(false);
      expect(res.json().period.end).toBeDefined();

      for (const url of ['/fhir/Observation', `/fhir/Organization/${clinic.id}`, `/fhir/Practitioner/${doctor.id}`]) {
        expectOutcome(await server.request({ method: 'GET', url, headers: clinicToken }), 403, 'forbidden', /deactivated/);
      }
      expectOutcome(await createObservation(server, clinicToken, clinicPatient.id), 403, 'forbidden', /deactivated/);
      expect((await createObservation(server, hospitalToken, hospitalPatient.id)).statusCode).toBe(201);
      expect((await server.request({ method: 'GET', url: '/fhir/Observation', headers: hospitalToken })).statusCode).toBe(200);

      expectOutcome(await deactivateCall(server, atClinic.id, clinicAdmin.headers), 409, 'business-rule', /already inactive/);
      // A new account at the clinic may be made once the old one has ended.
      const again = await createAccount(server, clinic.id, doctor.id, { by: clinicAdmin.headers });
      expect((await createObservation(server, await account(again.id), clinicPatient.id)).statusCode).toBe(201);
    });

    it("suspending the HCP makes its accounts' every read a 403 with the reason; reinstating restores access", async () => {
      const { hcp, admin, doctor, patient, headers } = await clinicWithDoctor(server);
      const observation = (await createObservation(server, headers, patient.id)).json();
      const reads = [
        `/fhir/Observation/${observation.id}`,
        '/fhir/Observation',
        `/fhir/Observation/${observation.id}/_history`,
        `/fhir/Organization/${hcp.id}`,
        '/fhir/Patient',
        `/fhir/Patient/${patient.id}`,
        `/fhir/Practitioner/${doctor.id}`,
      ];
      for (const url of reads) expect((await server.request({ method: 'GET', url, headers })).statusCode, url).toBe(200);

      await transition(server, hcp.id, 'suspend', 'Licence under review');
      for (const url of reads) expectOutcome(await server.request({ method: 'GET', url, headers }), 403, 'forbidden', /healthcare provider is not active/);
      expectOutcome(await createObservation(server, headers, patient.id), 403, 'forbidden', /not active/);
      // Its user administrator can do nothing either.
      const nurse = await registerProfessional(server, { group: 'nurse' });
      expectOutcome(await createAccountCall(server, hcp.id, nurse.id, false, admin.headers), 403, 'forbidden', /not active/);

      await transition(server, hcp.id, 'reinstate');
      for (const url of reads) expect((await server.request({ method: 'GET', url, headers })).statusCode, url).toBe(200);
      expect((await createAccountCall(server, hcp.id, nurse.id, false, admin.headers)).statusCode).toBe(201);
    });

    it("a withdrawn or cancelled HCP's accounts get 403", async () => {
      for (const action of ['withdraw', 'cancel'] as const) {
        const { hcp, headers } = await clinicWithDoctor(server);
        await transition(server, hcp.id, action);
        expectOutcome(await server.request({ method: 'GET', url: '/fhir/Observation', headers }), 403, 'forbidden', /not active/);
      }
    });

    it('a professional whose registration has lapsed gets 403 for clinical records but may still read participation records', async () => {
      const { hcp, doctor, patient, headers } = await clinicWithDoctor(server);
      const observation = (await createObservation(server, headers, patient.id, doctor.id)).json();
      const revinclude = `/fhir/Practitioner?_id=${doctor.id}&_revinclude=Observation:performer`;
      const before = await server.request({ method: 'GET', url: revinclude, headers });
      expect(before.json().entry.some((e: { resource: { id: string } }) => e.resource.id === observation.id)).toBe(true);

      // The registration's validity ended yesterday (written by a backend client, as a registry feed would).
      const current = (await server.request({ method: 'GET', url: `/fhir/Practitioner/${doctor.id}` })).json() as Practitioner;
      current.qualification![0]!.period = { start: '2010-01-01', end: isoDay(-1) };
      const put = await server.request({ method: 'PUT', url: `/fhir/Practitioner/${doctor.id}`, headers: { ...FHIR_JSON, ...(await systemClient(['system/Practitioner.write'])) }, payload: current });
      expect(put.statusCode, put.body).toBe(200);

      expectOutcome(await server.request({ method: 'GET', url: `/fhir/Observation/${observation.id}`, headers }), 403, 'forbidden', /professional registration is not valid/);
      expectOutcome(await server.request({ method: 'GET', url: '/fhir/Observation', headers }), 403, 'forbidden', /professional registration is not valid/);
      expectOutcome(await createObservation(server, headers, patient.id), 403, 'forbidden', /professional registration is not valid/);
      expect((await server.request({ method: 'GET', url: `/fhir/Organization/${hcp.id}`, headers })).statusCode).toBe(200);
      expect((await server.request({ method: 'GET', url: '/fhir/Organization', headers })).statusCode).toBe(200);
      expect((await server.request({ method: 'GET', url: `/fhir/Practitioner/${doctor.id}`, headers })).statusCode).toBe(200);
      // Nor through a participation search that reaches into health records.
      for (const url of [revinclude, '/fhir/Practitioner?_revinclude:iterate=Observation:performer', '/fhir/Patient?_has:Observation:subject:code:text=Blood']) {
        expectOutcome(await server.request({ method: 'GET', url, headers }), 403, 'forbidden', /reaches into other resource types/);
      }
      const search = await server.request({ method: 'POST', url: '/fhir/Practitioner/_search', headers: { ...headers, 'content-type': 'application/x-www-form-urlencoded' }, payload: `_id=${doctor.id}&_revinclude=Observation:performer` });
      expectOutcome(search, 403, 'forbidden', /reaches into other resource types/);

      // No new account for a professional whose registration is not valid.
      const other = await registerHcp(server);
      const otherAdmin = await userAdministratorOf(server, other.id);
      expectOutcome(await createAccountCall(server, other.id, doctor.id, false, otherAdmin.headers), 422, 'business-rule', /registration is valid/);
    });
  });

  describe('the CapabilityStatement', () => {
    const ours = OPERATIONS.filter((spec) =>
      ['Organization-register', 'Organization-approve', 'Organization-suspend', 'Organization-reinstate', 'Organization-cancel', 'Organization-withdraw', 'Organization-create-account', 'PractitionerRole-deactivate', 'Practitioner-register', 'hcp-register'].includes(spec.id),
    );

    it('lists each HCP, professional and account operation with a definition that resolves without a token', async () => {
      expect(ours).toHaveLength(10);
      const res = await server.request({ method: 'GET', url: '/fhir/metadata', headers: { authorization: '' } });
      expect(res.statusCode).toBe(200);
      const rest = (res.json() as CapabilityStatement).rest![0]!;
      for (const spec of ours) {
        const listed: CapabilityStatementRestResourceOperation[] = spec.resource === 'System' ? (rest.operation ?? []) : (rest.resource!.find((r) => r.type === spec.resource)?.operation ?? []);
        const entry = listed.find((o) => o.definition === canonicalOf(spec));
        expect(entry, spec.id).toBeDefined();
        expect(entry!.name).toBe(spec.code);

        const id = entry!.definition.split('/').pop()!;
        const definition = await server.request({ method: 'GET', url: `/fhir/OperationDefinition/${id}`, headers: { authorization: '' } });
        expect(definition.statusCode, spec.id).toBe(200);
        expect(definition.json()).toMatchObject({ resourceType: 'OperationDefinition', id: spec.id, url: entry!.definition, code: spec.code, status: 'active' });
      }
    });
  });
});
