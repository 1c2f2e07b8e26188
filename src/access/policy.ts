import type { Principal } from '../auth/principal.js';
import type { JsonResource } from '../fhir/resource-input.js';
import type { ReadCheck, WriteGuard } from '../fhir/resource-service.js';
import { SEES_EVERYTHING, type Visibility } from '../fhir/search/visibility.js';
import { AccountView } from './account-view.js';
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
  /** The reason the caller gave for restricted access to this patient, if any. */
  restrictedReason(patientId: string): string | undefined;
}

const UNCONSTRAINED: AccessView = { visibility: SEES_EVERYTHING, restrictedReason: () => undefined };
const NO_GRANTS = { reasons: new Map<string, string>() };
const NO_REACH = { patients: new Set<string>() };

export class AccessPolicy {
  constructor(
    private readonly network: CareNetwork,
    private readonly localBase: string,
  ) {}

  /** Forget what depended on a written type (consents, care relationships, patients). */
  changed(resourceType: string): void {
    this.network.changed(resourceType);
  }

  async viewFor(principal: Principal): Promise<AccessView> {
    if (principal.kind !== 'account') return UNCONSTRAINED;
    const clinical = !principal.unusable && !principal.noClinicalAccess && principal.group !== undefined;
    const [reach, grants] = clinical
      ? await Promise.all([this.network.reach(principal.organizationId), this.network.grantsOf(principal.accountId)])
      : [NO_REACH, NO_GRANTS];
    const view = new AccountView(principal, reach, grants, this.localBase);
    return { visibility: view.visibility, canSee: view.canSee, guard: view.guard, restrictedReason: (p) => view.restrictedReason(p) };
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
