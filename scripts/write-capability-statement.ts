import { writeFileSync } from 'node:fs';
import { serverCapabilityStatement } from '../src/capability-statement.js';
import { software } from '../src/software.js';

/** Regenerates capability-statement.json from what the server implements. */
const target = new URL('../capability-statement.json', import.meta.url);
writeFileSync(target, `${JSON.stringify(serverCapabilityStatement(software), null, 2)}\n`);
console.log(`wrote ${target.pathname}`);
