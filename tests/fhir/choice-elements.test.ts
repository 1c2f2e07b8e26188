import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { choicePropertiesByDefinition } from '../../src/fhir/choice-elements.js';
import { choiceElementTypes, definitionsPath } from '../../src/fhir/definitions.js';

const definitions = (JSON.parse(readFileSync(definitionsPath('fhir.schema.json'), 'utf8')) as { definitions: Record<string, { properties?: Record<string, unknown> }> }).definitions;
const found = choicePropertiesByDefinition(definitions);

describe('choice elements in the JSON schema', () => {
  it('finds the schema definition of every R4 choice element', () => {
    const placed = new Set<string>();
    for (const [path, types] of Object.entries(choiceElementTypes())) {
      const element = path.split('.').at(-1)!;
      const holders = [...found].filter(([, choices]) => types.every((type) => choices[element + type] === element));
      if (holders.length) placed.add(path);
    }
    expect(Object.keys(choiceElementTypes()).filter((path) => !placed.has(path))).toEqual([]);
  });

  it('places them in the right definitions, and only there', () => {
    expect(found.get('Observation')).toMatchObject({ valueString: 'value', _valueString: 'value', effectivePeriod: 'effective' });
    expect(found.get('Observation_Component')).toMatchObject({ valueQuantity: 'value' });
    expect(found.get('Extension')!.valueCode).toBe('value');
    expect(found.get('Patient')).toMatchObject({ deceasedBoolean: 'deceased', multipleBirthInteger: 'multipleBirth' });
    // Separate elements that only look like the types of one choice element.
    expect(found.get('ChargeItem')!.definitionUri).toBeUndefined();
    for (const lookAlike of ['ClinicalImpression_Finding', 'Device_Property', 'DeviceDefinition_Property']) {
      expect(found.get(lookAlike), lookAlike).toBeUndefined();
    }
  });
});
