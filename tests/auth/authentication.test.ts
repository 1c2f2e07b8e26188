import { randomUUID } from 'node:crypto';
import { SignJWT, UnsecuredJWT } from 'jose';
import { expect, it } from 'vitest';
import { generateSigningKey } from '../../src/auth/keys.js';
import { bearer, TEST_AUDIENCE, TEST_ISSUER, tokenFor } from '../auth-fixture.js';
import { FHIR_JSON, outcomeOf, useServer } from '../http/harness.js';
import { describeEachStore } from '../store/stores.js';

describeEachStore('authentication', (open) => {
  const server = useServer(open);
  const read = (headers: Record<string, string>) => server.request({ method: 'GET', url: '/fhir/Patient?_count=1', headers });

  it('a request without a token gets 401 with an OperationOutcome and WWW-Authenticate', async () => {
    const res = await read({ authorization: '' });
    expect(res.statusCode).toBe(401);
    expect(res.headers['www-authenticate']).toMatch(/^Bearer/);
    expect(outcomeOf(res).codes).toEqual(['login']);
    const malformed = await read({ authorization: 'Basic dXNlcjpwYXNz' });
    expect(malformed.statusCode).toBe(401);
  });

  it('a valid token is accepted', async () => {
    const res = await read(bearer(await tokenFor({ kind: 'registration-office', staffId: 'ro-1' })));
    expect(res.statusCode).toBe(200);
  });

  it('expired, not-yet-valid, wrongly signed, wrong-audience, wrong-issuer and alg:none tokens get 401', async () => {
    const { key } = await import('../auth-fixture.js').then(async (m) => ({ key: await m.testKey() }));
    const base = () => new SignJWT({}).setProtectedHeader({ alg: key.alg, kid: key.kid }).setSubject('registration-office/ro-1').setJti(randomUUID());
    const now = Math.floor(Date.now() / 1000);
    const cases: [string, string, RegExp][] = [
      ['expired', await base().setIssuer(TEST_ISSUER).setAudience(TEST_AUDIENCE).setIssuedAt(now - 7200).setExpirationTime(now - 3600).sign(key.privateKey), /expired/],
      ['not yet valid', await base().setIssuer(TEST_ISSUER).setAudience(TEST_AUDIENCE).setNotBefore(now + 3600).setExpirationTime(now + 7200).sign(key.privateKey), /not valid yet/],
      ['wrong audience', await base().setIssuer(TEST_ISSUER).setAudience('someone-else').setExpirationTime(now + 600).sign(key.privateKey), /audience/],
      ['wrong issuer', await base().setIssuer('https://evil.example').setAudience(TEST_AUDIENCE).setExpirationTime(now + 600).sign(key.privateKey), /issuer/],
      ['no expiry', await base().setIssuer(TEST_ISSUER).setAudience(TEST_AUDIENCE).sign(key.privateKey), /exp/],
      ['alg none', new UnsecuredJWT({ sub: 'registration-office/ro-1' }).setIssuer(TEST_ISSUER).setAudience(TEST_AUDIENCE).setExpirationTime(now + 600).encode(), /algorithm|malformed|signature/],
    ];
    const other = (await generateSigningKey()).key;
    cases.push(['wrongly signed', await tokenFor({ kind: 'registration-office', staffId: 'ro-1' }, { key: { ...other, kid: key.kid } }), /signature/]);
    cases.push(['unknown key', await tokenFor({ kind: 'registration-office', staffId: 'ro-1' }, { key: other }), /signature/]);
    for (const [name, token, why] of cases) {
      const res = await read(bearer(token));
      expect(res.statusCode, name).toBe(401);
      expect(outcomeOf(res).text, name).toMatch(why);
    }
  });

  it('a token naming an account that does not exist gets 401', async () => {
    const res = await read(bearer(await tokenFor({ kind: 'account', practitionerRoleId: 'no-such-account' })));
    expect(res.statusCode).toBe(401);
  });

  it('metadata, SMART discovery and the operation definitions need no token', async () => {
    const metadata = await server.request({ method: 'GET', url: '/fhir/metadata', headers: { authorization: '' } });
    expect(metadata.statusCode).toBe(200);
    expect(metadata.json().rest[0].security.service[0].coding[0].code).toBe('SMART-on-FHIR');
    const smart = await server.request({ method: 'GET', url: '/fhir/.well-known/smart-configuration', headers: { authorization: '' } });
    expect(smart.statusCode).toBe(200);
    expect(smart.json()).toMatchObject({ token_endpoint: 'http://fhir.test/auth/token', grant_types_supported: ['client_credentials'], token_endpoint_auth_methods_supported: ['private_key_jwt'] });
    const definition = await server.request({ method: 'GET', url: '/fhir/OperationDefinition/Patient-register', headers: { authorization: '' } });
    expect(definition.statusCode).toBe(200);
    expect(definition.json()).toMatchObject({ resourceType: 'OperationDefinition', code: 'register', type: true });
  });

  it('system scopes limit a backend client to what they name', async () => {
    const token = bearer(await tokenFor({ kind: 'system', clientId: 'reader', scopes: ['system/Patient.read'] }));
    expect((await server.request({ method: 'GET', url: '/fhir/Patient', headers: token })).statusCode).toBe(200);
    const write = await server.request({ method: 'POST', url: '/fhir/Patient', headers: { ...FHIR_JSON, ...token }, payload: { resourceType: 'Patient' } });
    expect(write.statusCode).toBe(403);
    expect(outcomeOf(write).codes).toEqual(['forbidden']);
    expect((await server.request({ method: 'GET', url: '/fhir/Observation', headers: token })).statusCode).toBe(403);
    const v2 = bearer(await tokenFor({ kind: 'system', clientId: 'v2', scopes: ['system/Observation.cruds'] }));
    expect((await server.request({ method: 'POST', url: '/fhir/Observation', headers: { ...FHIR_JSON, ...v2 }, payload: { resourceType: 'Observation', status: 'final', code: { text: 'x' } } })).statusCode).toBe(201);
  });

  it('principals limited to some types cannot reach other types through includes, _has, chains or compartments', async () => {
    const patient = await server.create({ resourceType: 'Patient' });
    await server.create({ resourceType: 'Observation', status: 'final', code: { text: 'secret' }, subject: { reference: `Patient/${patient.id}` } });
    const reader = bearer(await tokenFor({ kind: 'system', clientId: 'reader', scopes: ['system/Patient.read'] }));
    const office = bearer(await tokenFor({ kind: 'registration-office', staffId: 'ro-1' }));
    const reaching = [
      `/fhir/Patient?_revinclude=Observation:subject`,
      `/fhir/Patient?_revinclude:iterate=Observation:subject`,
      `/fhir/Patient?_has:Observation:subject:code:text=secret`,
      `/fhir/Patient?general-practitioner.name=x`,
      `/fhir/Patient?general-practitioner:Practitioner.name=x`,
      `/fhir/Patient?_include=Patient:general-practitioner`,
      `/fhir/Patient/${patient.id}/Patient?_revinclude=Observation:subject`,
    ];
    for (const headers of [reader, office]) {
      for (const url of reaching) {
        const res = await server.request({ method: 'GET', url, headers });
        expect(res.statusCode, url).toBe(403);
        expect(res.body, url).not.toContain('secret');
      }
      expect((await server.request({ method: 'GET', url: `/fhir/Patient?_id=${patient.id}`, headers })).statusCode).toBe(200);
    }
    // Conditional writes search as well, so the same rule holds for their criteria.
    const officeWrite = { ...FHIR_JSON, ...office };
    const conditionalUpdate = await server.request({ method: 'PUT', url: '/fhir/Patient?_has:Observation:subject:code:text=secret', headers: officeWrite, payload: { resourceType: 'Patient' } });
    expect(conditionalUpdate.statusCode).toBe(403);
    const ifNoneExist = await server.request({ method: 'POST', url: '/fhir/Patient', headers: { ...officeWrite, 'if-none-exist': '_has:Observation:subject:code:text=secret' }, payload: { resourceType: 'Patient' } });
    expect(ifNoneExist.statusCode).toBe(403);
    const conditionalDelete = await server.request({ method: 'DELETE', url: '/fhir/Patient?general-practitioner.name=x', headers: office });
    expect(conditionalDelete.statusCode).toBe(403);
    // A client allowed to read everything may search across types.
    const all = await server.request({ method: 'GET', url: `/fhir/Patient?_id=${patient.id}&_revinclude=Observation:subject` });
    expect(all.json().entry).toHaveLength(2);
  });
});
