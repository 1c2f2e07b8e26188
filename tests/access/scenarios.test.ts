import type { LightMyRequestResponse } from 'fastify';
import { describe, expect, it } from 'vitest';
import { classify, SHARABLE_TYPE_CODES } from '../../src/access/classification.js';
import { RBAC } from '../../src/access/rbac.js';
import { RULES } from '../../src/participation/rules.js';
import { FHIR_JSON, useServer, type TestServer } from '../http/harness.js';
import { operation, type Headers } from '../participation/fixtures.js';
import { describeEachStore } from '../store/stores.js';
import { sampleRecords } from './samples.js';
import { accountsAt, endCare, giveConsent, hcpWithAccounts, joinedPatient, patientOf, restrictedGrant, revokeConsent, startCare, today } from './territory.js';

/** The eHealth access rules, end to end through HTTP, on the demo territory's shapes. */

const RESTRICTED = { security: [{ system: 'http://terminology.hl7.org/CodeSystem/v3-Confidentiality', code: 'R' }] };

const get = (server: TestServer, url: string, headers: Headers) => server.request({ method: 'GET', url, headers });
const ids = (res: LightMyRequestResponse) => ((res.json().entry ?? []) as { resource: { resourceType: string; id: string } }[]).map((e) => `${e.resource.resourceType}/${e.resource.id}`);

async function vital(server: TestServer, patientId: string, extra: Record<string, unknown> = {}): Promise<string> {
  const created = await server.create({ ...sampleRecords(patientId)['observations-lifestyle'], ...extra });
  return created.id as string;
}

describeEachStore('consent-aware access', (open) => {
  const server = useServer(open, { publicProviders: true });

  describe('sharing consent, care and participation', () => {
    it('a patient consenting to one HCP is seen by that HCP, not by another that cares for them without consent', async () => {
      const [a, b] = [await hcpWithAccounts(server), await hcpWithAccounts(server)];
      const patient = await patientOf(server, a.id);
      await startCare(server, patient.id, b.id);
      const obs = await vital(server, patient.id);
      const atA = a.accounts['medical-practitioner']!.headers;
      const atB = b.accounts['medical-practitioner']!.headers;
      expect((await get(server, `/fhir/Observation/${obs}`, atA)).statusCode).toBe(200);
      expect((await get(server, `/fhir/Patient/${patient.id}`, atA)).statusCode).toBe(200);
      const hidden = await get(server, `/fhir/Observation/${obs}`, atB);
      expect(hidden.statusCode).toBe(404);
      expect(hidden.json().issue[0].diagnostics).toBe(`Observation/${obs} is not known`);
      expect((await get(server, `/fhir/Patient/${patient.id}`, atB)).statusCode).toBe(404);
      const search = await get(server, `/fhir/Observation?subject=Patient/${patient.id}`, atB);
      expect(search.json().total).toBe(0);
      expect(search.json().entry).toBeUndefined();
    });

    it('a one-year consent stops on the day after it ends; one ending today still works', async () => {
      const hcp = await hcpWithAccounts(server);
      const doctor = hcp.accounts['medical-practitioner']!.headers;
      const [expired, lastDay] = [await joinedPatient(server), await joinedPatient(server)];
      const yesterday = new Date(Date.now() - 86_400_000 + 8 * 3_600_000).toISOString().slice(0, 10);
      await giveConsent(server, expired.id, hcp.id, { ends: yesterday });
      await giveConsent(server, lastDay.id, hcp.id, { ends: today() });
      for (const p of [expired, lastDay]) await startCare(server, p.id, hcp.id);
      expect((await get(server, `/fhir/Patient/${expired.id}`, doctor)).statusCode).toBe(404);
      expect((await get(server, `/fhir/Patient/${lastDay.id}`, doctor)).statusCode).toBe(200);
    });

    it('revoking a consent takes effect on the very next request', async () => {
      const hcp = await hcpWithAccounts(server);
      const doctor = hcp.accounts['medical-practitioner']!.headers;
      const patient = await joinedPatient(server);
      const consent = await giveConsent(server, patient.id, hcp.id);
      await startCare(server, patient.id, hcp.id);
      const obs = await vital(server, patient.id);
      expect((await get(server, `/fhir/Observation/${obs}`, doctor)).statusCode).toBe(200);
      await revokeConsent(server, consent);
      expect((await get(server, `/fhir/Observation/${obs}`, doctor)).statusCode).toBe(404);
      expect((await get(server, '/fhir/Observation?_summary=count', doctor)).json().total).toBe(0);
    });

    it('HA and DH need no consent, but do need the patient under their care', async () => {
      for (const publicProvider of RULES.publicProviders.map((p) => p.id)) {
        const accounts = await accountsAt(server, publicProvider, ['medical-practitioner']);
        const doctor = accounts['medical-practitioner']!.headers;
        const [cared, stranger] = [await joinedPatient(server), await joinedPatient(server)];
        await startCare(server, cared.id, publicProvider);
        const obs = await vital(server, cared.id);
        expect((await get(server, `/fhir/Observation/${obs}`, doctor)).statusCode).toBe(200);
        expect((await get(server, `/fhir/Patient/${stranger.id}`, doctor)).statusCode).toBe(404);
      }
    });

    it('a withdrawn patient and a patient pending activation are invisible', async () => {
      const hcp = await hcpWithAccounts(server);
      const doctor = hcp.accounts['medical-practitioner']!.headers;
      const patient = await patientOf(server, hcp.id);
      const obs = await vital(server, patient.id);
      expect((await get(server, `/fhir/Observation/${obs}`, doctor)).statusCode).toBe(200);
      const withdrawn = await operation(server, `/fhir/Patient/${patient.id}/$withdraw`, [{ name: 'reason', valueString: 'Moving abroad' }], patient.headers);
      expect(withdrawn.statusCode, withdrawn.body).toBe(200);
      expect((await get(server, `/fhir/Observation/${obs}`, doctor)).statusCode).toBe(404);
      // Uploads stop too.
      const upload = await server.request({ method: 'POST', url: '/fhir/Observation', headers: { ...FHIR_JSON, ...doctor }, payload: sampleRecords(patient.id)['observations-lifestyle'] });
      expect(upload.statusCode).toBe(403);

      const pending = await joinedPatient(server, { activate: false });
      await giveConsent(server, pending.id, hcp.id);
      await startCare(server, pending.id, hcp.id);
      expect((await get(server, `/fhir/Patient/${pending.id}`, doctor)).statusCode).toBe(404);
    });

    it('a patient not under care is refused whatever the consent, and care ending ends access', async () => {
      const hcp = await hcpWithAccounts(server);
      const doctor = hcp.accounts['medical-practitioner']!.headers;
      const patient = await joinedPatient(server);
      await giveConsent(server, patient.id, hcp.id);
      const obs = await vital(server, patient.id);
      expect((await get(server, `/fhir/Observation/${obs}`, doctor)).statusCode).toBe(404);
      const episode = await startCare(server, patient.id, hcp.id);
      expect((await get(server, `/fhir/Observation/${obs}`, doctor)).statusCode).toBe(200);
      await endCare(server, episode);
      expect((await get(server, `/fhir/Observation/${obs}`, doctor)).statusCode).toBe(404);
    });
  });

  describe('role-based access: every professional group against every sharable type', () => {
    it('reads and uploads follow profiles/rbac-matrix.json', async () => {
      const groups = RULES.professionalGroups.map((g) => g.code);
      const hcp = await hcpWithAccounts(server, groups);
      const patient = await patientOf(server, hcp.id);
      const samples = sampleRecords(patient.id);
      const stored: Record<string, string> = { demographics: `Patient/${patient.id}` };
      for (const [type, record] of Object.entries(samples)) {
        expect(classify(record).type, type).toBe(type);
        const created = await server.create(record);
        stored[type] = `${created.resourceType}/${created.id}`;
      }
      const failures: string[] = [];
      for (const group of groups) {
        const headers = hcp.accounts[group]!.headers;
        for (const type of SHARABLE_TYPE_CODES) {
          const read = await get(server, `/fhir/${stored[type]}`, headers);
          const expected = RBAC.mayRead(group, type) ? 200 : 404;
          if (read.statusCode !== expected) failures.push(`${group} read ${type}: ${read.statusCode} (expected ${expected})`);
          // Demographics change only through the participation operations.
          if (type === 'demographics') continue;
          const record = samples[type];
          const upload = await server.request({ method: 'POST', url: `/fhir/${String(record.resourceType)}`, headers: { ...FHIR_JSON, ...headers }, payload: record });
          const allowed = RBAC.mayUpload(group, type) ? 201 : 403;
          if (upload.statusCode !== allowed) failures.push(`${group} upload ${type}: ${upload.statusCode} (expected ${allowed})`);
        }
        // A search of one type returns exactly the records of readable sharable types.
        const observations = await get(server, `/fhir/Observation?subject=Patient/${patient.id}&_count=100`, headers);
        const visible = ids(observations).filter((id) => Object.values(stored).includes(id));
        const expectedVisible = (['lab-radiology', 'other-investigations', 'observations-lifestyle'] as const).filter((t) => RBAC.mayRead(group, t)).map((t) => stored[t]);
        if (JSON.stringify(visible.sort()) !== JSON.stringify(expectedVisible.sort())) failures.push(`${group} Observation search: ${visible.join(',')}`);
      }
      expect(failures).toEqual([]);
    });

    it('uploads outside the sharable scope are refused with the reason', async () => {
      const hcp = await hcpWithAccounts(server);
      const patient = await patientOf(server, hcp.id);
      const coverage = { resourceType: 'Coverage', status: 'active', beneficiary: { reference: `Patient/${patient.id}` }, payor: [{ reference: `Patient/${patient.id}` }] };
      const res = await server.request({ method: 'POST', url: '/fhir/Coverage', headers: { ...FHIR_JSON, ...hcp.accounts['medical-practitioner']!.headers }, payload: coverage });
      expect(res.statusCode, res.body).toBe(422);
      expect(res.json().issue[0].diagnostics).toMatch(/sharable scope/);
    });
  });

  describe('allergy download', () => {
    it("an HCP with consent downloads the patient's allergies and adverse reactions as a searchset its own system can import", async () => {
      const [a, b] = [await hcpWithAccounts(server), await hcpWithAccounts(server)];
      const patient = await patientOf(server, a.id);
      await startCare(server, patient.id, b.id);
      const allergy = await server.create(sampleRecords(patient.id).allergies);
      const reaction = await server.create({ resourceType: 'AdverseEvent', actuality: 'actual', subject: { reference: `Patient/${patient.id}` }, event: { text: 'Rash after amoxicillin' } });
      const download = await get(server, `/fhir/AllergyIntolerance?patient=${patient.id}&_revinclude=AdverseEvent:subject`, a.accounts['medical-practitioner']!.headers);
      expect(download.statusCode).toBe(200);
      const bundle = download.json();
      expect(bundle.resourceType).toBe('Bundle');
      expect(bundle.type).toBe('searchset');
      expect(ids(download)).toEqual([`AllergyIntolerance/${allergy.id}`]);
      const events = await get(server, `/fhir/AdverseEvent?subject=Patient/${patient.id}`, a.accounts['medical-practitioner']!.headers);
      expect(ids(events)).toEqual([`AdverseEvent/${reaction.id}`]);
      expect(bundle.entry[0].fullUrl).toMatch(/AllergyIntolerance\//);
      // Without consent, nothing.
      expect((await get(server, `/fhir/AllergyIntolerance?patient=${patient.id}`, b.accounts['medical-practitioner']!.headers)).json().total).toBe(0);
    });
  });

  describe('restricted control', () => {
    it('restricted records are hidden until the HCProf has a grant (reason and the patient\'s additional consent); HA sees them', async () => {
      const hcp = await hcpWithAccounts(server);
      const doctor = hcp.accounts['medical-practitioner']!;
      const patient = await patientOf(server, hcp.id);
      const open = await vital(server, patient.id);
      const restricted = await vital(server, patient.id, { meta: RESTRICTED });
      expect((await get(server, `/fhir/Observation/${restricted}`, doctor.headers)).statusCode).toBe(404);
      const before = await get(server, `/fhir/Observation?subject=Patient/${patient.id}`, doctor.headers);
      expect(ids(before)).toEqual([`Observation/${open}`]);
      expect(before.json().total).toBe(1);

      await server.create(restrictedGrant(patient.id, doctor.roleId, 'Reviewing psychiatric history before prescribing') as unknown as Record<string, unknown>);
      expect((await get(server, `/fhir/Observation/${restricted}`, doctor.headers)).statusCode).toBe(200);
      expect((await get(server, `/fhir/Observation?subject=Patient/${patient.id}`, doctor.headers)).json().total).toBe(2);
      // The grant is the account's own: a colleague at the same HCP still needs one.
      const colleague = (await accountsAt(server, hcp.id, ['medical-practitioner']))['medical-practitioner']!;
      expect((await get(server, `/fhir/Observation/${restricted}`, colleague.headers)).statusCode).toBe(404);

      const ha = (await accountsAt(server, 'ha', ['medical-practitioner']))['medical-practitioner']!;
      await startCare(server, patient.id, 'ha');
      expect((await get(server, `/fhir/Observation/${restricted}`, ha.headers)).statusCode).toBe(200);
    });

    it("a search naming patients hides their restricted records, whatever the grants for other patients; pages and totals agree", async () => {
      const hcp = await hcpWithAccounts(server);
      const doctor = hcp.accounts['medical-practitioner']!;
      const [x, y] = [await patientOf(server, hcp.id), await patientOf(server, hcp.id)];
      const open = { x: [await vital(server, x.id), await vital(server, x.id), await vital(server, x.id)], y: [await vital(server, y.id)] };
      const hidden = { x: await vital(server, x.id, { meta: RESTRICTED }), y: await vital(server, y.id, { meta: RESTRICTED }) };
      const searches = (patients: string) => [`/fhir/Observation?patient=${patients}`, `/fhir/Observation?subject=Patient/${patients.split(',')[0]}`, `/fhir/Observation?patient=${patients}&_count=2`, `/fhir/Observation?patient=${patients}&_sort=-date`, `/fhir/Observation?patient=${patients}&_summary=count`];
      const seenBy = async (url: string) => {
        const found: string[] = [];
        let next: string | undefined = url;
        let total: number | undefined;
        while (next) {
          const page = await get(server, next, doctor.headers);
          expect(page.statusCode, next).toBe(200);
          total ??= page.json().total;
          found.push(...ids(page));
          next = (page.json().link as { relation: string; url: string }[]).find((l) => l.relation === 'next')?.url.replace('http://fhir.test', '');
        }
        return { found, total };
      };
      const expectSeen = async (url: string, expected: string[]) => {
        const { found, total } = await seenBy(url);
        expect(total, url).toBe(expected.length);
        if (!url.includes('_summary=count')) expect(found.sort(), url).toEqual(expected.map((id) => `Observation/${id}`).sort());
      };
      for (const url of searches(x.id)) await expectSeen(url, open.x);
      for (const url of searches(`${x.id},${y.id}`).filter((u) => u.includes('patient='))) await expectSeen(url, [...open.x, ...open.y]);

      // A grant for y shows y's restricted record, never x's.
      await server.create(restrictedGrant(y.id, doctor.roleId, 'Reviewing medication history') as unknown as Record<string, unknown>);
      for (const url of searches(x.id)) await expectSeen(url, open.x);
      for (const url of searches(`${x.id},${y.id}`).filter((u) => u.includes('patient='))) await expectSeen(url, [...open.x, ...open.y, hidden.y]);
      await expectSeen(`/fhir/Observation?patient=${y.id}`, [...open.y, hidden.y]);
      expect(hidden.x).toBeDefined();
    });
  });

  describe('hidden records never leak', () => {
    async function leakTerritory() {
      const hcp = await hcpWithAccounts(server);
      const doctor = hcp.accounts['medical-practitioner']!.headers;
      const mine = await patientOf(server, hcp.id);
      const other = await joinedPatient(server);
      const secret = `secret-${Math.random().toString(36).slice(2)}`;
      const hidden = await vital(server, other.id, { code: { coding: [{ system: 'urn:test', code: secret }] }, identifier: [{ system: 'urn:test', value: secret }] });
      const restricted = await vital(server, mine.id, { meta: RESTRICTED, code: { coding: [{ system: 'urn:test', code: `${secret}-r` }] } });
      const visible = await vital(server, mine.id, { derivedFrom: [{ reference: `Observation/${hidden}` }, { reference: `Observation/${restricted}` }], performer: [{ reference: `Patient/${mine.id}` }] });
      for (let i = 0; i < 4; i++) await vital(server, mine.id);
      return { hcp, doctor, mine, other, secret, hidden, restricted, visible };
    }

    it('through _include, _revinclude, chains and _has', async () => {
      const t = await leakTerritory();
      const include = await get(server, `/fhir/Observation?_id=${t.visible}&_include=Observation:derived-from`, t.doctor);
      expect(ids(include)).toEqual([`Observation/${t.visible}`]);
      const operatorInclude = await server.request({ method: 'GET', url: `/fhir/Observation?_id=${t.visible}&_include=Observation:derived-from` });
      expect(ids(operatorInclude)).toHaveLength(3);

      const revinclude = await get(server, `/fhir/Patient?_id=${t.mine.id},${t.other.id}&_revinclude=Observation:subject`, t.doctor);
      expect(ids(revinclude)).not.toContain(`Observation/${t.restricted}`);
      expect(ids(revinclude)).not.toContain(`Patient/${t.other.id}`);
      expect(ids(revinclude)).toContain(`Observation/${t.visible}`);

      for (const url of [`/fhir/Observation?derived-from:Observation.code=urn:test|${t.secret}`, `/fhir/Observation?derived-from:Observation.code=urn:test|${t.secret}-r`, `/fhir/Patient?_has:Observation:subject:code=urn:test|${t.secret}-r`, `/fhir/Patient?_has:Observation:subject:code=urn:test|${t.secret}`]) {
        const res = await get(server, url, t.doctor);
        expect(res.statusCode, url).toBe(200);
        expect(res.json().total, url).toBe(0);
        expect((await server.request({ method: 'GET', url })).json().total, `operator: ${url}`).toBe(1);
      }

      // _list: a List the doctor may not see holds nothing for it, and a List holds only what it may see.
      const listOf = async (patient: string, item: string) =>
        (await server.create({ resourceType: 'List', status: 'current', mode: 'working', subject: { reference: `Patient/${patient}` }, entry: [{ item: { reference: `Observation/${item}` } }] })).id;
      for (const url of [`/fhir/Observation?_list=${await listOf(t.other.id, t.visible)}`, `/fhir/Observation?_list=${await listOf(t.mine.id, t.hidden)}`]) {
        const res = await get(server, url, t.doctor);
        expect(res.statusCode, url).toBe(200);
        expect(res.json().total, url).toBe(0);
        expect((await server.request({ method: 'GET', url })).json().total, `operator: ${url}`).toBe(1);
      }
    });

    it('through history, _total, _summary=count, paging, compartment and system search', async () => {
      const t = await leakTerritory();
      expect((await get(server, `/fhir/Observation/${t.hidden}/_history`, t.doctor)).statusCode).toBe(404);
      expect((await get(server, `/fhir/Observation/${t.hidden}/_history/1`, t.doctor)).statusCode).toBe(404);
      expect((await get(server, `/fhir/Observation/${t.visible}/_history`, t.doctor)).statusCode).toBe(200);
      expect((await get(server, '/fhir/Observation/_history', t.doctor)).statusCode).toBe(403);
      expect((await get(server, '/fhir/_history', t.doctor)).statusCode).toBe(403);

      const all = await get(server, '/fhir/Observation?_total=accurate', t.doctor);
      expect(all.json().total).toBe(5);
      expect((await get(server, '/fhir/Observation?_summary=count', t.doctor)).json().total).toBe(5);
      // Pages are full and add up to the total.
      const seen: string[] = [];
      let url: string | undefined = '/fhir/Observation?_count=2';
      while (url) {
        const page = await get(server, url, t.doctor);
        const entries = ids(page);
        if (page.json().link.some((l: { relation: string }) => l.relation === 'next')) expect(entries).toHaveLength(2);
        seen.push(...entries);
        const next = (page.json().link as { relation: string; url: string }[]).find((l) => l.relation === 'next')?.url;
        url = next?.replace('http://fhir.test', '');
      }
      expect(seen).toHaveLength(5);
      expect(seen).not.toContain(`Observation/${t.restricted}`);

      const compartment = await get(server, `/fhir/Patient/${t.other.id}/Observation`, t.doctor);
      expect(compartment.json().total).toBe(0);
      const system = await get(server, '/fhir?_type=Observation,Patient,Condition', t.doctor);
      expect(system.json().total).toBe(6);
      expect(ids(system)).not.toContain(`Patient/${t.other.id}`);
    });

    it('through conditional create, update and delete', async () => {
      const t = await leakTerritory();
      const criteria = `identifier=urn:test|${t.secret}`;
      const body = { ...sampleRecords(t.mine.id)['observations-lifestyle'], identifier: [{ system: 'urn:test', value: t.secret }] };
      const created = await server.request({ method: 'POST', url: '/fhir/Observation', headers: { ...FHIR_JSON, ...t.doctor, 'if-none-exist': criteria }, payload: body });
      expect(created.statusCode, created.body).toBe(201);
      expect(created.json().id).not.toBe(t.hidden);
      const otherSecret = `${t.secret}-x`;
      const hiddenToo = await vital(server, t.other.id, { identifier: [{ system: 'urn:test', value: otherSecret }] });
      const deleted = await server.request({ method: 'DELETE', url: `/fhir/Observation?identifier=urn:test|${otherSecret}`, headers: t.doctor });
      expect(deleted.statusCode).toBe(204);
      expect((await server.request({ method: 'GET', url: `/fhir/Observation/${hiddenToo}` })).statusCode).toBe(200);
      const updated = await server.request({ method: 'PUT', url: `/fhir/Observation?identifier=urn:test|${otherSecret}`, headers: { ...FHIR_JSON, ...t.doctor }, payload: { ...body, identifier: [{ system: 'urn:test', value: otherSecret }] } });
      expect(updated.statusCode, updated.body).toBe(201);
      expect(updated.json().id).not.toBe(hiddenToo);
    });
  });

  describe('two-way sharing: who may amend what', () => {
    it("an HCP amends and deletes only the records it contributed; every record names its contributor", async () => {
      const [a, b] = [await hcpWithAccounts(server), await hcpWithAccounts(server)];
      const patient = await patientOf(server, a.id);
      await giveConsent(server, patient.id, b.id);
      await startCare(server, patient.id, b.id);
      const atA = a.accounts['medical-practitioner']!.headers;
      const atB = b.accounts['medical-practitioner']!.headers;
      const created = await server.request({ method: 'POST', url: '/fhir/Observation', headers: { ...FHIR_JSON, ...atA }, payload: { ...sampleRecords(patient.id)['observations-lifestyle'], meta: { source: 'Organization/someone-else' } } });
      expect(created.statusCode, created.body).toBe(201);
      const obs = created.json();
      expect(obs.meta.source).toBe(`Organization/${a.id}`);
      expect((await get(server, `/fhir/Observation?_source=Organization/${a.id}`, atB)).json().total).toBe(1);

      const put = await server.request({ method: 'PUT', url: `/fhir/Observation/${obs.id}`, headers: { ...FHIR_JSON, ...atB }, payload: { ...obs, status: 'amended' } });
      expect(put.statusCode).toBe(403);
      expect(put.json().issue[0].diagnostics).toMatch(/contributed by another healthcare provider/);
      const patch = await server.request({ method: 'PATCH', url: `/fhir/Observation/${obs.id}`, headers: { ...atB, 'content-type': 'application/json-patch+json' }, payload: [{ op: 'replace', path: '/status', value: 'amended' }] });
      expect(patch.statusCode).toBe(403);
      expect((await server.request({ method: 'DELETE', url: `/fhir/Observation/${obs.id}`, headers: atB })).statusCode).toBe(403);

      const amended = await server.request({ method: 'PUT', url: `/fhir/Observation/${obs.id}`, headers: { ...FHIR_JSON, ...atA }, payload: { ...obs, status: 'amended' } });
      expect(amended.statusCode, amended.body).toBe(200);
      expect(amended.json().meta.source).toBe(`Organization/${a.id}`);
      // A record from a backend feed (no contributing HCP) is not any account's to amend.
      const feed = await vital(server, patient.id);
      const current = (await get(server, `/fhir/Observation/${feed}`, atA)).json();
      expect((await server.request({ method: 'PUT', url: `/fhir/Observation/${feed}`, headers: { ...FHIR_JSON, ...atA }, payload: { ...current, status: 'amended' } })).statusCode).toBe(403);
      expect((await server.request({ method: 'DELETE', url: `/fhir/Observation/${obs.id}`, headers: atA })).statusCode).toBe(204);
    });

    it('uploads for a patient the HCP may not reach are refused alike whether or not the patient exists', async () => {
      const hcp = await hcpWithAccounts(server);
      const doctor = hcp.accounts['medical-practitioner']!.headers;
      const stranger = await joinedPatient(server);
      const answers = [];
      for (const id of [stranger.id, 'no-such-patient']) {
        const res = await server.request({ method: 'POST', url: '/fhir/Observation', headers: { ...FHIR_JSON, ...doctor }, payload: sampleRecords(id)['observations-lifestyle'] });
        answers.push([res.statusCode, res.json().issue[0].diagnostics.replace(id, 'ID')]);
      }
      expect(answers[0]).toEqual(answers[1]);
      expect(answers[0]![0]).toBe(403);
    });
  });
});
