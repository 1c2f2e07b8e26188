import { expect, it } from 'vitest';
import { describeEachStore } from '../store/stores.js';
import { FHIR_JSON, outcomeOf, useServer } from './harness.js';

/**
 * A choice element (value[x], effective[x], onset[x], deceased[x] …) holds one type: two at
 * once are a 400 naming the element, wherever it is (a component, an extension, a contained
 * or bundled resource), and nothing is stored.
 */

type Json = Record<string, unknown>;

const observation = (extra: Json): Json => ({ resourceType: 'Observation', status: 'final', code: { text: 'pulse' }, ...extra });

describeEachStore('choice elements', (open) => {
  const server = useServer(open);

  const post = (resource: Json) => server.request({ method: 'POST', url: `/fhir/${String(resource.resourceType)}`, headers: FHIR_JSON, payload: resource });

  async function count(type: string): Promise<number> {
    return (await server.request({ method: 'GET', url: `/fhir/${type}?_summary=count` })).json().total;
  }

  async function expectRefused(resource: Json, expressions: string[]): Promise<void> {
    const res = await post(resource);
    expect(res.statusCode, res.body).toBe(400);
    const outcome = outcomeOf(res);
    expect(outcome.expressions).toEqual(expressions);
    expect(new Set(outcome.codes)).toEqual(new Set(['structure']));
  }

  it('two types of one choice element give 400 naming the element, and store nothing', async () => {
    const before = [await count('Observation'), await count('Patient'), await count('Condition')];
    const res = await post(observation({ valueString: 'a', valueBoolean: true }));
    expect(res.statusCode, res.body).toBe(400);
    expect(outcomeOf(res).text).toBe('Only one type of value[x] may be present, not both valueString and valueBoolean (at Observation.value)');
    await expectRefused(observation({ effectiveDateTime: '2024-01-01', effectivePeriod: { start: '2024-01-01' }, valueQuantity: { value: 1 } }), ['Observation.effective']);
    await expectRefused({ resourceType: 'Patient', deceasedBoolean: false, deceasedDateTime: '2024-01-01', multipleBirthBoolean: true, multipleBirthInteger: 2 }, ['Patient.deceased', 'Patient.multipleBirth']);
    await expectRefused({ resourceType: 'Condition', subject: { reference: 'Patient/x' }, onsetDateTime: '2020', onsetString: 'childhood' }, ['Condition.onset']);
    // An extension's value of another type (_valueBoolean) counts as a second type.
    await expectRefused(observation({ valueString: 'a', _valueBoolean: { extension: [{ url: 'http://example.org/e', valueCode: 'x' }] } }), ['Observation.value']);
    expect([await count('Observation'), await count('Patient'), await count('Condition')]).toEqual(before);
  });

  it('at any depth: components, extensions in extensions, contained resources, bundle entries', async () => {
    await expectRefused(observation({ component: [{ code: { text: 'a' }, valueQuantity: { value: 1 } }, { code: { text: 'b' }, valueQuantity: { value: 2 }, valueString: 'two' }] }), ['Observation.component[1].value']);
    const extension = { url: 'http://example.org/outer', extension: [{ url: 'inner', valueString: 'a', valueCode: 'b' }] };
    await expectRefused({ resourceType: 'Patient', extension: [extension], modifierExtension: [{ url: 'http://example.org/m', valueBoolean: true, valueInteger: 1 }] }, [
      'Patient.extension[0].extension[0].value',
      'Patient.modifierExtension[0].value',
    ]);
    await expectRefused(observation({ contained: [{ resourceType: 'Patient', id: 'p', deceasedBoolean: true, deceasedDateTime: '2024' }] }), ['Observation.contained[0].deceased']);
    const batch = await server.request({
      method: 'POST',
      url: '/fhir',
      headers: FHIR_JSON,
      payload: { resourceType: 'Bundle', type: 'batch', entry: [{ request: { method: 'POST', url: 'Observation' }, resource: observation({ valueString: 'a', valueInteger: 1 }) }] },
    });
    const response = batch.json().entry[0].response;
    expect(response.status).toMatch(/^400/);
    expect(response.outcome.issue[0].expression).toEqual(['Observation.value']);
  });

  it('updates, patches and $validate are held to the same rule', async () => {
    const stored = (await post(observation({ valueString: 'a' }))).json();
    const url = `/fhir/Observation/${stored.id}`;
    const put = await server.request({ method: 'PUT', url, headers: FHIR_JSON, payload: { ...stored, valueBoolean: true } });
    expect(put.statusCode, put.body).toBe(400);
    const patch = await server.request({ method: 'PATCH', url, headers: { 'content-type': 'application/json-patch+json' }, payload: [{ op: 'add', path: '/valueBoolean', value: true }] });
    expect(patch.statusCode, patch.body).toBe(400);
    expect(outcomeOf(patch).expressions).toEqual(['Observation.value']);
    expect((await server.request({ method: 'GET', url })).json().meta.versionId).toBe('1');
    const validated = await server.request({ method: 'POST', url: '/fhir/Observation/$validate', headers: FHIR_JSON, payload: observation({ valueString: 'a', valueBoolean: true }) });
    expect(validated.statusCode).toBe(200);
    expect(outcomeOf(validated).expressions).toEqual(['Observation.value']);
  });

  it('one type, a value with its own extensions, and separate elements that only look like a choice are accepted', async () => {
    for (const resource of [
      observation({ valueString: 'a', _valueString: { extension: [{ url: 'http://example.org/e', valueCode: 'x' }] }, component: [{ code: { text: 'c' }, valueBoolean: true }] }),
      // ChargeItem.definitionUri and definitionCanonical are two elements, not definition[x].
      { resourceType: 'ChargeItem', status: 'billable', code: { text: 'x' }, subject: { reference: 'Patient/x' }, definitionUri: ['http://example.org/a'], definitionCanonical: ['http://example.org/b'] },
      // So are ClinicalImpression.finding's itemCodeableConcept and itemReference.
      { resourceType: 'ClinicalImpression', status: 'completed', subject: { reference: 'Patient/x' }, finding: [{ itemCodeableConcept: { text: 'x' }, itemReference: { reference: 'Condition/c' } }] },
      { resourceType: 'Device', property: [{ type: { text: 'p' }, valueQuantity: [{ value: 1 }], valueCode: [{ text: 'c' }] }] },
    ]) {
      const res = await post(resource);
      expect(res.statusCode, res.body).toBe(201);
    }
  });
});
