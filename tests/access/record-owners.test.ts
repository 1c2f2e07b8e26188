import type { LightMyRequestResponse } from 'fastify';
import { expect, it } from 'vitest';
import { FHIR_JSON, useServer, type TestServer } from '../http/harness.js';
import type { Headers } from '../participation/fixtures.js';
import { describeEachStore } from '../store/stores.js';
import { sampleRecords } from './samples.js';
import { hcpWithAccounts, patientOf } from './territory.js';

/**
 * Whose record a resource is, as stored with its search entries, decides which HCPs find it:
 * by code (the patient list joined to the code), by count, by _include/_revinclude, and in the
 * compartment; a new version naming another patient moves it, and a record naming two patients
 * is in both records.
 */

const LOINC = 'http://loinc.org';
const RESTRICTED = { security: [{ system: 'http://terminology.hl7.org/CodeSystem/v3-Confidentiality', code: 'R' }] };
const get = (server: TestServer, url: string, headers: Headers) => server.request({ method: 'GET', url, headers });
const ids = (res: LightMyRequestResponse) => ((res.json().entry ?? []) as { resource: { resourceType: string; id: string } }[]).map((e) => `${e.resource.resourceType}/${e.resource.id}`).sort();

describeEachStore('records found by their patients', (open) => {
  const server = useServer(open, { publicProviders: true });

  /** Two HCPs, each reaching one patient; a LOINC code no other test uses. */
  async function twoPractices() {
    const [a, b] = [await hcpWithAccounts(server), await hcpWithAccounts(server)];
    const [pa, pb] = [await patientOf(server, a.id), await patientOf(server, b.id)];
    const code = `owner-${Math.random().toString(36).slice(2, 10)}`;
    const observation = (subject: string, extra: Record<string, unknown> = {}) => ({
      ...sampleRecords(subject)['lab-radiology'],
      code: { coding: [{ system: LOINC, code }] },
      ...extra,
    });
    return {
      code,
      observation,
      doctorA: a.accounts['medical-practitioner']!.headers,
      doctorB: b.accounts['medical-practitioner']!.headers,
      pa: pa.id,
      pb: pb.id,
    };
  }

  it('a code search by an HCP finds, and counts exactly, the records of its patients only', async () => {
    const { code, observation, doctorA, doctorB, pa, pb } = await twoPractices();
    const mine = [await server.create(observation(pa)), await server.create(observation(pa))].map((o) => `Observation/${o.id as string}`);
    await server.create(observation(pa, { meta: RESTRICTED }));
    const theirs = await server.create(observation(pb));
    const byCode = `/fhir/Observation?code=${encodeURIComponent(`${LOINC}|${code}`)}`;
    const seenByA = await get(server, byCode, doctorA);
    expect(ids(seenByA)).toEqual(mine.sort());
    expect(seenByA.json().total).toBe(2);
    expect((await get(server, `${byCode}&_summary=count`, doctorA)).json().total).toBe(2);
    expect(ids(await get(server, byCode, doctorB))).toEqual([`Observation/${theirs.id as string}`]);
    // One a page: the pages are full, and end when the records do.
    const first = await get(server, `${byCode}&_count=1`, doctorA);
    expect(ids(first)).toHaveLength(1);
    const next = (first.json().link as { relation: string; url: string }[]).find((l) => l.relation === 'next')!.url.replace('http://fhir.test', '');
    const second = await get(server, next, doctorA);
    expect([...ids(first), ...ids(second)].sort()).toEqual(mine.sort());
    expect((second.json().link as { relation: string }[]).some((l) => l.relation === 'next')).toBe(false);
  });

  it('a new version naming another patient moves the record from one HCP to the other', async () => {
    const { code, observation, doctorA, doctorB, pa, pb } = await twoPractices();
    const created = await server.create(observation(pa));
    const ref = `Observation/${created.id as string}`;
    const byCode = `/fhir/Observation?code=${encodeURIComponent(`${LOINC}|${code}`)}`;
    expect(ids(await get(server, byCode, doctorA))).toEqual([ref]);
    expect(ids(await get(server, byCode, doctorB))).toEqual([]);
    const moved = await server.request({ method: 'PUT', url: `/fhir/${ref}`, headers: FHIR_JSON, payload: { ...created, subject: { reference: `Patient/${pb}` } } });
    expect(moved.statusCode, moved.body).toBe(200);
    expect(ids(await get(server, byCode, doctorA))).toEqual([]);
    expect((await get(server, `${byCode}&_summary=count`, doctorA)).json().total).toBe(0);
    expect((await get(server, `/fhir/${ref}`, doctorA)).statusCode).toBe(404);
    expect(ids(await get(server, byCode, doctorB))).toEqual([ref]);
    expect(ids(await get(server, `/fhir/Patient/${pb}/Observation?code=${encodeURIComponent(`${LOINC}|${code}`)}`, doctorB))).toEqual([ref]);
    expect(ids(await get(server, `/fhir/Patient?_id=${pb}&_revinclude=Observation:subject`, doctorB))).toContain(ref);
    expect(ids(await get(server, `/fhir/Patient?_id=${pa}&_revinclude=Observation:subject`, doctorA))).toEqual([`Patient/${pa}`]);
  });

  it('a record naming two patients is in both records, and in neither HCP\'s view of a third', async () => {
    const { code, observation, doctorA, doctorB, pa, pb } = await twoPractices();
    const both = await server.create(observation(pa, { performer: [{ reference: `Patient/${pb}` }] }));
    const ref = `Observation/${both.id as string}`;
    const byCode = `/fhir/Observation?code=${encodeURIComponent(`${LOINC}|${code}`)}`;
    expect(ids(await get(server, byCode, doctorA))).toEqual([ref]);
    expect(ids(await get(server, byCode, doctorB))).toEqual([ref]);
    expect((await get(server, `${byCode}&_summary=count`, doctorB)).json().total).toBe(1);
    // Included from the Observation: its subject is A's patient, whom B does not reach.
    expect(ids(await get(server, `${byCode}&_include=Observation:subject`, doctorB))).toEqual([ref]);
    expect(ids(await get(server, `${byCode}&_include=Observation:subject`, doctorA))).toEqual([ref, `Patient/${pa}`].sort());
    // Dropping the second patient takes it out of B's view.
    const single = await server.request({ method: 'PUT', url: `/fhir/${ref}`, headers: FHIR_JSON, payload: { ...both, performer: undefined } });
    expect(single.statusCode, single.body).toBe(200);
    expect(ids(await get(server, byCode, doctorB))).toEqual([]);
    expect(ids(await get(server, byCode, doctorA))).toEqual([ref]);
  });
});
