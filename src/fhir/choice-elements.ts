import type { ErrorObject, FuncKeywordDefinition } from 'ajv';
import { choiceElementTypes } from './definitions.js';

/**
 * A choice element (`value[x]`, `effective[x]`, `deceased[x]` …) holds one of its types: an
 * Observation with both `valueString` and `valueBoolean` is not FHIR. The official JSON schema
 * lists each type's property but cannot say "at most one of these", so its definitions are
 * given a keyword of their own that does, and every object the schema validates (components,
 * extensions, contained and bundled resources, at any depth) is checked on the walk the
 * validator makes anyway.
 */

export const CHOICE_KEYWORD = 'fhirChoiceElements';

/** Per property: the choice element it is a type of (`valueString` and `_valueString` → `value`). */
type ChoiceProperties = Record<string, string>;

type SchemaDefinitions = Record<string, { properties?: Record<string, unknown> }>;

type DataCheck = ReturnType<NonNullable<FuncKeywordDefinition['compile']>>;

const capitalized = (name: string) => name.charAt(0).toUpperCase() + name.slice(1);

/**
 * The schema definitions that hold each choice element. A resource's or data type's own
 * elements are in the definition of its name; a backbone element's in `Type_Element` after
 * the element's last name (`Observation.component` → `Observation_Component`), numbered when
 * two share it (`ClaimResponse_Detail1`). A candidate is only taken when it has a property for
 * every type, which also tells apart same-named backbones and leaves out look-alikes such as
 * ClinicalImpression.finding's separate itemCodeableConcept and itemReference.
 */
export function choicePropertiesByDefinition(definitions: SchemaDefinitions): Map<string, ChoiceProperties> {
  const found = new Map<string, ChoiceProperties>();
  for (const [path, types] of Object.entries(choiceElementTypes())) {
    const steps = path.split('.');
    const element = steps.pop()!;
    const names = types.map((type) => element + type);
    const owner = steps.length === 1 ? steps[0]! : `${steps[0]}_${capitalized(steps.at(-1)!)}`;
    const candidates = Object.keys(definitions).filter((name) => name === owner || (steps.length > 1 && name.startsWith(owner) && /^\d+$/.test(name.slice(owner.length))));
    for (const candidate of candidates) {
      const properties = definitions[candidate]!.properties ?? {};
      if (!names.every((name) => name in properties)) continue;
      const choices = found.get(candidate) ?? {};
      for (const name of names) choices[name] = choices[`_${name}`] = element;
      found.set(candidate, choices);
    }
  }
  return found;
}

/** The keyword: its schema value is a definition's ChoiceProperties. */
export const choiceKeyword: FuncKeywordDefinition = {
  keyword: CHOICE_KEYWORD,
  type: 'object',
  schemaType: 'object',
  errors: true,
  compile(choices: ChoiceProperties) {
    const elementOf = new Map(Object.entries(choices));
    const check: DataCheck = (data: Record<string, unknown>) => {
      let seen: Map<string, string> | undefined;
      let errors: Partial<ErrorObject>[] | undefined;
      for (const key in data) {
        const element = elementOf.get(key);
        if (element === undefined) continue;
        seen ??= new Map();
        const first = seen.get(element);
        if (first === undefined) seen.set(element, key);
        // valueString beside _valueString (its id and extensions) is one type, not two.
        else if (first.replace(/^_/, '') !== key.replace(/^_/, '')) {
          (errors ??= []).push({ keyword: CHOICE_KEYWORD, params: { element, properties: [first, key] }, message: `holds more than one type of ${element}[x]` });
          seen.set(element, key);
        }
      }
      check.errors = errors;
      return errors === undefined;
    };
    return check;
  },
};
