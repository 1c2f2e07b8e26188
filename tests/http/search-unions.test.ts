import { expect, it } from 'vitest';
import { describeEachStore } from '../store/stores.js';
import { useServer } from './harness.js';

/**
 * Parameters that are unions of others (Observation `combo-*`: the Observation's own value or a
 * component's) or the same as another (Patient `phonetic` is `name`; on Practitioner `name` is
 * `phonetic`) are not indexed under their own names: searches on them read the other
 * parameters' entries, and must find exactly what a parameter of their own would.
 */

const ids = (bundle: any) => bundle.entry?.filter((e: any) => e.search.mode === 'match').map((e: any) => e.resource.id).sort() ?? [];
const loinc = (code: string, display: string) => ({ coding: [{ system: 'http://loinc.org', code, display }] });
const mmHg = (value: number) => ({ value, unit: 'mmHg', system: 'http://unitsofmeasure.org', code: 'mm[Hg]' });
const concept = (code: string) => ({ coding: [{ system: 'http://snomed.info/sct', code }] });

describeEachStore('search on union parameters', (open) => {
  const server = useServer(open);
  const id: Record<string, string> = {};
  const search = async (query: string) => {
    const response = await server.request({ method: 'GET', url: query.startsWith('?') ? `/fhir${query}` : `/fhir/${query}` });
    expect(response.statusCode, query).toBe(200);
    return response.json();
  };
  const found = async (query: string) => ids(await search(query));
  const named = (...keys: string[]) => keys.map((k) => id[k]!).sort();

  it('loads observations with values of their own, in components, and in both', async () => {
    const made = {
      // Blood pressure: the values are in the components only.
      pressure: { code: loinc('85354-9', 'Blood pressure panel'), component: [{ code: loinc('8480-6', 'Systolic blood pressure'), valueQuantity: mmHg(142) }, { code: loinc('8462-4', 'Diastolic blood pressure'), valueQuantity: mmHg(91) }] },
      // A value of its own, nothing in components.
      systolic: { code: loinc('8480-6', 'Systolic blood pressure'), valueQuantity: mmHg(118) },
      // A coded value of its own and a coded component.
      coded: { code: loinc('72166-2', 'Tobacco smoking status'), valueCodeableConcept: concept('8517006'), component: [{ code: loinc('11367-0', 'History of tobacco use'), valueCodeableConcept: concept('266919005') }] },
      // Neither value nor components: only absent data.
      absent: { code: loinc('8310-5', 'Body temperature'), dataAbsentReason: concept('asked-unknown') },
    };
    for (const [key, body] of Object.entries(made)) id[key] = (await server.create({ resourceType: 'Observation', status: 'final', ...body })).id;
    id.chan = (await server.create({ resourceType: 'Patient', name: [{ family: 'Chan', given: ['Siu Ming'] }] })).id;
    id.wong = (await server.create({ resourceType: 'Patient', name: [{ family: 'Wong', given: ['Ka Yan'] }] })).id;
    id.drChan = (await server.create({ resourceType: 'Practitioner', name: [{ family: 'Chan', given: ['Tai Man'] }] })).id;
  });

  it('combo-code finds the code and the component codes, with :text and :not', async () => {
    expect(await found('Observation?combo-code=8480-6')).toEqual(named('pressure', 'systolic'));
    expect(await found('Observation?combo-code=http://loinc.org|11367-0')).toEqual(named('coded'));
    expect(await found('Observation?combo-code:text=diastolic')).toEqual(named('pressure'));
    expect(await found('Observation?combo-code:not=8480-6')).toEqual(named('coded', 'absent'));
    // code alone does not look at components.
    expect(await found('Observation?code=8480-6')).toEqual(named('systolic'));
  });

  it('combo-value-quantity and combo-code-value-quantity find own and component values', async () => {
    expect(await found('Observation?value-quantity=gt140')).toEqual([]);
    expect(await found('Observation?combo-value-quantity=gt140')).toEqual(named('pressure'));
    expect(await found('Observation?combo-value-quantity=lt120')).toEqual(named('pressure', 'systolic'));
    // Each criterion on its own: 142 is above 100 and 91 below 120.
    expect(await found('Observation?combo-value-quantity=gt100&combo-value-quantity=lt120')).toEqual(named('pressure', 'systolic'));
    expect(await found('Observation?combo-value-quantity=gt140&combo-value-quantity=lt95')).toEqual(named('pressure'));
    expect(await found('Observation?combo-value-quantity=gt140&combo-value-quantity=lt90')).toEqual([]);
    expect(await found('Observation?combo-code-value-quantity=8480-6$gt130')).toEqual(named('pressure'));
    expect(await found('Observation?combo-code-value-quantity=8480-6$lt130')).toEqual(named('systolic'));
    // A code from one component and a value from the other is no match.
    expect(await found('Observation?combo-code-value-quantity=8462-4$gt130')).toEqual([]);
  });

  it(':missing on a union is missing from every part', async () => {
    expect(await found('Observation?combo-value-concept:missing=false')).toEqual(named('coded'));
    expect(await found('Observation?combo-value-quantity:missing=true')).toEqual(named('coded', 'absent'));
    expect(await found('Observation?combo-data-absent-reason:missing=false')).toEqual(named('absent'));
    expect(await found('Observation?combo-code-value-concept=11367-0$266919005')).toEqual(named('coded'));
    expect(await found('Observation?combo-code-value-concept:missing=true')).toEqual(named('pressure', 'systolic', 'absent'));
  });

  it('sorts by a union as by a parameter of its own, and counts exactly', async () => {
    const sorted = await search('Observation?combo-value-quantity:missing=false&_sort=-combo-value-quantity');
    // Descending sorts by each resource's highest value: 142 (pressure), then 118.
    expect(sorted.entry.map((e: any) => e.resource.id)).toEqual([id.pressure, id.systolic]);
    expect((await search('Observation?combo-code=8480-6&_summary=count')).total).toBe(2);
  });

  it('phonetic on Patient and name on Practitioner find what name and phonetic do', async () => {
    expect(await found('Patient?phonetic=chan')).toEqual(named('chan'));
    expect(await found('Patient?phonetic=chan')).toEqual(await found('Patient?name=chan'));
    expect(await found('Practitioner?name=tai')).toEqual(named('drChan'));
    expect(await found('Practitioner?name:exact=Chan')).toEqual(named('drChan'));
    expect(await found('Practitioner?name:missing=true')).toEqual([]);
    // One system search over both types: each type reads its own parameter's entries.
    const both = await search('?_type=Patient,Practitioner&name=chan');
    expect(both.entry.map((e: any) => `${e.resource.resourceType}/${e.resource.id}`).sort()).toEqual([`Patient/${id.chan}`, `Practitioner/${id.drChan}`].sort());
    // A chain into a union.
    const observed = await server.create({ resourceType: 'Observation', status: 'final', code: loinc('8867-4', 'Heart rate'), performer: [{ reference: `Practitioner/${id.drChan}` }] });
    expect(await found('Observation?performer:Practitioner.name=tai')).toEqual([observed.id]);
  });
});
