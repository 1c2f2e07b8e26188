import { expect, it } from 'vitest';
import { CareNetwork } from '../../src/access/reach.js';
import type { SearchService } from '../../src/fhir/search/search-service.js';
import { plainJsonCodec } from '../../src/store/codec.js';

/**
 * The care network's set of non-participating patients: read once, then kept up to date from the
 * Patient writes reported to it, and read again when a write's content is not at hand.
 */

function networkOver(stored: Set<string>) {
  const reads = { count: 0 };
  let gate: Promise<void> = Promise.resolve();
  const searches = {
    find: async (type: string) => {
      expect(type).toBe('Patient');
      reads.count++;
      const answer = [...stored].map((id) => ({ id }));
      await gate;
      return answer;
    },
  } as unknown as SearchService;
  const hold = () => {
    let release!: () => void;
    gate = new Promise((resolve) => (release = resolve));
    return release;
  };
  return { network: new CareNetwork(searches, plainJsonCodec, 'http://fhir.test/fhir'), reads, hold };
}

it('keeps the set across writes that change nobody, updates it from written Patients, and reads again after a transaction', async () => {
  const stored = new Set(['withdrawn-1']);
  const { network, reads } = networkOver(stored);
  const first = await network.nonParticipating();
  expect([...first]).toEqual(['withdrawn-1']);

  network.changed('Patient', 'active-1', { resourceType: 'Patient', id: 'active-1', active: true });
  network.changed('Observation', 'o1', { resourceType: 'Observation', id: 'o1' });
  expect(await network.nonParticipating()).toBe(first);

  network.changed('Patient', 'active-1', { resourceType: 'Patient', id: 'active-1', active: false });
  expect([...(await network.nonParticipating())].sort()).toEqual(['active-1', 'withdrawn-1']);
  network.changed('Patient', 'withdrawn-1', { resourceType: 'Patient', id: 'withdrawn-1', active: true });
  network.changed('Patient', 'active-1', null);
  expect([...(await network.nonParticipating())]).toEqual([]);
  expect(reads.count).toBe(1);

  // A committed transaction reports its writes without their content: read again.
  stored.add('withdrawn-2');
  network.changed('Patient', 'withdrawn-2');
  expect([...(await network.nonParticipating())].sort()).toEqual(['withdrawn-1', 'withdrawn-2']);
  expect(reads.count).toBe(2);
});

it('does not keep a set read while a Patient was written', async () => {
  const stored = new Set<string>();
  const { network, reads, hold } = networkOver(stored);
  const release = hold();
  const reading = network.nonParticipating();
  stored.add('late');
  network.changed('Patient', 'late', { resourceType: 'Patient', id: 'late', active: false });
  release();
  expect([...(await reading)]).toEqual([]);
  expect([...(await network.nonParticipating())]).toEqual(['late']);
  expect(reads.count).toBe(2);
});
