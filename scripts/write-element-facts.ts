import { writeFileSync } from 'node:fs';
import { extractElementFacts } from '../src/fhir/definitions.js';

/** Regenerates src/fhir/element-facts.json from the published R4 StructureDefinitions. */
writeFileSync(new URL('../src/fhir/element-facts.json', import.meta.url), `${JSON.stringify(extractElementFacts())}\n`);
console.log('wrote src/fhir/element-facts.json');
