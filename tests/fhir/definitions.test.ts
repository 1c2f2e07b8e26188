import { expect, it } from 'vitest';
import { allResourceTypes, extractElementFacts, topLevelElements } from '../../src/fhir/definitions.js';
import elementFacts from '../../src/fhir/element-facts.json' with { type: 'json' };

it('src/fhir/element-facts.json is what the R4 StructureDefinitions say (run `npm run definitions` to refresh)', () => {
  expect(elementFacts).toEqual(extractElementFacts());
});

it('knows the summary and mandatory elements of every R4 resource type', () => {
  expect(allResourceTypes().size).toBe(146);
  for (const type of allResourceTypes()) expect(topLevelElements(type), type).toBeDefined();
  const patient = topLevelElements('Patient')!;
  expect(patient.summary.has('birthDate')).toBe(true);
  expect(patient.summary.has('photo')).toBe(false);
  const observation = topLevelElements('Observation')!;
  expect(observation.mandatory.has('status')).toBe(true);
  expect(observation.summary.has('valueQuantity')).toBe(true);
});
