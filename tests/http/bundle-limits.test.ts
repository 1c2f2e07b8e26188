import { expect, it } from 'vitest';
import { describeEachStore } from '../store/stores.js';
import { FHIR_JSON, outcomeOf, useServer } from './harness.js';

/** Bundles have a body limit of their own, separate from (and larger than) the single-resource one. */

const SINGLE_LIMIT = 4_000;
const BUNDLE_LIMIT = 40_000;

const patients = (n: number) => ({
  resourceType: 'Bundle',
  type: 'batch',
  entry: Array.from({ length: n }, (_, i) => ({ request: { method: 'POST', url: 'Patient' }, resource: { resourceType: 'Patient', name: [{ family: `Limit-${i}`, given: ['Tai', 'Man'] }] } })),
});

describeEachStore('bundle body limit', (open) => {
  const server = useServer(open, { bodyLimit: SINGLE_LIMIT, bundleBodyLimit: BUNDLE_LIMIT, recorders: [] });

  it('a bundle above the single-resource limit is accepted up to the bundle limit; beyond it a 413 with an OperationOutcome', async () => {
    const fits = patients(100);
    expect(JSON.stringify(fits).length).toBeGreaterThan(SINGLE_LIMIT);
    expect(JSON.stringify(fits).length).toBeLessThan(BUNDLE_LIMIT);
    const accepted = await server.request({ method: 'POST', url: '/fhir', headers: FHIR_JSON, payload: fits });
    expect(accepted.statusCode, accepted.body.slice(0, 300)).toBe(200);
    expect(accepted.json().entry).toHaveLength(100);

    const tooLarge = await server.request({ method: 'POST', url: '/fhir', headers: FHIR_JSON, payload: patients(1000) });
    expect(tooLarge.statusCode).toBe(413);
    expect(outcomeOf(tooLarge).codes).toHaveLength(1);

    // A single resource still has its own, smaller limit.
    const single = await server.request({ method: 'POST', url: '/fhir/Patient', headers: FHIR_JSON, payload: { resourceType: 'Patient', name: [{ family: 'x'.repeat(SINGLE_LIMIT) }] } });
    expect(single.statusCode).toBe(413);
  });
});
