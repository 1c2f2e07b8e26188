import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { expect, it } from 'vitest';
import { describeEachStore } from '../store/stores.js';
import { FHIR_JSON, useServer } from './harness.js';

/**
 * Long value lists a conformance probe sent: a ValueSet of thousands of codes for :in, a
 * thousand comma-separated values. Each answers what the data written here says.
 */

const examplesDir = dirname(createRequire(import.meta.url).resolve('hl7.fhir.r4.examples/package.json'));
const example = (file: string) => JSON.parse(readFileSync(join(examplesDir, file), 'utf8')) as Record<string, unknown>;

const LOINC = 'http://loinc.org';
/** The R4 example ValueSet of LOINC document types: 6,401 codes, 11488-4 and 34117-2 among them, 8867-4 not. */
const DOC_TYPES = 'http://hl7.org/fhir/ValueSet/c80-doc-typecodes';

const ids = (bundle: any) => (bundle.entry ?? []).filter((e: any) => e.search.mode === 'match').map((e: any) => e.resource.id).sort();
const filler = (n: number, make: (i: number) => string) => Array.from({ length: n }, (_, i) => make(i));

describeEachStore('search value lists', (open) => {
  const server = useServer(open);
  const documents: Record<string, string> = {};

  const search = async (query: string) => {
    const res = await server.request({ method: 'POST', url: `/fhir/${query.slice(0, query.indexOf('?'))}/_search`, headers: { 'content-type': 'application/x-www-form-urlencoded' }, payload: query.slice(query.indexOf('?') + 1) });
    expect(res.statusCode, res.body.slice(0, 500)).toBe(200);
    const bundle = res.json();
    expect(bundle.total).toBe(ids(bundle).length);
    return ids(bundle);
  };

  it('loads document references of document types and others, and the document types ValueSet', async () => {
    const document = async (name: string, system: string, code: string) => {
      const created = await server.create({ resourceType: 'DocumentReference', status: 'current', type: { coding: [{ system, code }] }, content: [{ attachment: { url: `http://docs.example/${name}` } }] });
      documents[name] = created.id;
    };
    await document('summary', LOINC, '11488-4');
    await document('pathology', LOINC, '34117-2');
    await document('heartRate', LOINC, '8867-4');
    await document('elsewhere', 'http://codes.example/other', '11488-4');
    const valueSet = example('ValueSet-c80-doc-typecodes.json');
    const put = await server.request({ method: 'PUT', url: `/fhir/ValueSet/${String(valueSet.id)}`, headers: FHIR_JSON, payload: valueSet });
    expect(put.statusCode).toBe(201);
  });

  const named = (...names: string[]) => names.map((n) => documents[n]).sort();

  it('999 comma-separated codes, with and without a system, find the ones that are there', async () => {
    expect(await search(`DocumentReference?type=${[...filler(998, (i) => `x-${i}`), '11488-4'].join(',')}`)).toEqual(named('summary', 'elsewhere'));
    expect(await search(`DocumentReference?type=${[...filler(998, (i) => `${LOINC}|x-${i}`), `${LOINC}|34117-2`].join(',')}`)).toEqual(named('pathology'));
    expect(await search(`DocumentReference?type:not=${[...filler(998, (i) => `x-${i}`), '11488-4'].join(',')}`)).toEqual(named('pathology', 'heartRate'));
  });

  it(':in and :not-in a ValueSet of 6,401 codes', async () => {
    expect(await search(`DocumentReference?type:in=${DOC_TYPES}`)).toEqual(named('summary', 'pathology'));
    expect(await search(`DocumentReference?type:not-in=${DOC_TYPES}`)).toEqual(named('heartRate', 'elsewhere'));
  });
});
