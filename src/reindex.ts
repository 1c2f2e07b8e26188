import { accessIndexEntries } from './access/records-of.js';
import { readConfig } from './config.js';
import { reindexAll } from './fhir/search/reindex.js';
import { plainJsonCodec } from './store/codec.js';
import { PATIENT_OWNERSHIP } from './fhir/search/compartments.js';
import { openStore } from './store/open-store.js';

/** `npm run reindex`: rebuilds the search index of the configured store. */
const config = readConfig();
const store = await openStore(config, PATIENT_OWNERSHIP);
const started = Date.now();
const total = await reindexAll(store, plainJsonCodec, {
  ...(config.baseUrl && { localBase: config.baseUrl }),
  derived: accessIndexEntries,
  onProgress: (done) => process.stdout.write(`\rreindexed ${done} resources`),
});
await store.close();
console.log(`\nreindexed ${total} resources in ${((Date.now() - started) / 1000).toFixed(1)} s`);
