import { expect, it } from 'vitest';
import { describeEachStore } from '../store/stores.js';
import { FHIR_JSON, outcomeOf, useServer } from './harness.js';

const HKID = 'http://www.immd.gov.hk/hkid';
const withHkid = (value: string, extra: Record<string, unknown> = {}) => ({
  resourceType: 'Patient',
  identifier: [{ system: HKID, value }],
  ...extra,
});

describeEachStore('conditional operations', (open) => {
  const server = useServer(open);
  const query = (value: string) => `identifier=${encodeURIComponent(`${HKID}|${value}`)}`;

  it('If-None-Exist creates when nothing matches, returns the match (200) when one does, 412 when several do', async () => {
    const first = await server.request({ method: 'POST', url: '/fhir/Patient', headers: { ...FHIR_JSON, 'if-none-exist': query('A123456(3)') }, payload: withHkid('A123456(3)') });
    expect(first.statusCode).toBe(201);
    const again = await server.request({ method: 'POST', url: '/fhir/Patient', headers: { ...FHIR_JSON, 'if-none-exist': query('A123456(3)') }, payload: withHkid('A123456(3)', { active: true }) });
    expect(again.statusCode).toBe(200);
    expect(again.json().id).toBe(first.json().id);
    expect(again.json().active).toBeUndefined();

    await server.create(withHkid('DUP-1'));
    await server.create(withHkid('DUP-1'));
    const many = await server.request({ method: 'POST', url: '/fhir/Patient', headers: { ...FHIR_JSON, 'if-none-exist': query('DUP-1') }, payload: withHkid('DUP-1') });
    expect(many.statusCode).toBe(412);
  });

  it('identifier criteria: value alone, system|value, |value for no system, and OR with commas', async () => {
    const noSystem = await server.create({ resourceType: 'Patient', identifier: [{ value: 'LOCAL-9' }] });
    const sys = await server.create(withHkid('LOCAL-9'));
    const exists = async (criteria: string) =>
      (await server.request({ method: 'POST', url: '/fhir/Patient', headers: { ...FHIR_JSON, 'if-none-exist': criteria, prefer: 'return=minimal' }, payload: { resourceType: 'Patient' } })).statusCode;
    expect(await exists('identifier=LOCAL-9')).toBe(412); // both match
    expect(await exists(`identifier=${encodeURIComponent('|LOCAL-9')}`)).toBe(200);
    expect(await exists(query('LOCAL-9'))).toBe(200);
    expect(await exists(`_id=${noSystem.id}&identifier=LOCAL-9`)).toBe(200);
    expect(await exists(`_id=${noSystem.id},${sys.id}`)).toBe(412);
    expect(await exists(`identifier=${encodeURIComponent(`${HKID}|`)}`)).toBe(412); // any value in the system
  });

  it('a conditional create with unsupported or malformed criteria is refused, not ignored', async () => {
    const unsupported = await server.request({ method: 'POST', url: '/fhir/Patient', headers: { ...FHIR_JSON, 'if-none-exist': 'nickname=chan' }, payload: withHkid('X') });
    expect(unsupported.statusCode).toBe(400);
    expect(outcomeOf(unsupported).expressions).toEqual(['nickname']);
    const badDate = await server.request({ method: 'POST', url: '/fhir/Patient', headers: { ...FHIR_JSON, 'if-none-exist': 'birthdate=someday' }, payload: withHkid('X') });
    expect(badDate.statusCode).toBe(400);
    expect(outcomeOf(badDate).expressions).toEqual(['birthdate']);
    const malformed = await server.request({ method: 'POST', url: '/fhir/Patient', headers: { ...FHIR_JSON, 'if-none-exist': 'identifier=a|b|c' }, payload: withHkid('X') });
    expect(malformed.statusCode).toBe(400);
  });

  it('conditional update: creates when nothing matches, updates the one match, 412 on several', async () => {
    const created = await server.request({ method: 'PUT', url: `/fhir/Patient?${query('UPD-1')}`, headers: FHIR_JSON, payload: withHkid('UPD-1', { gender: 'female' }) });
    expect(created.statusCode).toBe(201);
    const id = created.json().id;
    const updated = await server.request({ method: 'PUT', url: `/fhir/Patient?${query('UPD-1')}`, headers: FHIR_JSON, payload: withHkid('UPD-1', { gender: 'male' }) });
    expect(updated.statusCode).toBe(200);
    expect(updated.json().id).toBe(id);
    expect(updated.json().meta.versionId).toBe('2');

    const wrongId = await server.request({ method: 'PUT', url: `/fhir/Patient?${query('UPD-1')}`, headers: FHIR_JSON, payload: withHkid('UPD-1', { id: 'someone-else' }) });
    expect(wrongId.statusCode).toBe(400);

    await server.create(withHkid('UPD-2'));
    await server.create(withHkid('UPD-2'));
    const many = await server.request({ method: 'PUT', url: `/fhir/Patient?${query('UPD-2')}`, headers: FHIR_JSON, payload: withHkid('UPD-2') });
    expect(many.statusCode).toBe(412);
    expect((await server.request({ method: 'PUT', url: '/fhir/Patient', headers: FHIR_JSON, payload: withHkid('UPD-3') })).statusCode).toBe(400);
  });

  it('conditional delete: deletes the one match, does nothing on none, 412 on several', async () => {
    const target = await server.create(withHkid('DEL-1'));
    const del = await server.request({ method: 'DELETE', url: `/fhir/Patient?${query('DEL-1')}` });
    expect(del.statusCode).toBe(204);
    expect((await server.request({ method: 'GET', url: `/fhir/Patient/${target.id}` })).statusCode).toBe(410);
    expect((await server.request({ method: 'DELETE', url: `/fhir/Patient?${query('DEL-1')}` })).statusCode).toBe(204);

    const a = await server.create(withHkid('DEL-2'));
    const b = await server.create(withHkid('DEL-2'));
    expect((await server.request({ method: 'DELETE', url: `/fhir/Patient?${query('DEL-2')}` })).statusCode).toBe(412);
    expect((await server.request({ method: 'GET', url: `/fhir/Patient/${a.id}` })).statusCode).toBe(200);
    expect((await server.request({ method: 'GET', url: `/fhir/Patient/${b.id}` })).statusCode).toBe(200);

    // Without criteria a conditional delete would mean "everything": refused.
    expect((await server.request({ method: 'DELETE', url: '/fhir/Patient' })).statusCode).toBe(400);
    expect((await server.request({ method: 'DELETE', url: '/fhir/Patient?_format=json' })).statusCode).toBe(400);
  });

  it('conditional criteria use the full search: any parameter, chains included', async () => {
    const p = await server.create(withHkid('FULL-1', { name: [{ family: 'Cheung', given: ['Ka Yan'] }], birthDate: '1990-05-06' }));
    const criteria = 'name=cheung&birthdate=1990-05';
    const again = await server.request({ method: 'POST', url: '/fhir/Patient', headers: { ...FHIR_JSON, 'if-none-exist': criteria }, payload: withHkid('FULL-1') });
    expect(again.statusCode).toBe(200);
    expect(again.json().id).toBe(p.id);
    const obs = { resourceType: 'Observation', status: 'final', code: { text: 'x' }, subject: { reference: `Patient/${p.id}` } };
    await server.create(obs);
    const chained = await server.request({ method: 'DELETE', url: `/fhir/Observation?subject:Patient.name=cheung` });
    expect(chained.statusCode).toBe(204);
    expect((await server.request({ method: 'DELETE', url: `/fhir/Observation?subject:Patient.name=cheung` })).statusCode).toBe(204);
  });

  it('updating an identifier moves the resource out of and into matches', async () => {
    const p = await server.create(withHkid('MOVE-1'));
    await server.request({ method: 'PUT', url: `/fhir/Patient/${p.id}`, headers: FHIR_JSON, payload: { ...p, identifier: [{ system: HKID, value: 'MOVE-2' }] } });
    const old = await server.request({ method: 'POST', url: '/fhir/Patient', headers: { ...FHIR_JSON, 'if-none-exist': query('MOVE-1') }, payload: withHkid('MOVE-1') });
    expect(old.statusCode).toBe(201);
    const moved = await server.request({ method: 'POST', url: '/fhir/Patient', headers: { ...FHIR_JSON, 'if-none-exist': query('MOVE-2') }, payload: withHkid('MOVE-2') });
    expect(moved.statusCode).toBe(200);
    expect(moved.json().id).toBe(p.id);
  });
});
