import { expect, it } from 'vitest';
import { describeEachStore } from '../store/stores.js';
import { FHIR_JSON, outcomeOf, useServer } from './harness.js';

const patient = (extra: Record<string, unknown> = {}) => ({
  resourceType: 'Patient',
  name: [{ family: 'Chan', given: ['Tai Man'] }],
  gender: 'male',
  birthDate: '1980-02-29',
  ...extra,
});

describeEachStore('single-resource interactions', (open) => {
  const server = useServer(open);

  it('create assigns an id and version 1, with ETag, Last-Modified and Location', async () => {
    const res = await server.request({ method: 'POST', url: '/fhir/Patient', headers: FHIR_JSON, payload: patient({ id: 'client-chosen' }) });
    expect(res.statusCode).toBe(201);
    const body = res.json();
    expect(body.id).toMatch(/^[0-9a-f-]{36}$/);
    expect(body.id).not.toBe('client-chosen');
    expect(body.meta.versionId).toBe('1');
    expect(Date.parse(body.meta.lastUpdated)).not.toBeNaN();
    expect(res.headers.etag).toBe('W/"1"');
    expect(res.headers['last-modified']).toBe(new Date(body.meta.lastUpdated).toUTCString());
    expect(res.headers.location).toBe(`http://fhir.test/fhir/Patient/${body.id}/_history/1`);
    expect(res.headers['content-type']).toBe('application/fhir+json; charset=utf-8');
    expect(body.name).toEqual([{ family: 'Chan', given: ['Tai Man'] }]);
  });

  it('keeps client meta (tags, profiles, security) but sets versionId and lastUpdated itself', async () => {
    const meta = { versionId: '99', lastUpdated: '2000-01-01T00:00:00Z', tag: [{ system: 'urn:t', code: 'x' }], profile: ['http://example.org/p'] };
    const created = await server.create(patient({ meta }));
    expect(created.meta.versionId).toBe('1');
    expect(created.meta.lastUpdated).not.toBe('2000-01-01T00:00:00Z');
    expect(created.meta.tag).toEqual(meta.tag);
    expect(created.meta.profile).toEqual(meta.profile);
  });

  it('read returns the current version; vread returns any version', async () => {
    const created = await server.create(patient());
    const updated = await server.request({ method: 'PUT', url: `/fhir/Patient/${created.id}`, headers: FHIR_JSON, payload: { ...created, gender: 'female' } });
    expect(updated.statusCode).toBe(200);
    expect(updated.json().meta.versionId).toBe('2');

    const read = await server.request({ method: 'GET', url: `/fhir/Patient/${created.id}` });
    expect(read.statusCode).toBe(200);
    expect(read.json().gender).toBe('female');
    expect(read.headers.etag).toBe('W/"2"');

    const v1 = await server.request({ method: 'GET', url: `/fhir/Patient/${created.id}/_history/1` });
    expect(v1.statusCode).toBe(200);
    expect(v1.json().gender).toBe('male');
    expect(v1.headers.etag).toBe('W/"1"');

    expect((await server.request({ method: 'GET', url: `/fhir/Patient/${created.id}/_history/3` })).statusCode).toBe(404);
    expect((await server.request({ method: 'GET', url: `/fhir/Patient/${created.id}/_history/abc` })).statusCode).toBe(404);
  });

  it('update of an unknown id creates it with the client id (201), then updates (200)', async () => {
    const first = await server.request({ method: 'PUT', url: '/fhir/Patient/hk-0001', headers: FHIR_JSON, payload: patient({ id: 'hk-0001' }) });
    expect(first.statusCode).toBe(201);
    expect(first.json().id).toBe('hk-0001');
    expect(first.headers.location).toBe('http://fhir.test/fhir/Patient/hk-0001/_history/1');
    const second = await server.request({ method: 'PUT', url: '/fhir/Patient/hk-0001', headers: FHIR_JSON, payload: patient({ id: 'hk-0001', active: true }) });
    expect(second.statusCode).toBe(200);
    expect(second.json().meta.versionId).toBe('2');
  });

  it('delete writes a tombstone version: read gives 410, history keeps it, the id can be written again', async () => {
    const created = await server.create(patient());
    const del = await server.request({ method: 'DELETE', url: `/fhir/Patient/${created.id}` });
    expect(del.statusCode).toBe(204);
    expect(del.headers.etag).toBe('W/"2"');

    const read = await server.request({ method: 'GET', url: `/fhir/Patient/${created.id}` });
    expect(read.statusCode).toBe(410);
    expect(outcomeOf(read).codes).toEqual(['deleted']);
    expect((await server.request({ method: 'GET', url: `/fhir/Patient/${created.id}/_history/2` })).statusCode).toBe(410);
    expect((await server.request({ method: 'GET', url: `/fhir/Patient/${created.id}/_history/1` })).statusCode).toBe(200);

    // Deleting again, or deleting what never existed, changes nothing and still succeeds.
    expect((await server.request({ method: 'DELETE', url: `/fhir/Patient/${created.id}` })).statusCode).toBe(204);
    expect((await server.request({ method: 'DELETE', url: '/fhir/Patient/never-was' })).statusCode).toBe(204);
    const history = await server.request({ method: 'GET', url: `/fhir/Patient/${created.id}/_history` });
    expect(history.json().total).toBe(2);

    const revived = await server.request({ method: 'PUT', url: `/fhir/Patient/${created.id}`, headers: FHIR_JSON, payload: patient({ id: created.id }) });
    expect(revived.statusCode).toBe(201);
    expect(revived.json().meta.versionId).toBe('3');
  });

  it('delete with Prefer: return=OperationOutcome answers 200 with an outcome', async () => {
    const created = await server.create(patient());
    const res = await server.request({ method: 'DELETE', url: `/fhir/Patient/${created.id}`, headers: { prefer: 'return=OperationOutcome' } });
    expect(res.statusCode).toBe(200);
    expect(res.json().resourceType).toBe('OperationOutcome');
  });

  it('If-Match: the current version succeeds, a stale one gives 412 and changes nothing', async () => {
    const created = await server.create(patient());
    const ok = await server.request({ method: 'PUT', url: `/fhir/Patient/${created.id}`, headers: { ...FHIR_JSON, 'if-match': 'W/"1"' }, payload: { ...created, active: true } });
    expect(ok.statusCode).toBe(200);
    const stale = await server.request({ method: 'PUT', url: `/fhir/Patient/${created.id}`, headers: { ...FHIR_JSON, 'if-match': 'W/"1"' }, payload: { ...created, active: false } });
    expect(stale.statusCode).toBe(412);
    expect(outcomeOf(stale).codes).toEqual(['conflict']);
    const read = await server.request({ method: 'GET', url: `/fhir/Patient/${created.id}` });
    expect(read.json().active).toBe(true);
    expect(read.json().meta.versionId).toBe('2');

    const staleDelete = await server.request({ method: 'DELETE', url: `/fhir/Patient/${created.id}`, headers: { 'if-match': 'W/"1"' } });
    expect(staleDelete.statusCode).toBe(412);
    const badTag = await server.request({ method: 'PUT', url: `/fhir/Patient/${created.id}`, headers: { ...FHIR_JSON, 'if-match': 'version-two' }, payload: created });
    expect(badTag.statusCode).toBe(400);
    const missing = await server.request({ method: 'PUT', url: '/fhir/Patient/not-there', headers: { ...FHIR_JSON, 'if-match': 'W/"1"' }, payload: patient({ id: 'not-there' }) });
    expect(missing.statusCode).toBe(412);
    expect((await server.request({ method: 'GET', url: '/fhir/Patient/not-there' })).statusCode).toBe(404);
  });

  it('Prefer: return=minimal gives no body; return=OperationOutcome gives an outcome; headers stay', async () => {
    const minimal = await server.request({ method: 'POST', url: '/fhir/Patient', headers: { ...FHIR_JSON, prefer: 'return=minimal' }, payload: patient() });
    expect(minimal.statusCode).toBe(201);
    expect(minimal.body).toBe('');
    expect(minimal.headers.location).toMatch(/\/Patient\/[^/]+\/_history\/1$/);
    expect(minimal.headers.etag).toBe('W/"1"');

    const oo = await server.request({ method: 'POST', url: '/fhir/Patient', headers: { ...FHIR_JSON, prefer: 'return=OperationOutcome' }, payload: patient() });
    expect(oo.statusCode).toBe(201);
    expect(oo.json().resourceType).toBe('OperationOutcome');
    expect(oo.json().issue[0].severity).toBe('information');

    const rep = await server.request({ method: 'POST', url: '/fhir/Patient', headers: { ...FHIR_JSON, prefer: 'return=representation' }, payload: patient() });
    expect(rep.json().resourceType).toBe('Patient');
  });

  it('PATCH applies a JSON Patch, keeps the id, and refuses bad patches without storing anything', async () => {
    const created = await server.create(patient());
    const patchHeaders = { 'content-type': 'application/json-patch+json' };
    const ok = await server.request({
      method: 'PATCH',
      url: `/fhir/Patient/${created.id}`,
      headers: patchHeaders,
      payload: [
        { op: 'test', path: '/gender', value: 'male' },
        { op: 'replace', path: '/gender', value: 'other' },
        { op: 'add', path: '/name/0/given/-', value: 'Siu Ming' },
      ],
    });
    expect(ok.statusCode).toBe(200);
    expect(ok.json().gender).toBe('other');
    expect(ok.json().name[0].given).toEqual(['Tai Man', 'Siu Ming']);
    expect(ok.json().meta.versionId).toBe('2');

    const failedTest = await server.request({ method: 'PATCH', url: `/fhir/Patient/${created.id}`, headers: patchHeaders, payload: [{ op: 'test', path: '/gender', value: 'male' }] });
    expect(failedTest.statusCode).toBe(422);
    const malformed = await server.request({ method: 'PATCH', url: `/fhir/Patient/${created.id}`, headers: patchHeaders, payload: { op: 'replace' } });
    expect(malformed.statusCode).toBe(400);
    const badOp = await server.request({ method: 'PATCH', url: `/fhir/Patient/${created.id}`, headers: patchHeaders, payload: [{ op: 'frobnicate', path: '/gender' }] });
    expect(badOp.statusCode).toBe(400);
    const invalidResult = await server.request({ method: 'PATCH', url: `/fhir/Patient/${created.id}`, headers: patchHeaders, payload: [{ op: 'replace', path: '/gender', value: 42 }] });
    expect(invalidResult.statusCode).toBe(400);
    expect(outcomeOf(invalidResult).expressions).toContain('Patient.gender');
    const idChange = await server.request({ method: 'PATCH', url: `/fhir/Patient/${created.id}`, headers: patchHeaders, payload: [{ op: 'replace', path: '/id', value: 'other' }] });
    expect(idChange.statusCode).toBe(422);
    const stale = await server.request({ method: 'PATCH', url: `/fhir/Patient/${created.id}`, headers: { ...patchHeaders, 'if-match': 'W/"1"' }, payload: [{ op: 'remove', path: '/gender' }] });
    expect(stale.statusCode).toBe(412);

    const read = await server.request({ method: 'GET', url: `/fhir/Patient/${created.id}` });
    expect(read.json().meta.versionId).toBe('2');
    expect(read.json().gender).toBe('other');
    expect((await server.request({ method: 'PATCH', url: '/fhir/Patient/nobody', headers: patchHeaders, payload: [] })).statusCode).toBe(404);
  });

  it('_summary and _elements reshape a read and mark it SUBSETTED', async () => {
    const created = await server.create(patient({ text: { status: 'generated', div: '<div xmlns="http://www.w3.org/1999/xhtml">Chan Tai Man</div>' }, maritalStatus: { text: 'Married' }, photo: [{ title: 'x' }] }));
    const summary = await server.request({ method: 'GET', url: `/fhir/Patient/${created.id}?_summary=true` });
    const s = summary.json();
    expect(s.name).toBeDefined();
    expect(s.birthDate).toBe('1980-02-29');
    expect(s.photo).toBeUndefined(); // not a summary element
    expect(s.maritalStatus).toBeUndefined();
    expect(s.text).toBeUndefined();
    expect(s.meta.tag).toContainEqual(expect.objectContaining({ code: 'SUBSETTED' }));

    const text = (await server.request({ method: 'GET', url: `/fhir/Patient/${created.id}?_summary=text` })).json();
    expect(Object.keys(text).sort()).toEqual(['id', 'meta', 'resourceType', 'text']);
    const data = (await server.request({ method: 'GET', url: `/fhir/Patient/${created.id}?_summary=data` })).json();
    expect(data.text).toBeUndefined();
    expect(data.photo).toBeDefined();

    const elements = (await server.request({ method: 'GET', url: `/fhir/Patient/${created.id}?_elements=birthDate,gender` })).json();
    expect(Object.keys(elements).sort()).toEqual(['birthDate', 'gender', 'id', 'meta', 'resourceType']);
    const full = (await server.request({ method: 'GET', url: `/fhir/Patient/${created.id}?_summary=false` })).json();
    expect(full.photo).toBeDefined();
    expect(full.meta.tag).toBeUndefined();

    expect((await server.request({ method: 'GET', url: `/fhir/Patient/${created.id}?_summary=maybe` })).statusCode).toBe(400);
  });

  it('content negotiation: _format and Accept choose the JSON flavour; XML and others get 406', async () => {
    const created = await server.create(patient());
    const url = `/fhir/Patient/${created.id}`;
    expect((await server.request({ method: 'GET', url, headers: { accept: 'application/json' } })).headers['content-type']).toBe('application/json; charset=utf-8');
    expect((await server.request({ method: 'GET', url, headers: { accept: 'application/fhir+json; fhirVersion=4.0' } })).headers['content-type']).toBe('application/fhir+json; charset=utf-8');
    expect((await server.request({ method: 'GET', url, headers: { accept: 'text/html,application/xhtml+xml,*/*;q=0.8' } })).statusCode).toBe(200);
    expect((await server.request({ method: 'GET', url: `${url}?_format=json` })).statusCode).toBe(200);
    expect((await server.request({ method: 'GET', url: `${url}?_format=application/json` })).headers['content-type']).toBe('application/json; charset=utf-8');

    const xml = await server.request({ method: 'GET', url, headers: { accept: 'application/fhir+xml' } });
    expect(xml.statusCode).toBe(406);
    expect(outcomeOf(xml).codes).toEqual(['not-supported']);
    expect((await server.request({ method: 'GET', url: `${url}?_format=xml` })).statusCode).toBe(406);
    // NDJSON is what Bulk Data files are served as, not a resource.
    expect((await server.request({ method: 'GET', url, headers: { accept: 'application/fhir+ndjson' } })).statusCode).toBe(406);
  });

  it('_pretty=true indents the answer; the content is the same', async () => {
    const created = await server.create(patient());
    const pretty = await server.request({ method: 'GET', url: `/fhir/Patient/${created.id}?_pretty=true` });
    expect(pretty.body).toContain('\n  "resourceType": "Patient"');
    expect(pretty.json()).toEqual(created);
    const plain = await server.request({ method: 'GET', url: `/fhir/Patient/${created.id}` });
    expect(plain.body).not.toContain('\n');
  });
});
