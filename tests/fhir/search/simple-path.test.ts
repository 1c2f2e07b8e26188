import { readdirSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import fhirpath from 'fhirpath';
import { expect, it } from 'vitest';
import { searchParameters, splitUnion } from '../../../src/fhir/search/registry.js';
import { compileSimplePath } from '../../../src/fhir/search/simple-path.js';

/**
 * The fast path walker must find exactly what fhirpath.js finds, with the same FHIR types,
 * for every plain-path search parameter expression on every official example.
 */

const require = createRequire(import.meta.url);
const model = require('fhirpath/fhir-context/r4');
const examplesDir = dirname(require.resolve('hl7.fhir.r4.examples/package.json'));

it('agrees with fhirpath.js on every official example', { timeout: 300_000 }, () => {
  let compared = 0;
  const differences: string[] = [];
  for (const file of readdirSync(examplesDir).filter((f) => f.endsWith('.json') && f !== 'package.json')) {
    const resource = JSON.parse(readFileSync(join(examplesDir, file), 'utf8'));
    for (const def of searchParameters(resource.resourceType).values()) {
      // _id's model type is System.String (vs FHIR string): not indexed, so not compared.
      if (!def.expression || def.type === 'composite' || def.code === '_id') continue;
      for (const part of splitUnion(def.expression)) {
        const fast = compileSimplePath(part, resource.resourceType);
        if (!fast) continue;
        const general = part.replace(/\.where\(resolve\(\) is ([A-Za-z]+)\)/g, (_m, t: string) => `.where(reference.matches('(^|/)${t}/[^/]+(/_history/[^/]+)?$'))`);
        const found = fhirpath.evaluate(resource, general, undefined, model, { resolveInternalTypes: false }) as any[];
        const types = (fhirpath.types(found) as string[]).map((t) => t.replace(/^(FHIR|System)\./, ''));
        const expected = found.map((x, i) => JSON.stringify([x && typeof x === 'object' && 'data' in x ? x.data : x, types[i]])).sort();
        const actual = fast(resource).map((v) => JSON.stringify([v.value, v.type])).sort();
        compared++;
        if (JSON.stringify(actual) !== JSON.stringify(expected)) differences.push(`${file} ${def.code}: ${part}`);
      }
    }
  }
  expect(compared).toBeGreaterThan(100_000);
  expect(differences).toEqual([]);
});
