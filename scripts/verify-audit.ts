import { verifyAuditChain } from '../src/access/audit.js';
import { readConfig } from '../src/config.js';
import { plainJsonCodec } from '../src/store/codec.js';
import { PATIENT_OWNERSHIP } from '../src/fhir/search/compartments.js';
import { openStore } from '../src/store/open-store.js';

/**
 * `npm run audit:verify`: checks the audit trail's hash chain in the configured store (the
 * server's own configuration: SQLITE_PATH, or MONGODB_URI and MONGODB_DATABASE). Prints the
 * result, with the newest record's hash to keep elsewhere; exits 1 when the chain is broken,
 * 2 when it could not be checked.
 */
const config = readConfig();
const store = await openStore(config, PATIENT_OWNERSHIP);
try {
  const result = await verifyAuditChain(store, plainJsonCodec);
  if (result.ok) {
    const head = result.head && result.head.sequence > 0 ? `; newest record ${result.head.sequence}, hash ${result.head.hash}` : '';
    console.log(`audit chain intact: ${result.checked} records checked${head}`);
  } else {
    console.error(`audit chain BROKEN after ${result.checked} good records: ${result.firstBroken?.id ? `AuditEvent/${result.firstBroken.id}` : 'the trail'}: ${result.firstBroken?.reason}`);
    process.exitCode = 1;
  }
} catch (error) {
  console.error(`could not verify the audit chain: ${error instanceof Error ? error.message : String(error)}`);
  process.exitCode = 2;
} finally {
  await store.close();
}
