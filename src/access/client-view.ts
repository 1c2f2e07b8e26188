import { grantFor } from '../auth/scopes.js';
import { allResourceTypes } from '../fhir/definitions.js';
import type { JsonResource } from '../fhir/resource-input.js';
import { notFound } from '../fhir/outcome.js';
import type { ReadCheck, WriteGuard } from '../fhir/resource-service.js';
import type { SearchService } from '../fhir/search/search-service.js';
import { NOTHING, type Visibility } from '../fhir/search/visibility.js';
import type { SearchCriterion } from '../store/port.js';
import { isPatientBound, patientsOf } from './records-of.js';

/**
 * What a backend client sees: the types its scopes let it read, and nothing of the others. The
 * REST gate refuses a request naming another type; this keeps the others out of what reaches
 * into several types: _include, _revinclude, _has, chains, a search or history across every
 * type, `$everything` and `$export` (its wildcard scopes do not cover the audit trail or the
 * patient-notification queue, see scopes.ts).
 *
 * An HCP's system sees nothing of the patients who take no part (pending activation,
 * withdrawn): not their Patient resources, not a record of theirs, in any of those ways, as
 * no HCP may. Their notifications (Communication) stay readable to the gateway that sends them.
 * Such a record cannot be changed or deleted by it either (the record is kept for the patient's
 * return); a new one may be uploaded. An operator's own tool registered with
 * `seesNonParticipating` sees them too.
 */
export interface ClientView {
  visibility: Visibility;
  /** The types it may not read at all, for listings the search criteria do not narrow (history). */
  hiddenTypes: readonly string[];
  /** The same rule on one record; undefined when every record of a readable type may be seen. */
  canSee?: ReadCheck;
  /** Changes and deletions of a record it may not see answer as for one that does not exist. */
  guard?: WriteGuard;
}

/**
 * Patient-bound types shown whoever they name: the notification queue, and Groups, which list
 * patients rather than hold a record of theirs (a cohort does not vanish when one member
 * withdraws; what is reached through it leaves that member out).
 */
const SHOWN_FOR_NON_PARTICIPANTS: ReadonlySet<string> = new Set(['Communication', 'Group']);

export function clientView(scopes: readonly string[], nonParticipating: ReadonlySet<string>, localBase: string): ClientView {
  const hidden = new Set([...allResourceTypes()].filter((type) => !grantFor(scopes, type).read));
  const hiddenTypes = [...hidden];
  if (nonParticipating.size === 0) return { visibility: (type) => (hidden.has(type) ? [NOTHING] : []), hiddenTypes };
  const ids = [...nonParticipating];
  const theirs = (type: string): boolean => isPatientBound(type) && !SHOWN_FOR_NON_PARTICIPANTS.has(type);
  const notTheirs = (type: string): SearchCriterion => ({ kind: 'not', criterion: type === 'Patient' ? { kind: 'id', ids } : { kind: 'patient', ids } });
  const canSee = (resource: JsonResource) => !theirs(resource.resourceType as string) || !patientsOf(resource, localBase).some((p) => nonParticipating.has(p));
  const mustSee = (previous: JsonResource) => {
    if (!canSee(previous)) throw notFound(`${String(previous.resourceType)}/${String(previous.id)} is not known`);
  };
  return {
    visibility: (type) => (hidden.has(type) ? [NOTHING] : theirs(type) ? [notTheirs(type)] : []),
    hiddenTypes,
    canSee,
    guard: { appliesTo: theirs, check: (_next, previous) => previous && mustSee(previous), checkDelete: mustSee },
  };
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
