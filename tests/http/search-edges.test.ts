import { expect, it } from 'vitest';
import { describeEachStore } from '../store/stores.js';
import { useServer } from './harness.js';

/** Edge cases an exploratory probe found: years before 100, :missing on _id and _lastUpdated, a JSON body on POST _search. */

const ids = (bundle: any) => (bundle.entry ?? []).filter((e: any) => e.search.mode === 'match').map((e: any) => e.resource.id).sort();

describeEachStore('search edges', (open) => {
  const server = useServer(open);
  let ancient = '';
  let modern = '';

  it('loads patients born in the year 50 and in 1950', async () => {
    ancient = (await server.create({ resourceType: 'Patient', birthDate: '0050-01-01' })).id;
    modern = (await server.create({ resourceType: 'Patient', birthDate: '1950-01-01' })).id;
  });

  it('reads years 0 to 99 as themselves, not as 1900 to 1999', async () => {
    const search = async (q: string) => ids((await server.request({ method: 'GET', url: `/fhir/Patient?${q}` })).json());
    expect(await search('birthdate=0050')).toEqual([ancient]);
    expect(await search('birthdate=lt1000')).toEqual([ancient]);
    expect(await search('birthdate=1950-01-01')).toEqual([modern]);
    expect(await search('birthdate=0074-12-25')).toEqual([]);
  });

  it('_id:missing and _lastUpdated:missing: every resource has both', async () => {
    const total = async (q: string) => (await server.request({ method: 'GET', url: `/fhir/Patient?${q}&_summary=count` })).json().total;
    expect(await total('_id:missing=true')).toBe(0);
    expect(await total('_id:missing=false')).toBe(2);
    expect(await total('_lastUpdated:missing=true')).toBe(0);
    expect(await total('_lastUpdated:missing=false')).toBe(2);
  });

  it('POST _search with a JSON body is refused (415), not answered unfiltered', async () => {
    const res = await server.request({ method: 'POST', url: '/fhir/Patient/_search', headers: { 'content-type': 'application/fhir+json' }, payload: JSON.stringify({ birthdate: '0050' }) });
    expect(res.statusCode).toBe(415);
    expect(res.json().resourceType).toBe('OperationOutcome');
    const form = await server.request({ method: 'POST', url: '/fhir/Patient/_search', headers: { 'content-type': 'application/x-www-form-urlencoded' }, payload: 'birthdate=0050' });
    expect(ids(form.json())).toEqual([ancient]);
  });
});
