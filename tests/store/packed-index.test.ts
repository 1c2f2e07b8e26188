import { describe, expect, it } from 'vitest';
import type { ResourceIndex } from '../../src/store/port.js';
import { packIndex, unpackIndex } from '../../src/store/sqlite/packed-index.js';

describe('a packed index (for the writer thread)', () => {
  it('unpacks to the index it was packed from, through a structured clone', () => {
    const index: ResourceIndex = {
      entries: [
        { param: 'code', values: [{ system: 'http://loinc.org', value: '8867-4' }] },
        { param: 'status', values: [{ system: null, value: 'final' }] },
        { param: 'code:text', values: [{ value: 'heart rate' }] },
        { param: 'date', values: [{ low: 1685996460000, high: 1685996460999 }] },
        { param: 'value-quantity', values: [{ system: 'http://unitsofmeasure.org', value: '/min', low: 72, high: 72 }] },
        {
          param: 'code-value-quantity',
          values: [
            { system: 'http://loinc.org', value: '8867-4', text: 'Heart rate' },
            { system: 'http://unitsofmeasure.org', value: '/min', low: 71.5, high: 72.5 },
          ],
        },
        { param: 'component', values: [{ value: 'a' }, { value: 'b' }, { low: 1 }] },
      ],
      sortKeys: { date: { min: 1685996460000, max: 1685996460999 }, code: { min: '8867-4', max: '8867-4' } },
      patients: ['p1', 'p2'],
    };
    const unpacked = unpackIndex(structuredClone(packIndex(index)));
    // Fields an entry lacks come back as undefined, which the store treats as absent.
    const withoutUndefined = JSON.parse(JSON.stringify(unpacked)) as ResourceIndex;
    expect(withoutUndefined).toEqual(index);
    expect(unpacked.entries[1]!.values[0].system).toBeNull();
  });

  it('packs an empty index', () => {
    expect(unpackIndex(structuredClone(packIndex({ entries: [], sortKeys: {}, patients: [] })))).toEqual({ entries: [], sortKeys: {}, patients: [] });
  });
});
