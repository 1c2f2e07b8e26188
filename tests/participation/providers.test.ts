import type { Bundle, Location, Organization } from 'fhir/r4.js';
import { describe, expect, it } from 'vitest';
import { RULES, SUPPORTING_DOCUMENTS, SYSTEMS } from '../../src/participation/rules.js';
import { FHIR_JSON, outcomeOf, useServer, type TestServer } from '../http/harness.js';
import { describeEachStore } from '../store/stores.js';
import {
  account,
  createAccount,
  expectOutcome,
  isoDay,
  locationResource,
  nonPublicEstablishmentTypes,
  operation,
  organizationResource,
  patient,
  registerHcp,
  registerHcpParameters,
  registerProfessional,
  registrationOffice,
  systemClient,
  transition,
  unique,
  userAdministratorOf,
} from './fixtures.js';

const statusOf = (org: Organization) => org.extension?.find((e) => e.url === SYSTEMS.participationStatus)?.extension?.find((e) => e.url === 'status')?.valueCode;
const reasonOf = (org: Organization) => org.extension?.find((e) => e.url === SYSTEMS.participationStatus)?.extension?.find((e) => e.url === 'reason')?.valueString;

async function readOrganization(server: TestServer, id: string): Promise<Organization> {
  const res = await server.request({ method: 'GET', url: `/fhir/Organization/${id}` });
  expect(res.statusCode).toBe(200);
  return res.json() as Organization;
}

async function publicRegister(server: TestServer, query = ''): Promise<Bundle<Location>> {
  const res = await server.request({ method: 'GET', url: `/fhir/$hcp-register${query}`, headers: { authorization: '' } });
  expect(res.statusCode, res.body).toBe(200);
  return res.json() as Bundle<Location>;
}

const registerNames = (bundle: Bundle<Location>) => (bundle.entry ?? []).map((e) => e.resource!.managingOrganization?.display);

describeEachStore('healthcare providers', (open) => {
  const server = useServer(open, { publicProviders: true });
  const register = async (organization: Organization, locations: Location[], headers?: Record<string, string>) =>
    operation(server, '/fhir/Organization/$register', registerHcpParameters(organization, locations), headers ?? (await registrationOffice()));
  const act = async (id: string, action: string, parameter: { name: string; valueString?: string; valueDateTime?: string }[] = [], headers?: Record<string, string>) =>
    operation(server, `/fhir/Organization/${id}/$${action}`, parameter, headers ?? (await registrationOffice()));

  describe('$register', () => {
    it.each(nonPublicEstablishmentTypes.flatMap((type) => type.supportingDocuments.map((document) => [type.code, document] as const)))(
      'the registration office registers a %s with a %s: 201, applied, with its locations',
      async (type, document) => {
        const organization = organizationResource({ type, document, name: `HCP ${type} ${document}` });
        const res = await register(organization, [locationResource('Main site'), locationResource('Annex', { line: '2 Nathan Road' })]);
        expect(res.statusCode, res.body).toBe(201);
        const out = res.json();
        expect(out.resourceType).toBe('Parameters');
        const org = out.parameter.find((p: { name: string }) => p.name === 'organization').resource as Organization & { id: string };
        expect(res.headers.location).toBe(`http://fhir.test/fhir/Organization/${org.id}`);
        expect(statusOf(org)).toBe('applied');
        expect(org.active).toBe(false);
        expect(org.type?.[0]?.coding?.[0]?.code).toBe(type);
        const locations = out.parameter.filter((p: { name: string }) => p.name === 'location').map((p: { resource: Location }) => p.resource) as (Location & { id: string })[];
        expect(locations.map((l) => l.name)).toEqual(['Main site', 'Annex']);
        for (const location of locations) {
          expect(location.managingOrganization?.reference).toBe(`Organization/${org.id}`);
          const stored = await server.request({ method: 'GET', url: `/fhir/Location/${location.id}` });
          expect(stored.statusCode).toBe(200);
          expect(stored.json().managingOrganization.reference).toBe(`Organization/${org.id}`);
        }
        expect(statusOf(await readOrganization(server, org.id))).toBe('applied');
      },
    );

    it('a caller cannot register an HCP straight into active: the status and active flag it sends are replaced', async () => {
      const organization = { ...organizationResource(), active: true, extension: [{ url: SYSTEMS.participationStatus, extension: [{ url: 'status', valueCode: 'active' }, { url: 'effective', valueDateTime: '2020-01-01T00:00:00Z' }] }] };
      const res = await register(organization, [locationResource('Site')]);
      expect(res.statusCode, res.body).toBe(201);
      const org = res.json().parameter[0].resource as Organization;
      expect(statusOf(org)).toBe('applied');
      expect(org.active).toBe(false);
      expect(org.extension!.filter((e) => e.url === SYSTEMS.participationStatus)).toHaveLength(1);
    });

    it('covers every non-public establishment type in profiles/participation.json', () => {
      expect(nonPublicEstablishmentTypes.map((t) => t.code).sort()).toEqual(['dental-company', 'medical-clinic', 'nursing-home', 'private-hospital', 'rchd', 'rche', 'specified-entity']);
    });

    it('a supporting document not accepted for the establishment type is refused with 422 naming the accepted ones', async () => {
      for (const type of nonPublicEstablishmentTypes) {
        const wrong = RULES.supportingDocuments.find((d) => !type.supportingDocuments.includes(d.code))!.code;
        const res = await register(organizationResource({ type: type.code, document: wrong }), [locationResource('Site')]);
        expectOutcome(res, 422, 'business-rule');
        const { text, expressions } = outcomeOf(res);
        for (const accepted of type.supportingDocuments) expect(text, type.code).toContain(SUPPORTING_DOCUMENTS.get(accepted)!.display);
        expect(expressions).toContain('Organization.identifier');
      }
    });

    it('a supporting document without a number is refused with 422', async () => {
      const organization = organizationResource();
      delete organization.identifier![0]!.value;
      expectOutcome(await register(organization, [locationResource('Site')]), 422, 'business-rule', /Certificate of Registration of Medical Clinic/);
    });

    it('an unknown or missing establishment type is refused with 422', async () => {
      const unknown = organizationResource();
      unknown.type = [{ coding: [{ system: SYSTEMS.establishmentType, code: 'spa' }] }];
      expectOutcome(await register(unknown, [locationResource('Site')]), 422, 'business-rule', /medical-clinic/);
      const missing = organizationResource();
      delete missing.type;
      expectOutcome(await register(missing, [locationResource('Site')]), 422, 'business-rule', /Organization\.type/);
    });

    it('a public provider type (HA, DH) is not registered again: 422', async () => {
      expectOutcome(await register(organizationResource({ type: 'public-ha', document: 'proof-of-establishment' }), [locationResource('Site')]), 422, 'business-rule', /Hospital Authority/);
    });

    it('an HCP without a service location is refused with 422', async () => {
      expectOutcome(await register(organizationResource(), []), 422, 'business-rule', /location/);
    });

    it('a service location without an address is refused with 422', async () => {
      const location = locationResource('Nowhere');
      delete location.address;
      expectOutcome(await register(organizationResource(), [location]), 422, 'business-rule', /address/);
    });

    it('the same supporting document cannot register a second HCP: 409', async () => {
      const number = unique('dup');
      expect((await register(organizationResource({ number }), [locationResource('Site')])).statusCode).toBe(201);
      expectOutcome(await register(organizationResource({ number }), [locationResource('Site')]), 409, 'business-rule', /already registered/);
    });

    it('a body that is not Parameters, or without the organization, is a 400', async () => {
      const notParameters = await server.request({ method: 'POST', url: '/fhir/Organization/$register', headers: { ...FHIR_JSON, ...(await registrationOffice()) }, payload: organizationResource() });
      expectOutcome(notParameters, 400, 'invalid');
      expectOutcome(await operation(server, '/fhir/Organization/$register', [{ name: 'location', resource: locationResource('Site') }], await registrationOffice()), 400, 'invalid', /organization/);
    });

    it('an HCProf account, a patient and a system client may not register an HCP: 403', async () => {
      const hcp = await registerHcp(server);
      const admin = await userAdministratorOf(server, hcp.id);
      const doctor = await registerProfessional(server);
      const doctorRole = await createAccount(server, hcp.id, doctor.id, { by: admin.headers });
      const person = await server.create({ resourceType: 'Patient', name: [{ family: 'Wong' }] });
      const callers: [string, Record<string, string>][] = [
        ['user administrator', admin.headers],
        ['doctor', await account(doctorRole.id)],
        ['patient', await patient(person.id as string)],
        ['system client', await systemClient()],
      ];
      for (const [who, headers] of callers) {
        const res = await register(organizationResource(), [locationResource('Site')], headers);
        expectOutcome(res, 403, 'forbidden', /registration office/);
        expect(res.statusCode, who).toBe(403);
      }
    });

    it('without a token: 401', async () => {
      const res = await register(organizationResource(), [locationResource('Site')], { authorization: '' });
      expect(res.statusCode).toBe(401);
    });
  });

  describe('the life of a registration', () => {
    it('approve: applied → active', async () => {
      const hcp = await registerHcp(server, { active: false });
      const res = await act(hcp.id, 'approve');
      expect(res.statusCode, res.body).toBe(200);
      expect(statusOf(res.json())).toBe('active');
      expect(res.json().active).toBe(true);
      const stored = await readOrganization(server, hcp.id);
      expect(statusOf(stored)).toBe('active');
      expect(stored.active).toBe(true);
    });

    it('suspend needs a reason, then moves active → suspended keeping the reason; reinstate brings it back', async () => {
      const hcp = await registerHcp(server);
      const missing = await act(hcp.id, 'suspend');
      expect([400, 422]).toContain(missing.statusCode);
      expect(outcomeOf(missing).text).toMatch(/reason/);
      expect(statusOf(await readOrganization(server, hcp.id))).toBe('active');

      const suspended = await act(hcp.id, 'suspend', [{ name: 'reason', valueString: 'Licence under review' }]);
      expect(suspended.statusCode, suspended.body).toBe(200);
      expect(statusOf(suspended.json())).toBe('suspended');
      expect(reasonOf(suspended.json())).toBe('Licence under review');
      expect(suspended.json().active).toBe(false);

      const reinstated = await act(hcp.id, 'reinstate');
      expect(reinstated.statusCode).toBe(200);
      expect(statusOf(reinstated.json())).toBe('active');
    });

    it('cancel needs a reason', async () => {
      const hcp = await registerHcp(server);
      const missing = await act(hcp.id, 'cancel');
      expect([400, 422]).toContain(missing.statusCode);
      expect(statusOf((await act(hcp.id, 'cancel', [{ name: 'reason', valueString: 'Ceased business' }])).json())).toBe('cancelled');
    });

    it('transitions from the wrong state are refused with 409', async () => {
      const active = await registerHcp(server);
      expectOutcome(await act(active.id, 'approve'), 409, 'business-rule', /is active; approve applies to a provider that is applied/);
      expectOutcome(await act(active.id, 'reinstate'), 409, 'business-rule', /is active/);

      const applied = await registerHcp(server, { active: false });
      expectOutcome(await act(applied.id, 'suspend', [{ name: 'reason', valueString: 'x' }]), 409, 'business-rule', /is applied/);
      expectOutcome(await act(applied.id, 'reinstate'), 409, 'business-rule', /is applied/);

      const withdrawn = await registerHcp(server);
      await transition(server, withdrawn.id, 'withdraw');
      for (const action of ['approve', 'reinstate', 'withdraw']) expectOutcome(await act(withdrawn.id, action), 409, 'business-rule', /is withdrawn/);
      expectOutcome(await act(withdrawn.id, 'cancel', [{ name: 'reason', valueString: 'x' }]), 409, 'business-rule', /is withdrawn/);
      expect(statusOf(await readOrganization(server, withdrawn.id))).toBe('withdrawn');
    });

    it('an effectiveDate in the future is refused with 422; one in the past is recorded', async () => {
      const hcp = await registerHcp(server);
      const future = await act(hcp.id, 'suspend', [{ name: 'reason', valueString: 'x' }, { name: 'effectiveDate', valueDateTime: `${isoDay(2)}T00:00:00Z` }]);
      expectOutcome(future, 422, 'business-rule', /future/);
      expect(statusOf(await readOrganization(server, hcp.id))).toBe('active');
      expectOutcome(await act(hcp.id, 'suspend', [{ name: 'reason', valueString: 'x' }, { name: 'effectiveDate', valueDateTime: 'yesterday' }]), 422, 'business-rule', /not a valid date/);

      const past = await act(hcp.id, 'suspend', [{ name: 'reason', valueString: 'x' }, { name: 'effectiveDate', valueDateTime: '2024-03-01T09:00:00Z' }]);
      expect(past.statusCode, past.body).toBe(200);
      const effective = past.json().extension.find((e: { url: string }) => e.url === SYSTEMS.participationStatus).extension.find((e: { url: string }) => e.url === 'effective');
      expect(effective.valueDateTime).toBe('2024-03-01T09:00:00.000Z');
    });

    it('an unknown HCP is a 404', async () => {
      expectOutcome(await act('no-such-hcp', 'approve'), 404, 'not-found');
    });

    it('HA and DH exist and are active from the start, and cannot be suspended, cancelled or withdrawn (409)', async () => {
      for (const provider of RULES.publicProviders) {
        const org = await readOrganization(server, provider.id);
        expect(org.name).toBe(provider.name);
        expect(statusOf(org)).toBe('active');
        expect(org.active).toBe(true);
        expectOutcome(await act(provider.id, 'suspend', [{ name: 'reason', valueString: 'x' }]), 409, 'business-rule', /public provider/);
        expectOutcome(await act(provider.id, 'cancel', [{ name: 'reason', valueString: 'x' }]), 409, 'business-rule', /public provider/);
        expectOutcome(await act(provider.id, 'withdraw'), 409, 'business-rule', /public provider/);
        expectOutcome(await act(provider.id, 'approve'), 409, 'business-rule');
        expect(statusOf(await readOrganization(server, provider.id))).toBe('active');
      }
    });

    it("the HCP's own user administrator may withdraw it; another HCP's user administrator may not (403)", async () => {
      const mine = await registerHcp(server);
      const other = await registerHcp(server);
      const myAdmin = await userAdministratorOf(server, mine.id);
      const otherAdmin = await userAdministratorOf(server, other.id);

      expectOutcome(await act(mine.id, 'withdraw', [], otherAdmin.headers), 403, 'forbidden');
      expect(statusOf(await readOrganization(server, mine.id))).toBe('active');
      // A user administrator withdraws, and does nothing else to the registration.
      expectOutcome(await act(mine.id, 'suspend', [{ name: 'reason', valueString: 'x' }], myAdmin.headers), 403, 'forbidden', /registration office/);

      const res = await act(mine.id, 'withdraw', [{ name: 'reason', valueString: 'Closing the clinic' }], myAdmin.headers);
      expect(res.statusCode, res.body).toBe(200);
      expect(statusOf(res.json())).toBe('withdrawn');
      expect(reasonOf(res.json())).toBe('Closing the clinic');
    });

    it('an ordinary account, a patient and a system client may not change an HCP: 403', async () => {
      const hcp = await registerHcp(server);
      const admin = await userAdministratorOf(server, hcp.id);
      const doctor = await registerProfessional(server);
      const role = await createAccount(server, hcp.id, doctor.id, { by: admin.headers });
      const person = await server.create({ resourceType: 'Patient' });
      for (const headers of [await account(role.id), await patient(person.id as string), await systemClient()]) {
        expectOutcome(await act(hcp.id, 'withdraw', [], headers), 403, 'forbidden');
        expectOutcome(await act(hcp.id, 'suspend', [{ name: 'reason', valueString: 'x' }], headers), 403, 'forbidden');
      }
      expect(statusOf(await readOrganization(server, hcp.id))).toBe('active');
    });
  });

  describe('the public HCP register', () => {
    const ENTRY_KEYS = ['address', 'managingOrganization', 'name', 'resourceType', 'telecom'];

    it("shows an active HCP's locations without a token, with only name, address, phone and the HCP's name", async () => {
      const name = `Harbour Clinic ${unique('x')}`;
      const hcp = await registerHcp(server, { name, locations: [locationResource('Harbour Clinic Central', { line: '8 Queen\'s Road Central', city: 'Central', phone: '+852 2222 3333' })] });
      const bundle = await publicRegister(server, `?name=${encodeURIComponent(name)}`);
      expect(bundle.resourceType).toBe('Bundle');
      expect(bundle.type).toBe('searchset');
      expect(bundle.entry).toHaveLength(1);
      const entry = bundle.entry![0]!;
      expect(Object.keys(entry).sort()).toEqual(['resource', 'search']);
      const location = entry.resource!;
      expect(Object.keys(location).sort()).toEqual(ENTRY_KEYS);
      expect(location).toEqual({
        resourceType: 'Location',
        name: 'Harbour Clinic Central',
        address: { line: ["8 Queen's Road Central"], city: 'Central', country: 'HK' },
        telecom: [{ system: 'phone', value: '+852 2222 3333' }],
        managingOrganization: { display: name },
      });
      expect(JSON.stringify(bundle)).not.toContain(hcp.id);
      expect(JSON.stringify(bundle)).not.toContain(hcp.locations[0]!.id);
      expect(JSON.stringify(bundle)).not.toMatch(/back door|front-desk|000000/);
    });

    it('every entry, HA and DH included, carries exactly those keys', async () => {
      const bundle = await publicRegister(server, '?_count=100');
      expect(registerNames(bundle)).toEqual(expect.arrayContaining(['Hospital Authority', 'Department of Health']));
      expect(bundle).not.toHaveProperty('id');
      expect(bundle).not.toHaveProperty('meta');
      for (const entry of bundle.entry ?? []) {
        expect(entry).not.toHaveProperty('fullUrl');
        expect(Object.keys(entry.resource!).sort()).toEqual(ENTRY_KEYS);
        expect(Object.keys(entry.resource!.managingOrganization!)).toEqual(['display']);
        expect(entry.resource!.telecom!.every((t) => t.system === 'phone')).toBe(true);
      }
    });

    it('searches by part of the address and by the start of the HCP name', async () => {
      const street = `${unique('Lane')} Street`;
      const name = `${unique('Lane Clinic')} Limited`;
      await registerHcp(server, { name, locations: [locationResource('Lane site', { line: `3 ${street}` })] });
      expect(registerNames(await publicRegister(server, `?address=${encodeURIComponent(street)}`))).toEqual([name]);
      expect(registerNames(await publicRegister(server, `?name=${encodeURIComponent(name.slice(0, 18))}`))).toEqual([name]);
      expect(registerNames(await publicRegister(server, `?name=${encodeURIComponent(name.slice(0, 18))}&address=Nowhere`))).toEqual([]);
    });

    it('never shows applied, suspended, cancelled or withdrawn HCPs', async () => {
      const tag = unique('Hidden');
      const applied = await registerHcp(server, { name: `${tag} applied`, active: false });
      const suspended = await registerHcp(server, { name: `${tag} suspended` });
      const cancelled = await registerHcp(server, { name: `${tag} cancelled` });
      const withdrawn = await registerHcp(server, { name: `${tag} withdrawn` });
      const active = await registerHcp(server, { name: `${tag} active` });
      const before = registerNames(await publicRegister(server, `?name=${encodeURIComponent(tag)}`));
      expect(before.sort()).toEqual([suspended, cancelled, withdrawn, active].map((h) => h.name).sort());
      expect(before).not.toContain(applied.name);

      await transition(server, suspended.id, 'suspend');
      await transition(server, cancelled.id, 'cancel');
      await transition(server, withdrawn.id, 'withdraw');
      const shown = await publicRegister(server, `?name=${encodeURIComponent(tag)}`);
      expect(registerNames(shown)).toEqual([active.name]);
      expect(shown.total).toBe(1);

      await transition(server, suspended.id, 'reinstate');
      expect(registerNames(await publicRegister(server, `?name=${encodeURIComponent(tag)}`)).sort()).toEqual([active.name, suspended.name].sort());
    });

    it('refuses a bad _count with 400', async () => {
      const res = await server.request({ method: 'GET', url: '/fhir/$hcp-register?_count=zero', headers: { authorization: '' } });
      expectOutcome(res, 400, 'invalid');
    });
  });

  describe('plain REST on an HCP', () => {
    it('the participation status and active flag change only through the operations (422); an ordinary edit succeeds', async () => {
      const hcp = await registerHcp(server);
      const ro = { ...FHIR_JSON, ...(await registrationOffice()) };
      const put = (body: Organization) => server.request({ method: 'PUT', url: `/fhir/Organization/${hcp.id}`, headers: ro, payload: body });
      const current = await readOrganization(server, hcp.id);

      const inactive = await put({ ...current, active: false });
      expectOutcome(inactive, 422, 'processing', /active mirrors the participation status/);

      const reStatused = structuredClone(current);
      reStatused.extension!.find((e) => e.url === SYSTEMS.participationStatus)!.extension!.find((e) => e.url === 'status')!.valueCode = 'suspended';
      expectOutcome(await put(reStatused), 422, 'processing', /changes only through its operations/);

      const stripped = { ...current };
      delete stripped.extension;
      expectOutcome(await put(stripped), 422, 'processing', /changes only through its operations/);

      const patch = await server.request({
        method: 'PATCH',
        url: `/fhir/Organization/${hcp.id}`,
        headers: { ...ro, 'content-type': 'application/json-patch+json' },
        payload: [{ op: 'replace', path: '/active', value: false }],
      });
      expectOutcome(patch, 422, 'processing');

      const madePublic = { ...current, type: [{ coding: [{ system: SYSTEMS.establishmentType, code: 'public-ha' }] }] };
      expectOutcome(await put(madePublic), 422, 'processing', /establishment type is fixed/);

      const created = await server.request({ method: 'POST', url: '/fhir/Organization', headers: ro, payload: { ...current, id: undefined } });
      expectOutcome(created, 422, 'processing', /changes only through its operations/);

      const edited = await put({ ...current, telecom: [{ system: 'phone', value: '+852 3999 0000' }] });
      expect(edited.statusCode, edited.body).toBe(200);
      const stored = await readOrganization(server, hcp.id);
      expect(stored.telecom).toEqual([{ system: 'phone', value: '+852 3999 0000' }]);
      expect(statusOf(stored)).toBe('active');
      expect(stored.active).toBe(true);
    });

    it('the same holds for a backend client allowed everything', async () => {
      const hcp = await registerHcp(server, { active: false });
      const current = await readOrganization(server, hcp.id);
      const res = await server.request({ method: 'PUT', url: `/fhir/Organization/${hcp.id}`, headers: FHIR_JSON, payload: { ...current, active: true } });
      expectOutcome(res, 422, 'processing');
      expect(statusOf(await readOrganization(server, hcp.id))).toBe('applied');
    });
  });
});
