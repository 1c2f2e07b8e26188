import { readFileSync } from 'node:fs';
import type { LightMyRequestResponse } from 'fastify';
import { beforeAll, describe, expect, it } from 'vitest';
import { classify } from '../../src/access/classification.js';
import type { AccessEvent } from '../../src/access/events.js';
import { RBAC } from '../../src/access/rbac.js';
import { definitionsPath } from '../../src/fhir/definitions.js';
import { hcpWithAccounts, patientOf, restrictedGrant, startCare, joinedPatient, type Hcp, type JoinedPatient } from '../access/territory.js';
import { clerkAt } from '../participation/access-fixtures.js';
import { as, registrationOffice, systemClient, type Headers } from '../participation/fixtures.js';
import { describeEachStore } from '../store/stores.js';
import { FHIR_JSON, outcomeOf, useServer, type TestServer } from './harness.js';

/**
 * Patient/{id}/$everything on one Synthea patient's records, checked against the compartment
 * worked out here from the stored resources themselves (every resource that references the
 * patient, and the patient), for a backend client and under HCProf accounts' access rules.
 */

type Json = Record<string, any> & { resourceType: string; id: string };
const SYNTHEA = new URL('../../../shared/data/synthea-10-patients/', import.meta.url);
const CLINICAL_TYPES = ['AllergyIntolerance', 'Condition', 'Device', 'DocumentReference', 'Encounter', 'Immunization', 'MedicationRequest', 'Procedure'];

const lines = (type: string) => readFileSync(new URL(`${type}.000.ndjson`, SYNTHEA), 'utf8').trim().split('\n');
const patientRef = (line: string) => /"Patient\/([0-9a-f-]{36})"/.exec(line)?.[1];

/** The Synthea patient with the fewest records among those with records of at least seven types (a small but varied record). */
function chooseSyntheaPatient(): string {
  const counts = new Map<string, { records: number; types: Set<string> }>();
  for (const type of CLINICAL_TYPES) {
    for (const line of lines(type)) {
      const ref = patientRef(line);
      if (!ref) continue;
      const c = counts.get(ref) ?? { records: 0, types: new Set() };
      c.records++;
      c.types.add(type);
      counts.set(ref, c);
    }
  }
  return [...counts].filter(([, c]) => c.types.size >= 7).sort(([, a], [, b]) => a.records - b.records)[0]![0];
}

/** That patient's records, rewritten to name our registered patient. */
function syntheaRecords(syntheaId: string, patientId: string): Json[] {
  const records: Json[] = [];
  for (const type of CLINICAL_TYPES) {
    for (const line of lines(type)) {
      if (patientRef(line) !== syntheaId) continue;
      const resource = JSON.parse(line.replaceAll(`Patient/${syntheaId}`, `Patient/${patientId}`)) as Json;
      delete resource.meta;
      records.push(resource);
    }
  }
  return records;
}

const keyOf = (r: { resourceType: string; id: string }) => `${r.resourceType}/${r.id}`;

/** Every stored resource, read through plain system search. */
async function everyResource(server: TestServer): Promise<Json[]> {
  const all: Json[] = [];
  let url: string | undefined = '/fhir?_count=1000';
  while (url) {
    const res = await server.request({ method: 'GET', url });
    expect(res.statusCode, res.body).toBe(200);
    all.push(...((res.json().entry ?? []) as { resource: Json }[]).map((e) => e.resource));
    url = (res.json().link as { relation: string; url: string }[]).find((l) => l.relation === 'next')?.url.replace('http://fhir.test', '');
  }
  return all;
}

/** The types the published R4 CompartmentDefinition puts in the Patient compartment (Device, for one, is not). */
const compartmentTypes = new Set(
  (JSON.parse(readFileSync(definitionsPath('compartmentdefinition-patient.json'), 'utf8')) as { resource: { code: string; param?: string[] }[] }).resource
    .filter((r) => r.param?.length)
    .map((r) => r.code),
);

/** The patient's compartment as the data says: the patient, and the resources of compartment types that reference them. */
function compartmentOf(all: Json[], patientId: string): Json[] {
  const pattern = new RegExp(`"reference":"(?:[^"]*/)?Patient/${patientId}"`);
  return all.filter((r) => (r.resourceType === 'Patient' && r.id === patientId) || (compartmentTypes.has(r.resourceType) && pattern.test(JSON.stringify(r))));
}

interface Pages {
  /** The matches, in order. */
  keys: string[];
  /** Referenced resources outside the compartment, per page. */
  included: string[][];
  totals: number[];
  pages: number;
  outcomes: Json[];
}

/** Follows next links from the first page to the last. */
async function allPages(server: TestServer, firstUrl: string, headers: Headers = {}, init?: { method: 'POST'; payload: unknown }): Promise<Pages> {
  const result: Pages = { keys: [], included: [], totals: [], pages: 0, outcomes: [] };
  let res: LightMyRequestResponse = init
    ? await server.request({ method: 'POST', url: firstUrl, headers: { ...FHIR_JSON, ...headers }, payload: init.payload as Record<string, unknown> })
    : await server.request({ method: 'GET', url: firstUrl, headers });
  for (;;) {
    expect(res.statusCode, res.body).toBe(200);
    const bundle = res.json();
    expect(bundle.type).toBe('searchset');
    result.pages++;
    result.totals.push(bundle.total);
    const included: string[] = [];
    for (const e of bundle.entry ?? []) {
      if (e.search.mode === 'outcome') result.outcomes.push(e.resource);
      else if (e.search.mode === 'include') included.push(keyOf(e.resource));
      else result.keys.push(keyOf(e.resource));
    }
    result.included.push(included);
    const next = (bundle.link as { relation: string; url: string }[]).find((l) => l.relation === 'next');
    if (!next) return result;
    res = await server.request({ method: 'GET', url: next.url.replace('http://fhir.test', ''), headers });
  }
}

const sorted = (keys: Iterable<string>) => [...keys].sort();

/** FerretDB (CI's MongoDB-wire server) scans a collection per index lookup: a page takes seconds there. */
const SLOW = 240_000;

describeEachStore('Patient/$everything', (open) => {
  const events: AccessEvent[] = [];
  const server = useServer(open, { recorders: [{ record: async (e) => void events.push(e) }] });
  let hcp: Hcp;
  let patient: JoinedPatient;
  let compartment: Json[];
  let since: string;
  let updatedAfter: string[];

  beforeAll(async () => {
    hcp = await hcpWithAccounts(server, ['medical-practitioner', 'radiographer']);
    patient = await patientOf(server, hcp.id);
    const records = syntheaRecords(chooseSyntheaPatient(), patient.id);
    for (const r of records) {
      const res = await server.request({ method: 'PUT', url: `/fhir/${r.resourceType}/${r.id}`, headers: FHIR_JSON, payload: r });
      expect(res.statusCode, res.body).toBe(201);
    }
    // Another patient's records must stay out.
    const other = await joinedPatient(server);
    await server.create({ resourceType: 'Condition', subject: { reference: `Patient/${other.id}` }, code: { text: 'Not this patient' } });
    await new Promise((r) => setTimeout(r, 20));
    since = new Date().toISOString();
    await new Promise((r) => setTimeout(r, 5));
    const touched = [records[0]!, records[records.length - 1]!];
    for (const r of touched) {
      const res = await server.request({ method: 'PUT', url: `/fhir/${r.resourceType}/${r.id}`, headers: FHIR_JSON, payload: { ...r, language: 'en' } });
      expect(res.statusCode, res.body).toBe(200);
    }
    compartment = compartmentOf(await everyResource(server), patient.id);
    updatedAfter = compartment.filter((r) => r.meta.lastUpdated >= since).map(keyOf);
    expect(compartment.length).toBeGreaterThan(records.length);
  }, 120_000);

  it('returns exactly the compartment, page by page, with no duplicates or gaps and an exact total', async () => {
    const result = await allPages(server, `/fhir/Patient/${patient.id}/$everything?_count=17`);
    expect(result.pages).toBe(Math.ceil(compartment.length / 17));
    expect(new Set(result.keys).size).toBe(result.keys.length);
    const expected = compartment.map(keyOf);
    expect({ missing: expected.filter((k) => !result.keys.includes(k)), extra: result.keys.filter((k) => !expected.includes(k)) }).toEqual({ missing: [], extra: [] });
    expect(sorted(result.keys)).toEqual(sorted(expected));
    expect(new Set(result.totals)).toEqual(new Set([compartment.length]));
    expect(new Set(result.keys.map((k) => k.split('/')[0]))).toEqual(new Set(['Patient', 'Consent', 'EpisodeOfCare', 'Condition', 'DocumentReference', 'Encounter', 'Immunization', 'MedicationRequest', 'Procedure']));
  }, SLOW);

  it('brings the resources outside the compartment that a page references, with that page', async () => {
    const practitioner = await server.create({ resourceType: 'Practitioner', name: [{ family: 'Lee' }] });
    const location = await server.create({ resourceType: 'Location', name: 'Ward 7' });
    const medication = await server.create({ resourceType: 'Medication', code: { text: 'Metformin 500 mg' } });
    const encounter = await server.create({
      resourceType: 'Encounter', status: 'finished', class: { system: 'http://terminology.hl7.org/CodeSystem/v3-ActCode', code: 'AMB' },
      subject: { reference: `Patient/${patient.id}` }, participant: [{ individual: { reference: `Practitioner/${practitioner.id as string}` } }],
      location: [{ location: { reference: `http://fhir.test/fhir/Location/${location.id as string}` } }],
    });
    const prescription = await server.create({
      resourceType: 'MedicationRequest', status: 'active', intent: 'order', subject: { reference: `Patient/${patient.id}` },
      medicationReference: { reference: `Medication/${medication.id as string}` }, encounter: { reference: `Encounter/${encounter.id as string}` },
    });
    const referenced = [`Practitioner/${practitioner.id as string}`, `Location/${location.id as string}`, `Medication/${medication.id as string}`];
    for (const headers of [{}, hcp.accounts['medical-practitioner']!.headers]) {
      const page = await server.request({ method: 'GET', url: `/fhir/Patient/${patient.id}/$everything?_type=Encounter,MedicationRequest&_since=${encodeURIComponent(String(encounter.meta.lastUpdated))}`, headers });
      const entries = page.json().entry as { search: { mode: string }; resource: Json }[];
      expect(entries.filter((e) => e.search.mode === 'match').map((e) => keyOf(e.resource)).sort()).toEqual([`Encounter/${encounter.id as string}`, `MedicationRequest/${prescription.id as string}`].sort());
      // The Encounter the prescription references is a match already, not an include.
      expect(entries.filter((e) => e.search.mode === 'include').map((e) => keyOf(e.resource)).sort()).toEqual([...referenced].sort());
      expect(page.json().total).toBe(2);
    }
    for (const key of [`Encounter/${encounter.id as string}`, `MedicationRequest/${prescription.id as string}`]) {
      expect((await server.request({ method: 'DELETE', url: `/fhir/${key}` })).statusCode).toBe(204);
    }
  }, SLOW);

  it('keeps to the _type list, reporting types outside the compartment', async () => {
    const result = await allPages(server, `/fhir/Patient/${patient.id}/$everything?_type=Condition,Immunization,Practitioner&_count=10`);
    const expected = compartment.filter((r) => r.resourceType === 'Condition' || r.resourceType === 'Immunization').map(keyOf);
    expect(expected.length).toBeGreaterThan(3);
    expect(sorted(result.keys)).toEqual(sorted(expected));
    expect(JSON.stringify(result.outcomes)).toMatch(/Practitioner/);
    // Nothing left of the list is an empty answer, and its self link asks the same again (not for every type).
    const outside = (await server.request({ method: 'GET', url: `/fhir/Patient/${patient.id}/$everything?_type=Practitioner` })).json();
    expect((outside.entry ?? []).filter((e: { search: { mode: string } }) => e.search.mode !== 'outcome')).toEqual([]);
    const self = new URL(outside.link.find((l: { relation: string }) => l.relation === 'self').url as string);
    expect(self.searchParams.get('_type')).toBe('Practitioner');
  }, SLOW);

  it('keeps to resources updated since _since', async () => {
    const result = await allPages(server, `/fhir/Patient/${patient.id}/$everything?_since=${encodeURIComponent(since)}`);
    expect(updatedAfter).toHaveLength(2);
    expect(sorted(result.keys)).toEqual(sorted(updatedAfter));
  }, SLOW);

  it('takes its parameters in a POSTed Parameters body too', async () => {
    const parameter = [{ name: '_type', valueString: 'Encounter' }, { name: '_count', valueInteger: 4 }];
    const result = await allPages(server, `/fhir/Patient/${patient.id}/$everything`, {}, { method: 'POST', payload: { resourceType: 'Parameters', parameter } });
    const expected = compartment.filter((r) => r.resourceType === 'Encounter').map(keyOf);
    expect(result.pages).toBe(Math.ceil(expected.length / 4));
    expect(sorted(result.keys)).toEqual(sorted(expected));
  }, SLOW);

  it('binds page tokens to their query, and pages backwards too', async () => {
    const first = await server.request({ method: 'GET', url: `/fhir/Patient/${patient.id}/$everything?_count=5` });
    const next = (first.json().link as { relation: string; url: string }[]).find((l) => l.relation === 'next')!.url;
    const token = new URL(next).searchParams.get('_page')!;
    for (const url of [`/fhir/Patient/${patient.id}/$everything?_count=6&_page=${token}`, `/fhir/Patient/${patient.id}/$everything?_type=Encounter&_count=5&_page=${token}`, `/fhir/Condition?_count=5&_page=${token}`]) {
      const replay = await server.request({ method: 'GET', url });
      expect(replay.statusCode, url).toBe(400);
      expect(outcomeOf(replay).expressions).toContain('_page');
    }
    const second = await server.request({ method: 'GET', url: next.replace('http://fhir.test', '') });
    const previous = (second.json().link as { relation: string; url: string }[]).find((l) => l.relation === 'previous')!.url;
    const back = await server.request({ method: 'GET', url: previous.replace('http://fhir.test', '') });
    expect(back.json().entry.map((e: { resource: Json }) => keyOf(e.resource))).toEqual(first.json().entry.map((e: { resource: Json }) => keyOf(e.resource)));
  }, SLOW);

  it('reports start and end as unsupported, and refuses them under Prefer: handling=strict', async () => {
    const res = await server.request({ method: 'GET', url: `/fhir/Patient/${patient.id}/$everything?start=2020-01-01&end=2021-01-01&_count=1` });
    expect(res.statusCode).toBe(200);
    const outcome = res.json().entry.find((e: { search: { mode: string } }) => e.search.mode === 'outcome').resource;
    expect(outcome.issue.map((i: { expression: string[] }) => i.expression[0]).sort()).toEqual(['end', 'start']);
    const strict = await server.request({ method: 'GET', url: `/fhir/Patient/${patient.id}/$everything?start=2020-01-01`, headers: { prefer: 'handling=strict' } });
    expect(strict.statusCode).toBe(400);
    expect(outcomeOf(strict).expressions).toEqual(['start']);
  }, SLOW);

  it('answers 404 for an unknown patient and 400 for bad parameters', async () => {
    expect((await server.request({ method: 'GET', url: '/fhir/Patient/no-such-patient/$everything' })).statusCode).toBe(404);
    expect((await server.request({ method: 'GET', url: `/fhir/Patient/${patient.id}/$everything?_type=Nonsense` })).statusCode).toBe(400);
    expect((await server.request({ method: 'GET', url: `/fhir/Patient/${patient.id}/$everything?_since=yesterday` })).statusCode).toBe(400);
    expect((await server.request({ method: 'GET', url: `/fhir/Patient/${patient.id}/$everything?_count=-1` })).statusCode).toBe(400);
  }, SLOW);

  it('is refused (403) to principals limited to some types, and to patients', async () => {
    const refused = [
      await registrationOffice(),
      await as({ kind: 'auditor', staffId: 'privacy-officer' }),
      await systemClient(['system/Observation.read', 'system/Patient.read']),
      patient.headers,
    ];
    for (const headers of refused) {
      const res = await server.request({ method: 'GET', url: `/fhir/Patient/${patient.id}/$everything`, headers });
      expect(res.statusCode, res.body).toBe(403);
      expect(outcomeOf(res).codes).toEqual(['forbidden']);
    }
    expect((await server.request({ method: 'GET', url: `/fhir/Patient/${patient.id}/$everything`, headers: await systemClient(['system/*.read']) })).statusCode).toBe(200);
  }, SLOW);

  describe('under an HCProf account', () => {
    /** What an account of `group` may see of the compartment, by the published rules: sharable types its group reads, nothing restricted. */
    const visibleTo = (group: string, resources: Json[]) =>
      resources.filter((r) => {
        const type = classify(r).type;
        const restricted = (r.meta?.security ?? []).some((c: { code: string }) => c.code === 'R' || c.code === 'V');
        return type !== undefined && RBAC.mayRead(group, type) && !restricted;
      });

    it('a doctor with consent and care sees every record its group reads, audited against the patient', async () => {
      const doctor = hcp.accounts['medical-practitioner']!;
      events.length = 0;
      const result = await allPages(server, `/fhir/Patient/${patient.id}/$everything?_count=60`, doctor.headers);
      const expected = visibleTo('medical-practitioner', compartment).map(keyOf);
      expect(expected.length).toBeGreaterThan(50);
      expect(sorted(result.keys)).toEqual(sorted(expected));
      expect(new Set(result.totals)).toEqual(new Set([expected.length]));
      const recorded = events.filter((e) => e.operation === 'everything');
      expect(recorded.length).toBe(result.pages);
      for (const e of recorded) expect(e.patients).toEqual([patient.id]);
      expect(new Set(recorded.flatMap((e) => e.dataTypes))).toEqual(new Set(expected.map((k) => classify(compartment.find((r) => keyOf(r) === k)!).type)));
    }, SLOW);

    it('a radiographer sees only the sharable types radiographers read', async () => {
      const radiographer = hcp.accounts['radiographer']!;
      const result = await allPages(server, `/fhir/Patient/${patient.id}/$everything?_count=25`, radiographer.headers);
      const expected = visibleTo('radiographer', compartment).map(keyOf);
      expect(expected.length).toBeLessThan(visibleTo('medical-practitioner', compartment).length);
      expect(result.keys.some((k) => k.startsWith('Encounter/'))).toBe(false);
      expect(sorted(result.keys)).toEqual(sorted(expected));
      expect(result.totals[0]).toBe(expected.length);
    }, SLOW);

    it('an HCP caring for the patient without consent gets 404, as for an unknown patient', async () => {
      const other = await hcpWithAccounts(server);
      await startCare(server, patient.id, other.id);
      const res = await server.request({ method: 'GET', url: `/fhir/Patient/${patient.id}/$everything`, headers: other.accounts['medical-practitioner']!.headers });
      expect(res.statusCode).toBe(404);
      expect(outcomeOf(res).text).toBe(`Patient/${patient.id} is not known`);
    }, SLOW);

    it('a restricted record appears only after the patient granted restricted access', async () => {
      const doctor = hcp.accounts['medical-practitioner']!;
      const restricted = await server.create({
        resourceType: 'Condition',
        meta: { security: [{ system: 'http://terminology.hl7.org/CodeSystem/v3-Confidentiality', code: 'R' }] },
        subject: { reference: `Patient/${patient.id}` },
        code: { text: 'A restricted diagnosis' },
      });
      const url = `/fhir/Patient/${patient.id}/$everything?_type=Condition&_count=100`;
      const before = await allPages(server, url, doctor.headers);
      expect(before.keys).not.toContain(`Condition/${restricted.id as string}`);
      await server.create(restrictedGrant(patient.id, doctor.roleId, 'Emergency care') as unknown as Record<string, unknown>);
      const after = await allPages(server, url, doctor.headers);
      expect(after.keys).toContain(`Condition/${restricted.id as string}`);
      expect(after.totals[0]).toBe(before.totals[0]! + 1);
    }, SLOW);

    it('an account without clinical access is refused (403)', async () => {
      const clerk = await clerkAt(server, hcp.id);
      const res = await server.request({ method: 'GET', url: `/fhir/Patient/${patient.id}/$everything`, headers: clerk.headers });
      expect(res.statusCode, res.body).toBe(403);
      expect(outcomeOf(res).text).toMatch(/not a registered healthcare professional/);
    }, SLOW);
  });
});
