import { expect, it } from 'vitest';
import { describeEachStore } from '../store/stores.js';
import { ASYNC, importNdjson, NDJSON, pathOf } from './bulk-client.js';
import { FHIR_JSON, outcomeOf, useServer } from './harness.js';

/**
 * FHIR JSON is UTF-8. A body in another charset is a 415 and bytes that are not UTF-8 a 400,
 * each with an OperationOutcome (for an NDJSON import: an error line), and nothing is stored: decoding them leniently stored U+FFFD
 * in place of the client's characters.
 */

/** `{"resourceType":"Patient","name":[{"text":"José"}]}` with the é as one ISO-8859-1 byte. */
const latin1Patient = Buffer.from('{"resourceType":"Patient","name":[{"text":"Jos\xe9"}]}', 'latin1');

describeEachStore('UTF-8 request bodies', (open) => {
  const server = useServer(open);

  async function patientCount(): Promise<number> {
    return (await server.request({ method: 'GET', url: '/fhir/Patient/_history' })).json().total;
  }

  it('characters beyond ASCII, U+FFFD itself included, are stored exactly as sent', async () => {
    const name = '陳大文 José 🩺 \ufffd';
    for (const contentType of ['application/fhir+json', 'application/fhir+json; charset=utf-8', 'application/json; charset="UTF-8"', 'application/fhir+json;charset=utf8']) {
      const res = await server.request({ method: 'POST', url: '/fhir/Patient', headers: { 'content-type': contentType }, payload: Buffer.from(JSON.stringify({ resourceType: 'Patient', name: [{ text: name }] }), 'utf8') });
      expect(res.statusCode, contentType).toBe(201);
      expect((await server.request({ method: 'GET', url: `/fhir/Patient/${res.json().id}` })).json().name[0].text).toBe(name);
    }
  });

  it('a charset other than UTF-8 gives 415 and stores nothing', async () => {
    const before = await patientCount();
    for (const contentType of ['application/fhir+json; charset=iso-8859-1', 'application/json; charset=windows-1252', 'application/fhir+json; charset="utf-16"']) {
      const res = await server.request({ method: 'POST', url: '/fhir/Patient', headers: { 'content-type': contentType }, payload: latin1Patient });
      expect(res.statusCode, contentType).toBe(415);
      expect(outcomeOf(res).codes).toEqual(['not-supported']);
      expect(outcomeOf(res).text).toMatch(/^FHIR JSON is UTF-8: charset '[a-z0-9-]+' is not supported$/);
    }
    const bundle = { resourceType: 'Bundle', type: 'batch', entry: [{ request: { method: 'POST', url: 'Patient' }, resource: { resourceType: 'Patient' } }] };
    expect((await server.request({ method: 'POST', url: '/fhir', headers: { 'content-type': 'application/fhir+json; charset=iso-8859-1' }, payload: bundle })).statusCode).toBe(415);
    expect(await patientCount()).toBe(before);
  });

  it('bytes that are not UTF-8 give 400 wherever JSON is sent, and store nothing', async () => {
    const before = await patientCount();
    const stored = await server.create({ resourceType: 'Patient', name: [{ text: 'Before' }] });
    const invalid = [
      { method: 'POST', url: '/fhir/Patient', headers: FHIR_JSON, payload: latin1Patient },
      { method: 'POST', url: '/fhir/Patient', headers: { 'content-type': 'application/json' }, payload: latin1Patient },
      // A UTF-16 surrogate encoded as if it were a character (CESU-8): not UTF-8 either.
      { method: 'POST', url: '/fhir/Patient', headers: FHIR_JSON, payload: Buffer.concat([Buffer.from('{"resourceType":"Patient","name":[{"text":"'), Buffer.from([0xed, 0xa0, 0x80]), Buffer.from('"}]}')]) },
      { method: 'PUT', url: `/fhir/Patient/${stored.id}`, headers: FHIR_JSON, payload: Buffer.from(`{"resourceType":"Patient","id":"${stored.id}","name":[{"text":"Jos\xe9"}]}`, 'latin1') },
      { method: 'PATCH', url: `/fhir/Patient/${stored.id}`, headers: { 'content-type': 'application/json-patch+json' }, payload: Buffer.from('[{"op":"replace","path":"/name/0/text","value":"Jos\xe9"}]', 'latin1') },
      { method: 'POST', url: '/fhir', headers: FHIR_JSON, payload: Buffer.from('{"resourceType":"Bundle","type":"batch","entry":[{"request":{"method":"POST","url":"Patient"},"resource":{"resourceType":"Patient","name":[{"text":"Jos\xe9"}]}}]}', 'latin1') },
    ] as const;
    for (const request of invalid) {
      const res = await server.request({ ...request, headers: { ...request.headers } });
      expect(res.statusCode, `${request.method} ${request.url}`).toBe(400);
      expect(outcomeOf(res).text).toBe('The request body is not valid UTF-8, which FHIR JSON must be');
    }
    expect(await patientCount()).toBe(before + 1);
    const read = (await server.request({ method: 'GET', url: `/fhir/Patient/${stored.id}` })).json();
    expect([read.meta.versionId, read.name[0].text]).toEqual(['1', 'Before']);
  });

  it('an NDJSON import in another charset gives 415; a line that is not UTF-8 is an error line of its own', async () => {
    const refused = await server.request({ method: 'POST', url: '/fhir/$import', headers: { ...ASYNC, 'content-type': 'application/fhir+ndjson; charset=iso-8859-1' }, payload: latin1Patient });
    expect(refused.statusCode).toBe(415);
    expect(outcomeOf(refused).text).toBe("NDJSON is UTF-8: charset 'iso-8859-1' is not supported");
    const name = '陳大文 José';
    const ndjson = Buffer.concat([
      Buffer.from('{"resourceType":"Patient","id":"latin1-line","name":[{"text":"Jos\xe9"}]}\n', 'latin1'),
      Buffer.from(`${JSON.stringify({ resourceType: 'Patient', id: 'utf8-line', name: [{ text: name }] })}\n`, 'utf8'),
    ]);
    const manifest = await importNdjson(server, ndjson, { 'content-type': `${NDJSON['content-type']}; charset=utf-8` });
    expect(manifest.output.map((o) => [o.type, o.count])).toEqual([['Patient', 1]]);
    const errors = await server.request({ method: 'GET', url: pathOf((manifest.error[0] as { url: string }).url) });
    expect(errors.body.trim().split('\n').map((line) => JSON.parse(line).issue[0].diagnostics)).toEqual(['Line 1 of input 1: The line is not valid UTF-8, which FHIR NDJSON must be']);
    expect((await server.request({ method: 'GET', url: '/fhir/Patient/latin1-line' })).statusCode).toBe(404);
    expect((await server.request({ method: 'GET', url: '/fhir/Patient/utf8-line' })).json().name[0].text).toBe(name);
  });
});
