import type { LightMyRequestResponse } from 'fastify';
import { describe, expect, it } from 'vitest';
import { describeEachStore } from '../store/stores.js';
import { FHIR_JSON, outcomeOf, useServer, type TestServer } from './harness.js';

/** batch and transaction Bundles at POST /fhir. */

const HKID = 'http://www.immd.gov.hk/hkid';
type Entry = Record<string, any>;

const bundle = (type: string, entry: Entry[]) => ({ resourceType: 'Bundle', type, entry });
const post = (server: TestServer, body: unknown, headers: Record<string, string> = {}) =>
  server.request({ method: 'POST', url: '/fhir', headers: { ...FHIR_JSON, ...headers }, payload: body as Record<string, unknown> });
const statuses = (res: LightMyRequestResponse) => (res.json().entry as Entry[]).map((e) => e.response.status as string);
const patient = (value: string, extra: Entry = {}) => ({ resourceType: 'Patient', identifier: [{ system: HKID, value }], ...extra });
const observation = (subject: string, extra: Entry = {}) => ({
  resourceType: 'Observation',
  status: 'final',
  code: { coding: [{ system: 'http://loinc.org', code: '8867-4' }] },
  subject: { reference: subject },
  valueQuantity: { value: 72, unit: '/min', system: 'http://unitsofmeasure.org', code: '/min' },
  ...extra,
});
const jsonPatch = (ops: unknown[]) => ({ resourceType: 'Binary', contentType: 'application/json-patch+json', data: Buffer.from(JSON.stringify(ops)).toString('base64') });
const systemHistory = async (server: TestServer) => {
  const res = await server.request({ method: 'GET', url: '/fhir/_history?_count=1000' });
  expect(res.statusCode).toBe(200);
  return (res.json().entry ?? []) as Entry[];
};

describeEachStore('batch and transaction bundles', (open) => {
  // The audit trail would add an AuditEvent per request to the system history the tests compare.
  const server = useServer(open, { recorders: [] });
  const transactions = () => server.store.atomicWriteMany === true;

  describe('a body that is no batch or transaction Bundle is a 400 with an OperationOutcome', () => {
    const cases: [string, unknown, string][] = [
      ['not a Bundle', { resourceType: 'Patient' }, 'Bundle'],
      ['a collection', bundle('collection', []), 'Bundle.type'],
      ['entries that are not a list', { resourceType: 'Bundle', type: 'batch', entry: { request: { method: 'GET', url: 'Patient' } } }, 'Bundle.entry'],
    ];
    for (const [name, body, expression] of cases) {
      it(name, async () => {
        const res = await post(server, body);
        expect(res.statusCode, res.body).toBe(400);
        expect(outcomeOf(res).expressions).toEqual([expression]);
      });
    }

    it('a body that is not JSON, and an empty one', async () => {
      expect((await server.request({ method: 'POST', url: '/fhir', headers: FHIR_JSON, payload: '{"resourceType":' })).statusCode).toBe(400);
      expect((await server.request({ method: 'POST', url: '/fhir', headers: FHIR_JSON, payload: '[]' })).statusCode).toBe(400);
    });
  });

  describe('a malformed entry is answered on its own in a batch, and fails a transaction as a whole naming it', () => {
    const cases: [string, unknown, string][] = [
      ['an entry that is no object', null, 'Bundle.entry[1]'],
      ['an entry without request', { resource: patient('X') }, 'Bundle.entry[1].request'],
      ['a bad method', { resource: patient('X'), request: { method: 'FETCH', url: 'Patient' } }, 'Bundle.entry[1].request.method'],
      ['a url that is no interaction', { request: { method: 'GET', url: 'Patient/1/2/3/4' } }, 'Bundle.entry[1].request.url'],
      ['an unknown type', { request: { method: 'GET', url: 'Nonsense/1' } }, 'Bundle.entry[1].request.url'],
      ['another server', { request: { method: 'GET', url: 'http://elsewhere.example/fhir/Patient/1' } }, 'Bundle.entry[1].request.url'],
      ['a malformed percent-encoding', { request: { method: 'GET', url: 'Patient/%E0%A4%A' } }, 'Bundle.entry[1].request.url'],
      ['a write without resource', { request: { method: 'PUT', url: 'Patient/1' } }, 'Bundle.entry[1].resource'],
      ['a POST to an id', { resource: patient('X'), request: { method: 'POST', url: 'Patient/1' } }, 'Bundle.entry[1].request.url'],
    ];
    // Known ids, so what was stored is a read away (a search scans whole collections on FerretDB).
    const around = (prefix: string): Entry[] => ['before', 'after'].map((side) => ({ request: { method: 'PUT', url: `Patient/${prefix}-${side}` }, resource: { resourceType: 'Patient', id: `${prefix}-${side}` } }));
    const stored = async (prefix: string) => Promise.all(['before', 'after'].map(async (side) => (await server.request({ method: 'GET', url: `/fhir/Patient/${prefix}-${side}` })).statusCode));

    cases.forEach(([name, malformed, expression], n) => {
      it(`${name}: batch`, async () => {
        const [before, after] = around(`malformed-batch-${n}`);
        const res = await post(server, bundle('batch', [before!, malformed as Entry, after!]));
        expect(res.statusCode, res.body).toBe(200);
        expect(statuses(res)).toEqual(['201 Created', '400 Bad Request', '201 Created']);
        const { outcome } = res.json().entry[1].response;
        expect(outcome.resourceType).toBe('OperationOutcome');
        expect(outcome.issue.map((i: Entry) => i.code)).toEqual(['invalid']);
        expect(outcome.issue[0].expression).toEqual([expression]);
        expect(outcome.issue[0].diagnostics).toMatch(/^Bundle\.entry\[1\]: /);
        expect(await stored(`malformed-batch-${n}`)).toEqual([200, 200]);
      });

      it(`${name}: transaction`, async () => {
        const [before, after] = around(`malformed-tx-${n}`);
        const res = await post(server, bundle('transaction', [before!, malformed as Entry, after!]));
        expect(res.statusCode, res.body).toBe(400);
        expect(outcomeOf(res).codes).toEqual(['invalid']);
        expect(outcomeOf(res).expressions).toEqual([expression]);
        expect(outcomeOf(res).text).toMatch(/^Bundle\.entry\[1\]: /);
        expect(await stored(`malformed-tx-${n}`)).toEqual([404, 404]);
      });
    });
  });

  it('a batch answers each entry on its own: passing and failing entries side by side', async () => {
    const kept = await server.create(patient('BATCH-1'));
    const gone = await server.create(patient('BATCH-2'));
    const res = await post(server, bundle('batch', [
      { request: { method: 'POST', url: 'Patient' }, resource: patient('BATCH-3') },
      { request: { method: 'POST', url: 'Patient' }, resource: { resourceType: 'Patient', birthDate: 'yesterday' } },
      { request: { method: 'GET', url: `Patient/${kept.id}` } },
      { request: { method: 'GET', url: 'Patient/no-such-patient' } },
      { request: { method: 'POST', url: 'Patient', ifNoneExist: `identifier=${HKID}|BATCH-1` }, resource: patient('BATCH-1') },
      { request: { method: 'PATCH', url: `Patient/${kept.id}` }, resource: jsonPatch([{ op: 'add', path: '/active', value: true }]) },
      { request: { method: 'PUT', url: `Patient/${kept.id}`, ifMatch: 'W/"1"' }, resource: { ...patient('BATCH-1'), id: kept.id } },
      { request: { method: 'DELETE', url: `Patient/${gone.id}` } },
      { fullUrl: 'urn:uuid:6f1d4a3e-0000-4000-8000-000000000001', request: { method: 'POST', url: 'Patient' }, resource: patient('BATCH-4') },
      { request: { method: 'POST', url: 'Observation' }, resource: observation('urn:uuid:6f1d4a3e-0000-4000-8000-000000000001') },
      { request: { method: 'GET', url: `Patient?identifier=${HKID}|BATCH-1` } },
      { request: { method: 'HEAD', url: `Patient/${kept.id}` } },
    ]));
    expect(res.statusCode, res.body).toBe(200);
    const answer = res.json();
    expect(answer.type).toBe('batch-response');
    expect(statuses(res)).toEqual(['201 Created', '400 Bad Request', '200 OK', '404 Not Found', '200 OK', '200 OK', '412 Precondition Failed', '204 No Content', '201 Created', '400 Bad Request', '200 OK', '200 OK']);
    const [created, invalid, read, missing, matched, patched, stale, deleted, , crossReference, search, head] = answer.entry as any[];
    expect(created.response.location).toMatch(/^Patient\/[^/]+\/_history\/1$/);
    expect(created.response.etag).toBe('W/"1"');
    expect(created.response.lastModified).toMatch(/^\d{4}-\d\d-\d\dT/);
    expect(invalid.response.outcome.resourceType).toBe('OperationOutcome');
    expect(read.resource.id).toBe(kept.id);
    expect(missing.response.outcome.issue[0].code).toBe('not-found');
    expect(matched.response.location).toBe(`Patient/${kept.id}/_history/1`);
    expect(patched.response.etag).toBe('W/"2"');
    expect(stale.response.outcome.issue[0].code).toBe('conflict');
    expect(deleted.response.etag).toBe('W/"2"');
    expect(crossReference.response.outcome.issue[0].diagnostics).toMatch(/may not reference each other/);
    expect(search.resource.type).toBe('searchset');
    expect(search.resource.total).toBe(1);
    expect(head.resource).toBeUndefined();
    expect(head.response.etag).toBe('W/"2"');
    expect((await server.request({ method: 'GET', url: `/fhir/Patient/${gone.id}` })).statusCode).toBe(410);
    expect((await server.request({ method: 'GET', url: `/fhir/Patient?identifier=${HKID}|BATCH-3` })).json().total).toBe(1);
  });

  it('Prefer: return=representation puts the written resources in the answer', async () => {
    const res = await post(server, bundle('batch', [{ request: { method: 'POST', url: 'Patient' }, resource: patient('REPR-1') }]), { prefer: 'return=representation' });
    const [entry] = res.json().entry as any[];
    expect(entry.resource.identifier[0].value).toBe('REPR-1');
    expect(entry.resource.meta.versionId).toBe('1');
    expect(entry.fullUrl).toBe(`http://fhir.test/fhir/Patient/${entry.resource.id}`);
  });

  describe('transactions', () => {
    it('are refused with an OperationOutcome where the store cannot apply them all or none, storing nothing', async ({ skip }) => {
      if (transactions()) skip();
      const before = await systemHistory(server);
      const res = await post(server, bundle('transaction', [{ request: { method: 'POST', url: 'Patient' }, resource: patient('REFUSED-1') }]));
      expect(res.statusCode).toBe(501);
      expect(outcomeOf(res).codes).toEqual(['not-supported']);
      expect(outcomeOf(res).text).toMatch(/refuses transactions/);
      expect(await systemHistory(server)).toEqual(before);
      const cs = (await server.request({ method: 'GET', url: '/fhir/metadata' })).json();
      expect(cs.rest[0].interaction.map((i: Entry) => i.code)).not.toContain('transaction');
    });

    it('resolve urn:uuid and urn:oid placeholders and conditional references to the new and matching ids', async ({ skip }) => {
      if (!transactions()) skip();
      const existing = await server.create(patient('TX-EXISTING'));
      const res = await post(server, bundle('transaction', [
        { fullUrl: 'urn:uuid:a0f4c1de-1111-4111-8111-000000000001', request: { method: 'POST', url: 'Observation' }, resource: observation('urn:uuid:a0f4c1de-1111-4111-8111-000000000002', { hasMember: [{ reference: 'urn:oid:1.2.3.4.5' }] }) },
        { fullUrl: 'urn:uuid:a0f4c1de-1111-4111-8111-000000000002', request: { method: 'POST', url: 'Patient' }, resource: patient('TX-NEW', { link: [{ type: 'seealso', other: { reference: `Patient?identifier=${HKID}|TX-EXISTING` } }] }) },
        { fullUrl: 'urn:oid:1.2.3.4.5', request: { method: 'POST', url: 'Observation' }, resource: observation(`Patient?identifier=${encodeURIComponent(`${HKID}|TX-EXISTING`)}`) },
        { fullUrl: 'urn:uuid:a0f4c1de-1111-4111-8111-000000000003', request: { method: 'PUT', url: 'Patient/tx-put-1' }, resource: patient('TX-PUT', { id: 'tx-put-1' }) },
        { request: { method: 'POST', url: 'Encounter' }, resource: { resourceType: 'Encounter', status: 'finished', class: { code: 'AMB' }, subject: { reference: 'urn:uuid:a0f4c1de-1111-4111-8111-000000000003' } } },
      ]));
      expect(res.statusCode, res.body).toBe(200);
      expect(res.json().type).toBe('transaction-response');
      expect(statuses(res)).toEqual(['201 Created', '201 Created', '201 Created', '201 Created', '201 Created']);
      const [obs, newPatient, oidObs, , encounter] = (res.json().entry as Entry[]).map((e) => e.response.location.split('/_history')[0] as string);
      const read = async (ref: string) => (await server.request({ method: 'GET', url: `/fhir/${ref}` })).json();
      expect((await read(obs!)).subject.reference).toBe(newPatient);
      expect((await read(obs!)).hasMember[0].reference).toBe(oidObs);
      expect((await read(newPatient!)).link[0].other.reference).toBe(`Patient/${existing.id}`);
      expect((await read(oidObs!)).subject.reference).toBe(`Patient/${existing.id}`);
      expect((await read(encounter!)).subject.reference).toBe('Patient/tx-put-1');
      // The stored body carries the version and time the store committed, as the answer says.
      for (const entry of res.json().entry as Entry[]) {
        const stored = await read(entry.response.location.split('/_history')[0]);
        expect(stored.meta).toMatchObject({ versionId: '1', lastUpdated: entry.response.lastModified });
      }
    });

    it('replace placeholders in uri and url elements and narrative links too, not in canonical, oid or string elements', async ({ skip }) => {
      if (!transactions()) skip();
      const binary = 'urn:uuid:b1a2c3d4-2222-4222-8222-000000000001';
      const subject = 'urn:oid:1.2.3.4.999';
      const stranger = 'urn:uuid:b1a2c3d4-2222-4222-8222-0000000000ff';
      const codeSystem = 'urn:oid:1.3.6.1.4.1.19376.1.2.3';
      const div = `<div xmlns="http://www.w3.org/1999/xhtml"><a href="${binary}">report</a><img src='${binary}' alt="${binary}"/><a href="${stranger}">other</a><span title="${binary}">${binary}</span></div>`;
      const res = await post(server, bundle('transaction', [
        { request: { method: 'POST', url: 'DocumentReference' }, resource: {
          resourceType: 'DocumentReference',
          status: 'current',
          text: { status: 'generated', div },
          masterIdentifier: { system: 'urn:ietf:rfc:3986', value: binary },
          subject: { reference: subject },
          author: [{ reference: '#author' }],
          contained: [{ resourceType: 'Practitioner', id: 'author', photo: [{ contentType: 'image/png', url: binary }] }],
          extension: [
            { url: 'http://example.org/fhir/StructureDefinition/source', valueUri: binary },
            { url: 'http://example.org/fhir/StructureDefinition/profile', valueCanonical: binary },
            { url: 'http://example.org/fhir/StructureDefinition/oid', valueOid: subject },
          ],
          content: [{ attachment: { contentType: 'text/plain', url: binary }, format: { system: codeSystem, code: 'urn:ihe:iti:xds:2017:mimeTypeSufficient' } }],
        } },
        { fullUrl: binary, request: { method: 'POST', url: 'Binary' }, resource: { resourceType: 'Binary', contentType: 'text/plain', data: Buffer.from('report').toString('base64') } },
        { fullUrl: subject, request: { method: 'POST', url: 'Patient' }, resource: patient('TX-LINKS') },
      ]));
      expect(res.statusCode, res.body).toBe(200);
      const [document, binaryRef, patientRef] = (res.json().entry as Entry[]).map((e) => e.response.location.split('/_history')[0] as string);
      const stored = (await server.request({ method: 'GET', url: `/fhir/${document}` })).json();
      expect(stored.text.div).toBe(`<div xmlns="http://www.w3.org/1999/xhtml"><a href="${binaryRef}">report</a><img src='${binaryRef}' alt="${binary}"/><a href="${stranger}">other</a><span title="${binary}">${binary}</span></div>`);
      expect(stored.masterIdentifier.value).toBe(binary);
      expect(stored.subject.reference).toBe(patientRef);
      expect(stored.contained[0].photo[0].url).toBe(binaryRef);
      expect(stored.extension.map((e: Entry) => e.valueUri ?? e.valueCanonical ?? e.valueOid)).toEqual([binaryRef, binary, subject]);
      expect(stored.content[0].attachment.url).toBe(binaryRef);
      expect(stored.content[0].format.system).toBe(codeSystem);
    });

    it('a conditional reference matching none or several fails the transaction', async ({ skip }) => {
      if (!transactions()) skip();
      await server.create(patient('TX-TWICE'));
      await server.create(patient('TX-TWICE'));
      for (const value of ['TX-NOBODY', 'TX-TWICE']) {
        const res = await post(server, bundle('transaction', [{ request: { method: 'POST', url: 'Observation' }, resource: observation(`Patient?identifier=${HKID}|${value}`) }]));
        expect(res.statusCode).toBe(412);
        expect(outcomeOf(res).text).toMatch(value === 'TX-NOBODY' ? /matches no resource/ : /more than one/);
        expect(outcomeOf(res).expressions).toContain('Bundle.entry[0]');
      }
    });

    it('whose 57th entry fails leaves the database exactly as before, and names the failing entry', async ({ skip }) => {
      if (!transactions()) skip();
      const target = await server.create(patient('TX-57-TARGET'));
      const before = await systemHistory(server);
      const entries: Entry[] = [];
      for (let i = 0; i < 60; i++) {
        entries.push({ fullUrl: `urn:uuid:00000000-0000-4000-8000-${String(i).padStart(12, '0')}`, request: { method: 'POST', url: 'Patient' }, resource: patient(`TX-57-${i}`) });
      }
      entries[10] = { request: { method: 'DELETE', url: `Patient/${target.id}` } };
      entries[20] = { request: { method: 'PUT', url: 'Patient/tx-57-put' }, resource: patient('TX-57-PUT', { id: 'tx-57-put' }) };
      entries[56] = { request: { method: 'POST', url: 'Observation' }, resource: { ...observation(`Patient/${target.id}`), status: 'not-a-status' } };
      const res = await post(server, bundle('transaction', entries));
      expect(res.statusCode).toBe(400);
      expect(outcomeOf(res).text).toMatch(/^Bundle\.entry\[56\] \(POST Observation\)/);
      expect(outcomeOf(res).expressions).toContain('Bundle.entry[56]');
      expect(await systemHistory(server)).toEqual(before);
      expect((await server.request({ method: 'GET', url: `/fhir/Patient/${target.id}` })).statusCode).toBe(200);
    });

    it('every method with its conditional forms, processed DELETE, POST, PUT/PATCH, GET and answered in entry order', async ({ skip }) => {
      if (!transactions()) skip();
      const [a, b, c, d] = [await server.create(patient('TX-M-A')), await server.create(patient('TX-M-B')), await server.create(patient('TX-M-C')), await server.create(patient('TX-M-D'))];
      // Every method; the first transaction also GETs a resource it deletes.
      const writes = [
        { request: { method: 'GET', url: `Patient/${a.id}` } },
        { request: { method: 'HEAD', url: `Patient/${b.id}` } },
        { request: { method: 'PATCH', url: `Patient/${a.id}`, ifMatch: 'W/"1"' }, resource: jsonPatch([{ op: 'add', path: '/gender', value: 'female' }]) },
        { request: { method: 'PUT', url: `Patient?identifier=${HKID}|TX-M-B` }, resource: patient('TX-M-B', { active: false }) },
        { request: { method: 'DELETE', url: `Patient?identifier=${HKID}|TX-M-C` } },
        { request: { method: 'DELETE', url: `Patient/${d.id}` } },
        { request: { method: 'POST', url: 'Patient', ifNoneExist: `identifier=${HKID}|TX-M-E` }, resource: patient('TX-M-E') },
      ];
      const res = await post(server, bundle('transaction', [...writes, { request: { method: 'GET', url: `Patient/${c.id}` } }]));
      // The GET of a resource the same transaction deleted runs after the DELETE: 410 fails the transaction.
      expect(res.statusCode).toBe(410);
      expect(outcomeOf(res).expressions).toContain('Bundle.entry[7]');

      const ok = await post(server, bundle('transaction', writes));
      expect(ok.statusCode, ok.body).toBe(200);
      expect(statuses(ok)).toEqual(['200 OK', '200 OK', '200 OK', '200 OK', '204 No Content', '204 No Content', '201 Created']);
      const [got, head, patched, put] = ok.json().entry as any[];
      // The GET ran after the PATCH, so it sees version 2; the HEAD after the PUT.
      expect(got.resource.gender).toBe('female');
      expect(got.response.etag).toBe('W/"2"');
      expect(head.response.etag).toBe('W/"2"');
      expect(patched.response.location).toBe(`Patient/${a.id}/_history/2`);
      expect(put.response.location).toBe(`Patient/${b.id}/_history/2`);
      expect((await server.request({ method: 'GET', url: `/fhir/Patient/${c.id}` })).statusCode).toBe(410);
      expect((await server.request({ method: 'GET', url: `/fhir/Patient/${d.id}` })).statusCode).toBe(410);
    });

    it('a stale If-Match, or two entries changing one resource, fail the whole transaction', async ({ skip }) => {
      if (!transactions()) skip();
      const p = await server.create(patient('TX-STALE'));
      const before = await systemHistory(server);
      const stale = await post(server, bundle('transaction', [
        { request: { method: 'POST', url: 'Patient' }, resource: patient('TX-STALE-NEW') },
        { request: { method: 'PUT', url: `Patient/${p.id}`, ifMatch: 'W/"7"' }, resource: { ...patient('TX-STALE'), id: p.id } },
      ]));
      expect(stale.statusCode).toBe(412);
      expect(outcomeOf(stale).expressions).toContain('Bundle.entry[1]');
      const twice = await post(server, bundle('transaction', [
        { request: { method: 'PUT', url: `Patient/${p.id}` }, resource: { ...patient('TX-STALE'), id: p.id } },
        { request: { method: 'PATCH', url: `Patient/${p.id}` }, resource: jsonPatch([{ op: 'add', path: '/active', value: true }]) },
      ]));
      expect(twice.statusCode).toBe(400);
      expect(outcomeOf(twice).text).toMatch(/appear once/);
      expect(await systemHistory(server)).toEqual(before);
    });

    describe('two write entries aimed at one resource fail the transaction, however each found it', () => {
      const byIdentifier = (value: string) => `Patient?identifier=${HKID}|${value}`;
      const cases: [string, (id: string, value: string) => Entry[]][] = [
        ['DELETE and DELETE', (id) => [{ request: { method: 'DELETE', url: `Patient/${id}` } }, { request: { method: 'DELETE', url: `Patient/${id}` } }]],
        ['DELETE and conditional DELETE', (id, value) => [{ request: { method: 'DELETE', url: `Patient/${id}` } }, { request: { method: 'DELETE', url: byIdentifier(value) } }]],
        ['conditional DELETE and DELETE', (id, value) => [{ request: { method: 'DELETE', url: byIdentifier(value) } }, { request: { method: 'DELETE', url: `Patient/${id}` } }]],
        ['PUT and conditional PUT', (id, value) => [
          { request: { method: 'PUT', url: `Patient/${id}` }, resource: patient(value, { id, active: true }) },
          { request: { method: 'PUT', url: byIdentifier(value) }, resource: patient(value, { active: false }) },
        ]],
      ];
      cases.forEach(([name, entries], n) => {
        it(name, async ({ skip }) => {
          if (!transactions()) skip();
          const value = `TX-OVERLAP-${n}`;
          const target = await server.create(patient(value));
          const res = await post(server, bundle('transaction', entries(target.id, value)));
          expect(res.statusCode, res.body).toBe(400);
          expect(outcomeOf(res).expressions).toContain('Bundle.entry[1]');
          expect(outcomeOf(res).text).toMatch(new RegExp(`Patient/${target.id} is the target of Bundle\\.entry\\[0\\] too; each resource may appear once`));
          const stored = await server.request({ method: 'GET', url: `/fhir/Patient/${target.id}` });
          expect(stored.statusCode).toBe(200);
          expect(stored.json().meta.versionId).toBe('1');
        });
      });

      it('a DELETE of a resource that does not exist, and a PUT creating it', async ({ skip }) => {
        if (!transactions()) skip();
        const res = await post(server, bundle('transaction', [
          { request: { method: 'PUT', url: 'Patient/tx-overlap-absent' }, resource: patient('TX-OVERLAP-ABSENT', { id: 'tx-overlap-absent' }) },
          { request: { method: 'DELETE', url: 'Patient/tx-overlap-absent' } },
        ]));
        expect(res.statusCode, res.body).toBe(400);
        // The DELETE runs first, so the PUT is the entry that overlaps.
        expect(outcomeOf(res).expressions).toContain('Bundle.entry[0]');
        expect(outcomeOf(res).text).toMatch(/Patient\/tx-overlap-absent is the target of Bundle\.entry\[1\] too/);
        expect((await server.request({ method: 'GET', url: '/fhir/Patient/tx-overlap-absent' })).statusCode).toBe(404);
      });

      it('while a conditional DELETE that matches nothing aims at nothing', async ({ skip }) => {
        if (!transactions()) skip();
        const res = await post(server, bundle('transaction', [
          { request: { method: 'DELETE', url: byIdentifier('TX-OVERLAP-NOBODY') } },
          { request: { method: 'DELETE', url: byIdentifier('TX-OVERLAP-NOBODY-EITHER') } },
        ]));
        expect(res.statusCode, res.body).toBe(200);
        expect(statuses(res)).toEqual(['204 No Content', '204 No Content']);
      });
    });

    it("GET entries run after the writes and see them: a read by id, a search, a compartment and a history", async ({ skip }) => {
      if (!transactions()) skip();
      const existing = await server.create(patient('TX-SEE-OLD'));
      const res = await post(server, bundle('transaction', [
        { request: { method: 'GET', url: `Patient/${existing.id}` } },
        { request: { method: 'GET', url: `Patient?identifier=${HKID}|TX-SEE-NEW` } },
        { request: { method: 'GET', url: `Patient?identifier=${HKID}|TX-SEE-OLD` } },
        { request: { method: 'GET', url: `Patient/${existing.id}/_history` } },
        { request: { method: 'GET', url: `Patient/${existing.id}/Observation` } },
        { request: { method: 'POST', url: 'Patient' }, resource: patient('TX-SEE-NEW') },
        { request: { method: 'PUT', url: `Patient/${existing.id}` }, resource: patient('TX-SEE-OLD', { id: existing.id, active: true }) },
        { request: { method: 'POST', url: 'Observation' }, resource: observation(`Patient/${existing.id}`) },
      ]));
      expect(res.statusCode, res.body).toBe(200);
      const answered = res.json().entry as Entry[];
      const [byId, searchNew, searchOld, history, compartment] = answered.map((e) => e.resource);
      expect([byId.meta.versionId, byId.active]).toEqual(['2', true]);
      const created = answered[5]!.response.location.split('/')[1];
      expect(searchNew.total).toBe(1);
      expect(searchNew.entry[0].resource.id).toBe(created);
      expect(searchOld.total).toBe(1);
      expect([searchOld.entry[0].resource.meta.versionId, searchOld.entry[0].resource.active]).toEqual(['2', true]);
      expect(history.total).toBe(2);
      expect(compartment.entry.map((e: Entry) => e.resource.id)).toEqual([answered[7]!.response.location.split('/')[1]]);
      // What the searches answered is what was committed: the same timestamps as a read now gives.
      const now = (await server.request({ method: 'GET', url: `/fhir/Patient/${existing.id}` })).json();
      expect(searchOld.entry[0].resource.meta.lastUpdated).toBe(now.meta.lastUpdated);
    });

    it('a malformed GET search still fails the whole transaction before anything is stored', async ({ skip }) => {
      if (!transactions()) skip();
      const res = await post(server, bundle('transaction', [
        { request: { method: 'POST', url: 'Patient' }, resource: patient('TX-BAD-GET') },
        { request: { method: 'GET', url: 'Patient?birthdate=notadate' } },
      ]));
      expect(res.statusCode).toBe(400);
      expect(outcomeOf(res).expressions).toContain('Bundle.entry[1]');
      expect((await server.request({ method: 'GET', url: `/fhir/Patient?identifier=${HKID}|TX-BAD-GET` })).json().total).toBe(0);
    });

    it('an unresolvable placeholder fails the transaction', async ({ skip }) => {
      if (!transactions()) skip();
      const res = await post(server, bundle('transaction', [{ request: { method: 'POST', url: 'Observation' }, resource: observation('urn:uuid:99999999-9999-4999-8999-999999999999') }]));
      expect(res.statusCode).toBe(400);
      expect(outcomeOf(res).text).toMatch(/not the fullUrl of any entry/);
    });

    it('10,000 entries are accepted in one transaction', async ({ skip }) => {
      if (!transactions()) skip();
      const entries: Entry[] = [];
      for (let i = 0; i < 5_000; i++) {
        const fullUrl = `urn:uuid:10000000-0000-4000-8000-${String(i).padStart(12, '0')}`;
        entries.push({ fullUrl, request: { method: 'POST', url: 'Patient' }, resource: patient(`BIG-${i}`, { name: [{ family: 'Chan', given: ['Tai Man'] }], birthDate: '1970-01-01' }) });
        entries.push({ request: { method: 'POST', url: 'Observation' }, resource: observation(fullUrl) });
      }
      const started = Date.now();
      const res = await post(server, bundle('transaction', entries));
      expect(res.statusCode, res.body.slice(0, 500)).toBe(200);
      expect(res.json().entry).toHaveLength(10_000);
      console.info(`10,000-entry transaction: ${Date.now() - started} ms, rss ${Math.round(process.memoryUsage().rss / 2 ** 20)} MB`);
      const count = await server.request({ method: 'GET', url: '/fhir/Patient?identifier=BIG-4999&_summary=count' });
      expect(count.json().total).toBe(1);
    }, 120_000);
  });
});
