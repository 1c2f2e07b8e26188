import { grantFor } from '../auth/scopes.js';
import { allResourceTypes } from '../fhir/definitions.js';
import type { SearchService } from '../fhir/search/search-service.js';
import { NOTHING, type Visibility } from '../fhir/search/visibility.js';
import type { SearchCriterion } from '../store/port.js';

/**
 * What a backend client sees: the types its scopes let it read, and nothing of the others. The
 * REST gate refuses a request naming another type; this keeps the others out of what reaches
 * into several types: _include, _revinclude, _has, chains, a search or history across every
 * type, `$everything` and `$export` (its wildcard scopes do not cover the audit trail or the
 * patient-notification queue, see scopes.ts).
 */
export interface ClientView {
  visibility: Visibility;
  /** The types it may not read at all, for listings the search criteria do not narrow (history). */
  hiddenTypes: readonly string[];
}

export function clientView(scopes: readonly string[]): ClientView {
  const hidden = new Set([...allResourceTypes()].filter((type) => !grantFor(scopes, type).read));
  return { visibility: (type) => (hidden.has(type) ? [NOTHING] : []), hiddenTypes: [...hidden] };
}

/** More patients than this withheld at once would be a territory this server is not sized for. */
const MAX_WITHHELD = 1_000_000;

/**
 * Patients whose records are not shared: pending activation or withdrawn (`active` mirrors the
 * participation status, see participation/status.ts). Withdrawal loses no data, but nothing of
 * theirs goes out in a backend client's bulk export. (An account's view reaches active
 * patients only, so its exports need no such list.)
 */
export async function withheldPatients(searches: SearchService): Promise<string[]> {
  const where: SearchCriterion[] = [{ kind: 'entry', param: 'active', anyOf: [[{ slot: 0, field: 'value', op: 'eq', value: 'false' }]] }];
  return (await searches.find('Patient', where, MAX_WITHHELD)).map((v) => v.id);
}
