import { expect, it } from 'vitest';
import { describeEachStore } from '../store/stores.js';
import { useServer } from './harness.js';

/** _include and _revinclude forms beyond the plain one, and result parameters this server does not act on: said, never silently ignored. */

type Json = Record<string, any>;
const ids = (bundle: Json, mode: 'match' | 'include') => (bundle.entry ?? []).filter((e: Json) => e.search.mode === mode).map((e: Json) => `${e.resource.resourceType}/${e.resource.id}`).sort();
const warnings = (bundle: Json): string[] => (bundle.entry ?? []).filter((e: Json) => e.search.mode === 'outcome').flatMap((e: Json) => e.resource.issue.map((i: Json) => `${i.severity}:${i.expression?.[0]}`));
const self = (bundle: Json): string => bundle.link.find((l: Json) => l.relation === 'self').url;

describeEachStore('search includes and result parameters', (open) => {
  const server = useServer(open);
  let patient = '';
  let encounter = '';
  let condition = '';
  /** chain[0] is about the patient; chain[i] has chain[i + 1] as its member. */
  const chain: string[] = [];

  it('loads a patient, an encounter, a condition and a chain of twelve observations', async () => {
    patient = (await server.create({ resourceType: 'Patient', name: [{ family: 'Includes' }] })).id;
    encounter = (await server.create({ resourceType: 'Encounter', status: 'finished', class: { code: 'AMB' }, subject: { reference: `Patient/${patient}` } })).id;
    condition = (await server.create({ resourceType: 'Condition', subject: { reference: `Patient/${patient}` }, encounter: { reference: `Encounter/${encounter}` } })).id;
    let member: string | undefined;
    for (let i = 11; i >= 0; i--) {
      const observation: Json = { resourceType: 'Observation', status: 'final', code: { text: `link ${i}` } };
      if (i === 0) observation.subject = { reference: `Patient/${patient}` };
      if (member) observation.hasMember = [{ reference: `Observation/${member}` }];
      const created = (await server.create(observation)).id;
      chain.unshift(created);
      member = created;
    }
  });

  const search = async (query: string, headers: Record<string, string> = {}) => server.request({ method: 'GET', url: `/fhir/${query}`, headers });

  it('_revinclude=Type:* brings every resource of that type that refers to a match, by any of its reference parameters', async () => {
    const bundle = (await search(`Patient?_id=${patient}&_revinclude=Condition:*`)).json();
    expect(ids(bundle, 'include')).toEqual([`Condition/${condition}`]);
    expect(warnings(bundle)).toEqual([]);
    // Condition refers to the encounter by `encounter`, and to nothing else of it.
    expect(ids((await search(`Encounter?_id=${encounter}&_revinclude=Condition:*`)).json(), 'include')).toEqual([`Condition/${condition}`]);
    expect(ids((await search(`Patient?_id=${patient}&_revinclude=Observation:*`)).json(), 'include')).toEqual([`Observation/${chain[0]}`]);
    // A target type narrows it.
    expect(ids((await search(`Encounter?_id=${encounter}&_revinclude=Condition:*:Patient`)).json(), 'include')).toEqual([]);
  });

  it('_revinclude=* is not run, and the searchset says so (strict: 400)', async () => {
    const bundle = (await search(`Patient?_id=${patient}&_revinclude=*`)).json();
    expect(ids(bundle, 'match')).toEqual([`Patient/${patient}`]);
    expect(ids(bundle, 'include')).toEqual([]);
    expect(warnings(bundle)).toEqual(['warning:_revinclude']);
    expect(self(bundle)).not.toContain('_revinclude');
    const strict = await search(`Patient?_id=${patient}&_revinclude=*`, { prefer: 'handling=strict' });
    expect(strict.statusCode).toBe(400);
    expect(strict.json().issue[0].diagnostics).toMatch(/_revinclude=\*/);
  });

  it(':iterate (and its R3 name :recurse) follows a chain eight rounds beyond the first, and says where it stopped', async () => {
    const short = (await search(`Observation?_id=${chain[7]}&_include:iterate=Observation:has-member`)).json();
    expect(ids(short, 'include')).toEqual(chain.slice(8).map((id) => `Observation/${id}`).sort());
    expect(warnings(short)).toEqual([]);

    for (const modifier of ['iterate', 'recurse']) {
      const long = (await search(`Observation?_id=${chain[0]}&_include:${modifier}=Observation:has-member`)).json();
      // The first round and eight more: chain[1] … chain[9].
      expect(ids(long, 'include')).toEqual(chain.slice(1, 10).map((id) => `Observation/${id}`).sort());
      expect(warnings(long)).toEqual(['warning:_include:iterate']);
      expect(self(long)).toContain(`_include%3A${modifier}`);
    }
  });

  it('unknown _include modifiers, _contained, _containedType and _type on a type search are reported, left out of the self link, and 400 under strict', async () => {
    const cases: [string, string][] = [
      ['_include:everything=Observation:subject', '_include:everything'],
      ['_revinclude:deep=Observation:subject', '_revinclude:deep'],
      ['_contained=true', '_contained'],
      ['_contained=both', '_contained'],
      ['_containedType=contained', '_containedType'],
      ['_type=Observation', '_type'],
    ];
    for (const [parameter, name] of cases) {
      const bundle = (await search(`Patient?_id=${patient}&${parameter}`)).json();
      expect(ids(bundle, 'match'), parameter).toEqual([`Patient/${patient}`]);
      expect(ids(bundle, 'include'), parameter).toEqual([]);
      expect(warnings(bundle), parameter).toEqual([`warning:${name}`]);
      expect(self(bundle), parameter).not.toContain(encodeURIComponent(name));
      const strict = await search(`Patient?_id=${patient}&${parameter}`, { prefer: 'handling=strict' });
      expect(strict.statusCode, parameter).toBe(400);
      expect(strict.json().issue[0].expression, parameter).toEqual([name]);
    }
    // What is used stays quiet: _contained=false is the default, _type belongs to system searches.
    expect(warnings((await search(`Patient?_id=${patient}&_contained=false`)).json())).toEqual([]);
    const system = (await server.request({ method: 'GET', url: `/fhir?_type=Patient&_id=${patient}` })).json();
    expect(ids(system, 'match')).toEqual([`Patient/${patient}`]);
    expect(warnings(system)).toEqual([]);
    expect(self(system)).toContain('_type=Patient');
  });
});
