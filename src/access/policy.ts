import type { Principal, SystemPrincipal } from '../auth/principal.js';
import type { JsonResource } from '../fhir/resource-input.js';
import type { ReadCheck, WriteGuard } from '../fhir/resource-service.js';
import { SEES_EVERYTHING, type Visibility } from '../fhir/search/visibility.js';
import { AccountView } from './account-view.js';
import { clientView } from './client-view.js';
import type { SharableTypeCode } from './classification.js';
import { CareNetwork } from './reach.js';
import { isRestricted, patientsOf, sharableTypeOf } from './records-of.js';

/**
 * The one place that decides what a principal may see and change: a view per request, holding
 * the search criteria compiled into every query, the check on single records, and the guard on
 * writes. Principals other than HCProf accounts are limited by the REST gate (rights.ts) and
 * see whatever it lets through.
 */

export interface AccessView {
  visibility: Visibility;
  /** Undefined when every record the gate lets through may be seen. */
  canSee?: ReadCheck;
  guard?: WriteGuard;
  /** Types the caller may not read at all, left out of history across types (search leaves them out by `visibility`). */
  hiddenTypes?: readonly string[];
  /** The reason the caller gave for restricted access to this patient, if any. */
  restrictedReason(patientId: string): string | undefined;
}

const UNCONSTRAINED: AccessView = { visibility: SEES_EVERYTHING, restrictedReason: () => undefined };
const NO_GRANTS = { reasons: new Map<string, string>() };
const NO_REACH = { patients: new Set<string>() };
const NOBODY: ReadonlySet<string> = new Set();
const MAX_CACHED_VIEWS = 10_000;

export class AccessPolicy {
  /** The last view built per account, reused while nothing it was built from has changed. */
  private readonly views = new Map<string, { key: string; reach: object; grants: object; view: AccessView }>();
  /** Backend clients' views, by their scopes, with the non-participating patients they were built for. */
  private readonly clientViews = new Map<string, { nonParticipating: ReadonlySet<string>; view: AccessView }>();

  constructor(
    private readonly network: CareNetwork,
    private readonly localBase: string,
  ) {}

  /** Forget what depended on a written type (consents, care relationships, patients); see WriteListener. */
  changed(resourceType: string, id?: string, written?: JsonResource | null): void {
    this.network.changed(resourceType, id, written);
  }

  async viewFor(principal: Principal): Promise<AccessView> {
    if (principal.kind === 'system') return this.clientViewFor(principal);
    if (principal.kind !== 'account') return UNCONSTRAINED;
    const clinical = !principal.unusable && !principal.noClinicalAccess && principal.group !== undefined;
    const [reach, grants] = clinical
      ? await Promise.all([this.network.reach(principal.organizationId), this.network.grantsOf(principal.accountId)])
      : [NO_REACH, NO_GRANTS];
    const key = JSON.stringify([principal.organizationId, principal.group, clinical]);
    const last = this.views.get(principal.accountId);
    if (last && last.key === key && last.reach === reach && last.grants === grants) return last.view;
    const account = new AccountView(principal, reach, grants, this.localBase);
    const view: AccessView = { visibility: account.visibility, canSee: account.canSee, guard: account.guard, restrictedReason: (p) => account.restrictedReason(p) };
    if (this.views.size >= MAX_CACHED_VIEWS) this.views.clear();
    this.views.set(principal.accountId, { key, reach, grants, view });
    return view;
  }

  private async clientViewFor(principal: SystemPrincipal): Promise<AccessView> {
    const nonParticipating = principal.seesNonParticipating ? NOBODY : await this.network.nonParticipating();
    const key = JSON.stringify([[...principal.scopes].sort(), principal.seesNonParticipating === true]);
    const last = this.clientViews.get(key);
    if (last && last.nonParticipating === nonParticipating) return last.view;
    const client = clientView(principal.scopes, nonParticipating, this.localBase);
    const view: AccessView = { ...UNCONSTRAINED, visibility: client.visibility, hiddenTypes: client.hiddenTypes, ...(client.canSee && { canSee: client.canSee }), ...(client.guard && { guard: client.guard }) };
    if (this.clientViews.size >= MAX_CACHED_VIEWS) this.clientViews.clear();
    this.clientViews.set(key, { nonParticipating, view });
    return view;
  }
}

export interface Touched {
  patients: string[];
  dataTypes: SharableTypeCode[];
  /** Restricted records were among them. */
  restricted: boolean;
}

/** Whose records, of which sharable types, a set of resources holds (for the audit trail and notifications). */
export function touched(resources: JsonResource[], localBase: string): Touched {
  const patients = new Set<string>();
  const dataTypes = new Set<SharableTypeCode>();
  let restricted = false;
  for (const resource of resources) {
    for (const p of patientsOf(resource, localBase)) patients.add(p);
    const type = sharableTypeOf(resource);
    if (type) dataTypes.add(type);
    if (isRestricted(resource)) restricted = true;
  }
  return { patients: [...patients], dataTypes: [...dataTypes], restricted };
}
