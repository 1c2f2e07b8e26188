import { expect, it } from 'vitest';
import { parameterCriterion, type CriteriaContext } from '../../../src/fhir/search/criteria.js';
import { withValueLists } from '../../../src/fhir/search/values.js';
import type { FieldTest } from '../../../src/store/port.js';

/** Values that differ only in the code or id they name are one list, not an OR of each. */

const context: CriteriaContext = { baseUrl: 'http://fhir.test/fhir', valueSetCodes: async () => undefined };
const eq = (field: FieldTest['field'], value: string, slot: 0 | 1 = 0): FieldTest => ({ slot, field, op: 'eq', value });

it('alternatives naming one value each, alike otherwise, become one naming a list', () => {
  expect(withValueLists([[eq('value', 'a')], [eq('value', 'b')], [eq('value', 'a')]])).toEqual([[{ slot: 0, field: 'value', op: 'in', value: ['a', 'b'] }]]);
  // Per system; one alone keeps its eq; those naming no value stay as they are.
  const lists = withValueLists([
    [eq('system', 'S'), eq('value', 'a')],
    [eq('system', 'T'), eq('value', 'z')],
    [eq('system', 'S'), eq('value', 'b')],
    [eq('system', 'U')],
  ]);
  expect(lists).toEqual([
    [eq('system', 'S'), { slot: 0, field: 'value', op: 'in', value: ['a', 'b'] }],
    [eq('system', 'T'), eq('value', 'z')],
    [eq('system', 'U')],
  ]);
  // Other tests must be the same: an exact string's text differs from value to value.
  const exact = [[eq('value', 'chan'), eq('text', 'Chan')], [eq('value', 'chan'), eq('text', 'CHAN')]];
  expect(withValueLists(exact)).toEqual(exact);
});

it('comma-separated codes and references are searched as lists', async () => {
  const codes = await parameterCriterion('Observation', 'code', 'a,http://loinc.org|b,c,http://loinc.org|d', context);
  expect(codes).toEqual({
    kind: 'entry',
    param: 'code',
    anyOf: [
      [{ slot: 0, field: 'value', op: 'in', value: ['a', 'c'] }],
      [eq('system', 'http://loinc.org'), { slot: 0, field: 'value', op: 'in', value: ['b', 'd'] }],
    ],
  });
  const subjects = await parameterCriterion('Observation', 'subject', 'Patient/1,Patient/2', context);
  expect(subjects).toEqual({ kind: 'entry', param: 'subject', anyOf: [[eq('system', 'Patient'), { slot: 0, field: 'value', op: 'in', value: ['1', '2'] }]] });
});
