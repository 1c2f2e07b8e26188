import { expect, it } from 'vitest';
import { describeEachStore } from '../store/stores.js';
import { useServer } from './harness.js';

/** Value forms an exploratory probe found answered wrongly: a quantity's human unit, :of-type where there is no type, a bad :missing value. */

type Json = Record<string, any>;
const ids = (bundle: Json) => (bundle.entry ?? []).filter((e: Json) => e.search.mode === 'match').map((e: Json) => e.resource.id).sort();

describeEachStore('search value edges', (open) => {
  const server = useServer(open);
  let coded = '';
  let unitOnly = '';

  it('loads a quantity with a UCUM code and a different human unit, and one with a unit only', async () => {
    const observation = (valueQuantity: Json) => ({ resourceType: 'Observation', status: 'final', code: { text: 'dose' }, valueQuantity });
    coded = (await server.create(observation({ value: 5.4, unit: 'milligram', system: 'http://unitsofmeasure.org', code: 'mg' }))).id;
    unitOnly = (await server.create(observation({ value: 5.4, unit: 'tablet' }))).id;
  });

  it('value||unit matches Quantity.code or Quantity.unit', async () => {
    const search = async (value: string) => ids((await server.request({ method: 'GET', url: `/fhir/Observation?value-quantity=${encodeURIComponent(value)}` })).json());
    expect(await search('5.4||milligram')).toEqual([coded]);
    expect(await search('5.4||mg')).toEqual([coded]);
    expect(await search('5.4||tablet')).toEqual([unitOnly]);
    expect(await search('5.4')).toEqual([coded, unitOnly].sort());
    // With a system, only the coded unit counts.
    expect(await search('5.4|http://unitsofmeasure.org|mg')).toEqual([coded]);
    expect(await search('5.4|http://unitsofmeasure.org|milligram')).toEqual([]);
    // UCUM conversion still applies to the code: 5.4 mg is 0.0054 g.
    expect(await search('0.0054|http://unitsofmeasure.org|g')).toEqual([coded]);
    expect(await search('5.4||gram')).toEqual([]);
    expect(await search('gt6||milligram')).toEqual([]);
  });

  it(':of-type on a token parameter that holds no Identifier is refused, not answered with nothing', async () => {
    const res = await server.request({ method: 'GET', url: '/fhir/Observation?code:of-type=http://terminology.hl7.org/CodeSystem/v2-0203|MR|123' });
    expect(res.statusCode).toBe(400);
    expect(res.json().issue[0].expression).toEqual(['code:of-type']);
    const identifier = await server.request({ method: 'GET', url: '/fhir/Patient?identifier:of-type=http://terminology.hl7.org/CodeSystem/v2-0203|MR|123' });
    expect(identifier.statusCode).toBe(200);
  });

  it(':missing with a value other than true or false names the parameter as sent', async () => {
    const res = await server.request({ method: 'GET', url: '/fhir/Patient?name:missing=maybe' });
    expect(res.statusCode).toBe(400);
    expect(res.json().issue[0].diagnostics).toBe("Parameter 'name:missing' takes true or false");
  });
});
