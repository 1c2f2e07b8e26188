import { expect, it } from 'vitest';
import { describeEachStore } from '../store/stores.js';
import { importNdjson, pathOf } from './bulk-client.js';
import { FHIR_JSON, outcomeOf, useServer } from './harness.js';

/**
 * JSON nested deeper than the server accepts (100 levels of arrays and objects) is a 400 with
 * an OperationOutcome wherever it enters, never a stack overflow answered with a 500; and
 * nothing is stored. What was stored before is read as it was.
 */

/** A Patient whose extension holds an extension, `levels` times: it nests 2 × levels + 1 deep. */
function nestedExtensions(levels: number, id?: string): string {
  const leaf = '{"url":"http://example.org/leaf","valueString":"leaf"}';
  const nested = '{"url":"http://example.org/n","extension":['.repeat(levels - 1) + leaf + ']}'.repeat(levels - 1);
  return `{"resourceType":"Patient",${id ? `"id":"${id}",` : ''}"extension":[${nested}]}`;
}

const arrays = (levels: number) => '['.repeat(levels) + ']'.repeat(levels);
const PATCH_JSON = { 'content-type': 'application/json-patch+json' };
const NO_STACK = /RangeError|call stack|at .+\.(ts|js):\d+/;

describeEachStore('JSON nesting depth', (open) => {
  const server = useServer(open);

  async function patientCount(): Promise<number> {
    return (await server.request({ method: 'GET', url: '/fhir/Patient/_history' })).json().total;
  }

  function expectTooDeep(res: { statusCode: number; body: string }, what = 'The request body'): void {
    expect(res.statusCode, res.body).toBe(400);
    expect(res.body).not.toMatch(NO_STACK);
    const outcome = outcomeOf(res as Parameters<typeof outcomeOf>[0]);
    expect(outcome.codes).toEqual(['too-costly']);
    expect(outcome.text).toContain(`${what} nests arrays and objects more than 100 levels deep`);
  }

  it('a resource up to 100 levels deep is stored and read back whole', async () => {
    const created = await server.request({ method: 'POST', url: '/fhir/Patient', headers: FHIR_JSON, payload: nestedExtensions(49) });
    expect(created.statusCode, created.body).toBe(201);
    const read = await server.request({ method: 'GET', url: `/fhir/Patient/${created.json().id}` });
    expect(JSON.stringify(read.json().extension)).toBe(JSON.stringify(JSON.parse(nestedExtensions(49)).extension));
  });

  it('create, update and $validate bodies nested deeper give 400 too-costly, and store nothing', async () => {
    const before = await patientCount();
    expectTooDeep(await server.request({ method: 'POST', url: '/fhir/Patient', headers: FHIR_JSON, payload: nestedExtensions(50) }));
    expectTooDeep(await server.request({ method: 'POST', url: '/fhir/Patient', headers: FHIR_JSON, payload: nestedExtensions(5000) }));
    const arraysInside = `{"resourceType":"Patient","x":${arrays(5000)}}`;
    expectTooDeep(await server.request({ method: 'POST', url: '/fhir/Patient', headers: { 'content-type': 'application/json' }, payload: arraysInside }));
    expectTooDeep(await server.request({ method: 'PUT', url: '/fhir/Patient/deep', headers: FHIR_JSON, payload: nestedExtensions(5000, 'deep') }));
    expectTooDeep(await server.request({ method: 'POST', url: '/fhir/Patient/$validate', headers: FHIR_JSON, payload: nestedExtensions(5000) }));
    expect(await patientCount()).toBe(before);
  });

  it('a JSON Patch nested too deep, or one that would make the resource too deep, gives 400', async () => {
    const stored = (await server.request({ method: 'POST', url: '/fhir/Patient', headers: FHIR_JSON, payload: nestedExtensions(49) })).json();
    const url = `/fhir/Patient/${stored.id}`;
    expectTooDeep(await server.request({ method: 'PATCH', url, headers: PATCH_JSON, payload: `[{"op":"add","path":"/active","value":${arrays(5000)}}]` }));
    // A small patch adding two levels below the deepest extension: the body is shallow, the result is not.
    const deepest = '/extension/0'.repeat(49);
    const deeper = await server.request({
      method: 'PATCH',
      url,
      headers: PATCH_JSON,
      payload: [{ op: 'add', path: `${deepest}/extension`, value: [{ url: 'http://example.org/leaf', valueString: 'too deep' }] }],
    });
    expect(deeper.statusCode, deeper.body).toBe(400);
    expect(outcomeOf(deeper).codes).toEqual(['too-costly']);
    expect(outcomeOf(deeper).text).toContain('Elements nest more than 100 levels deep');
    expect((await server.request({ method: 'GET', url })).json().meta.versionId).toBe('1');
  });

  it('a Bundle nested too deep gives 400 before any entry runs; a PATCH entry whose Binary holds deep JSON fails alone', async () => {
    const before = await patientCount();
    for (const type of ['batch', 'transaction']) {
      const bundle = `{"resourceType":"Bundle","type":"${type}","entry":[{"request":{"method":"POST","url":"Patient"},"resource":{"resourceType":"Patient"}},{"request":{"method":"POST","url":"Patient"},"resource":${nestedExtensions(5000)}}]}`;
      expectTooDeep(await server.request({ method: 'POST', url: '/fhir', headers: FHIR_JSON, payload: bundle }));
    }
    expect(await patientCount()).toBe(before);
    const patch = Buffer.from(`[{"op":"add","path":"/active","value":${arrays(5000)}}]`).toString('base64');
    const batch = await server.request({
      method: 'POST',
      url: '/fhir',
      headers: FHIR_JSON,
      payload: { resourceType: 'Bundle', type: 'batch', entry: [{ request: { method: 'PATCH', url: 'Patient/any' }, resource: { resourceType: 'Binary', contentType: 'application/json-patch+json', data: patch } }] },
    });
    expect(batch.statusCode, batch.body).toBe(200);
    const response = batch.json().entry[0].response;
    expect(response.status).toMatch(/^400/);
    expect(response.outcome.issue[0].code).toBe('too-costly');
    expect(response.outcome.issue[0].diagnostics).toContain("The PATCH entry's Binary.data nests arrays and objects more than 100 levels deep");
  });

  it('an NDJSON import line nested too deep is an error line of its own; the others load', async () => {
    const ndjson = [nestedExtensions(5000, 'deep-import'), '{"resourceType":"Patient","id":"shallow-import"}'].join('\n');
    const manifest = await importNdjson(server, ndjson);
    expect(manifest.output.map((o) => [o.type, o.count])).toEqual([['Patient', 1]]);
    const errors = await server.request({ method: 'GET', url: pathOf((manifest.error[0] as { url: string }).url) });
    const outcome = JSON.parse(errors.body.trim()) as { issue: { code: string; diagnostics: string }[] };
    expect(outcome.issue.map((i) => i.code)).toEqual(['too-costly']);
    expect(outcome.issue[0]!.diagnostics).toMatch(/^Line 1 of input 1: The line nests arrays and objects more than 100 levels deep/);
    expect((await server.request({ method: 'GET', url: '/fhir/Patient/deep-import' })).statusCode).toBe(404);
  });

  it('a resource stored deeper before the limit existed is still read as it was', async () => {
    const json = nestedExtensions(75, 'stored-deep');
    await server.store.write({
      resourceType: 'Patient',
      id: 'stored-deep',
      renderBody: (versionId, lastUpdated) => json.replace('"id":"stored-deep",', `"id":"stored-deep","meta":{"versionId":"${versionId}","lastUpdated":"${new Date(lastUpdated).toISOString()}"},`),
    });
    const read = await server.request({ method: 'GET', url: '/fhir/Patient/stored-deep' });
    expect(read.statusCode, read.body).toBe(200);
    expect(JSON.stringify(read.json().extension)).toBe(JSON.stringify(JSON.parse(json).extension));
    expect((await server.request({ method: 'GET', url: '/fhir/Patient/stored-deep?_elements=extension' })).statusCode).toBe(200);
    expect((await server.request({ method: 'GET', url: '/fhir/Patient/stored-deep/_history' })).statusCode).toBe(200);
  });
});
