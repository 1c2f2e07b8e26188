import { expect, it } from 'vitest';
import { describeEachStore } from '../store/stores.js';
import { useServer } from './harness.js';

/**
 * :missing on elements present only through a derived entry: a reference by identifier alone
 * (found by `:identifier`), a concept with text alone (found by `:text`). They are present.
 */

const ids = (bundle: any) => bundle.entry?.map((e: any) => e.resource.id).sort() ?? [];

describeEachStore(':missing with derived entries', (open) => {
  const server = useServer(open);
  const id: Record<string, string> = {};
  const found = async (query: string) => {
    const response = await server.request({ method: 'GET', url: `/fhir/${query}` });
    expect(response.statusCode, query).toBe(200);
    return ids(response.json());
  };
  const named = (...keys: string[]) => keys.map((k) => id[k]!).sort();

  it('loads observations with a subject by reference, by identifier only, by display only, and none', async () => {
    const made: Record<string, Record<string, unknown>> = {
      byReference: { subject: { reference: 'Patient/somebody' }, code: { coding: [{ system: 'http://loinc.org', code: '8867-4' }] } },
      byIdentifier: { subject: { identifier: { system: 'urn:hkid', value: 'A1234563' } }, code: { text: 'Heart rate, as written' } },
      byDisplay: { subject: { display: 'A patient not on this server' }, code: { coding: [{ system: 'http://loinc.org', code: '8867-4' }] } },
      none: { code: { coding: [{ system: 'http://loinc.org', code: '8867-4' }] } },
    };
    for (const [key, body] of Object.entries(made)) id[key] = (await server.create({ resourceType: 'Observation', status: 'final', ...body })).id;
  });

  it('a reference by identifier only is present, and so is one by display only', async () => {
    expect(await found('Observation?subject:missing=false')).toEqual(named('byReference', 'byIdentifier', 'byDisplay'));
    expect(await found('Observation?subject:missing=true')).toEqual(named('none'));
    expect(await found('Observation?subject:identifier=urn:hkid|A1234563')).toEqual(named('byIdentifier'));
  });

  it('a concept with text only is present', async () => {
    expect(await found('Observation?code:missing=true')).toEqual([]);
    expect(await found('Observation?code:missing=false')).toEqual(named('byReference', 'byIdentifier', 'byDisplay', 'none'));
    expect(await found('Observation?code:text=heart')).toEqual(named('byIdentifier'));
    expect(await found('Observation?code:missing=false&code:text=heart')).toEqual(named('byIdentifier'));
  });
});
