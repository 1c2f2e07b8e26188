import { expect, it } from 'vitest';
import { describeEachStore } from '../store/stores.js';
import { outcomeOf, useServer } from './harness.js';

/** How paths and methods a client may send in other spellings are answered. */
describeEachStore('routing', (open) => {
  const server = useServer(open);

  it('OPTIONS on a FHIR path gives 405 with the methods it takes in Allow; an unknown type stays 404', async () => {
    const type = await server.request({ method: 'OPTIONS', url: '/fhir/Patient' });
    expect(type.statusCode).toBe(405);
    expect(type.headers.allow).toBe('POST, PUT, DELETE, GET');
    expect(outcomeOf(type).codes).toEqual(['not-supported']);
    expect((await server.request({ method: 'OPTIONS', url: '/fhir/Patient/123' })).headers.allow).toBe('GET, PUT, PATCH, DELETE');
    expect((await server.request({ method: 'OPTIONS', url: '/fhir' })).headers.allow).toBe('GET, POST');
    // Not even authentication is asked: the answer says nothing about any record.
    expect((await server.request({ method: 'OPTIONS', url: '/fhir/metadata', headers: { authorization: '' } })).statusCode).toBe(405);
    expect((await server.request({ method: 'OPTIONS', url: '/fhir/Spaceship' })).statusCode).toBe(404);
  });

});
