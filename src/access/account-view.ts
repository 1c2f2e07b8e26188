import type { AccountPrincipal } from '../auth/principal.js';
import { FhirError, notFound, unprocessable } from '../fhir/outcome.js';
import type { JsonResource } from '../fhir/resource-input.js';
import type { WriteGuard } from '../fhir/resource-service.js';
import { patientCompartmentParams } from '../fhir/search/compartments.js';
import { NOTHING, type Visibility } from '../fhir/search/visibility.js';
import type { FieldTest, SearchCriterion } from '../store/port.js';
import { classify, possibleTypes, SHARABLE_TYPES, type SharableTypeCode } from './classification.js';
import { ACCESS_SYSTEMS, RESTRICTED_CODES, UNDER_CARE } from './model.js';
import { RBAC } from './rbac.js';
import type { Grants, Reach } from './reach.js';
import { contributorOf, contributorSource, isPatientBound, isRestricted, patientsOf, SHARABLE_TYPE_PARAM, SHARABLE_TYPE_SYSTEM, sharableTypeOf } from './records-of.js';

/**
 * What one HCProf account may see and change, now: the same rules as search criteria (compiled
 * into every query) and as checks on single records (reads and writes).
 */

const forbidden = (diagnostics: string) => FhirError.of(403, 'forbidden', diagnostics);
const displayOf = (type: SharableTypeCode) => SHARABLE_TYPES.find((t) => t.code === type)?.display ?? type;

/** Records of these patients: whose a record is was stored with it when it was indexed (patientsOf). */
function patientIn(resourceType: string, ids: string[]): SearchCriterion {
  if (ids.length === 0) return NOTHING;
  if (resourceType === 'Patient') return { kind: 'id', ids };
  return { kind: 'patient', ids };
}

/**
 * The restricted-record exclusion among `criterion` kept to one patient list: NOT (restricted
 * AND of those patients), which is NOT restricted for a query whose every match is theirs.
 */
function narrowed(criterion: SearchCriterion, patients: SearchCriterion): SearchCriterion {
  if (criterion === UNRESTRICTED) return { kind: 'not', criterion: { kind: 'or', anyOf: [[RESTRICTED, patients]] } };
  if (criterion.kind === 'or') return { kind: 'or', anyOf: criterion.anyOf.map((all) => all.map((c) => narrowed(c, patients))) };
  return criterion;
}

const RESTRICTED: SearchCriterion = {
  kind: 'entry',
  param: '_security',
  anyOf: [[{ slot: 0, field: 'system', op: 'eq', value: ACCESS_SYSTEMS.confidentiality }, { slot: 0, field: 'value', op: 'in', value: [...RESTRICTED_CODES] }]],
};

const UNRESTRICTED: SearchCriterion = { kind: 'not', criterion: RESTRICTED };

export class AccountView {
  private readonly readable: ReadonlySet<SharableTypeCode>;
  private readonly uploadable: (type: SharableTypeCode) => boolean;
  private readonly exempt: boolean;
  private readonly criteria = new Map<string, SearchCriterion[]>();
  private readonly reachable: string[];

  constructor(
    private readonly account: AccountPrincipal,
    private readonly reach: Reach,
    private readonly grants: Grants,
    private readonly localBase: string,
  ) {
    const group = account.group ?? '';
    this.readable = new Set(RBAC.readableTypes(group));
    this.uploadable = (type) => RBAC.mayUpload(group, type);
    this.exempt = RBAC.restrictedControlExempt.has(account.organizationId);
    this.reachable = [...reach.patients];
  }

  readonly visibility: Visibility = (resourceType, own = []) => {
    let criteria = this.criteria.get(resourceType);
    if (!criteria) {
      criteria = this.criteriaFor(resourceType);
      this.criteria.set(resourceType, criteria);
    }
    if (!isPatientBound(resourceType) || criteria[0] === NOTHING) return criteria;
    // A query already kept to reachable patients (the usual `patient=…`) needs no patient list:
    // a record any reachable patient's is visible (canSee). Its restricted records to leave out
    // are those patients' own, which the store finds from their entries (a few seeks), not
    // every restricted record, and not by a look at each row.
    for (const criterion of own) {
      const named = this.reachablePatientsNamed(resourceType, criterion);
      if (named) return criteria.slice(1).map((c) => narrowed(c, patientIn(resourceType, named)));
    }
    return criteria;
  };

  /**
   * The patients `criterion` names when every match names one of them through a compartment
   * reference and all of them are reachable; otherwise undefined.
   */
  private reachablePatientsNamed(resourceType: string, criterion: SearchCriterion): string[] | undefined {
    if (criterion.kind === 'id') {
      const all = resourceType === 'Patient' && criterion.ids.length > 0 && criterion.ids.every((id) => this.reach.patients.has(id));
      return all ? criterion.ids : undefined;
    }
    if (criterion.kind !== 'entry' || criterion.anyOf.length === 0) return undefined;
    const onlyPatients = criterion.param === 'patient';
    if (!onlyPatients && !patientCompartmentParams(resourceType).includes(criterion.param)) return undefined;
    const named = new Set<string>();
    for (const tests of criterion.anyOf) {
      const typed = onlyPatients || tests.some((t) => t.slot === 0 && t.field === 'system' && t.op === 'eq' && t.value === 'Patient');
      const ids = tests.flatMap((t) => (t.slot === 0 && t.field === 'value' ? (t.op === 'eq' ? [String(t.value)] : t.op === 'in' ? t.value : []) : []));
      if (!typed || ids.length === 0 || !ids.every((id) => this.reach.patients.has(id))) return undefined;
      for (const id of ids) named.add(id);
    }
    return [...named];
  }

  private criteriaFor(resourceType: string): SearchCriterion[] {
    if (RBAC.referenceTypes.has(resourceType)) return [];
    const possible = possibleTypes(resourceType);
    const readable = [...possible.types].filter((t) => this.readable.has(t));
    if (readable.length === 0) return [NOTHING];
    const criteria: SearchCriterion[] = [];
    if (isPatientBound(resourceType)) criteria.push(patientIn(resourceType, this.reachable));
    // Only where some records of this type may be of a type the group may not read.
    if (possible.outOfScope || readable.length < possible.types.size) {
      // The system too, so that a seek in the value index is checked there (a per-row check
      // looks at the row's own entries by its key instead).
      const tests: FieldTest[] = [{ slot: 0, field: 'system', op: 'eq', value: SHARABLE_TYPE_SYSTEM }, { slot: 0, field: 'value', op: 'in', value: readable }];
      criteria.push({ kind: 'entry', param: SHARABLE_TYPE_PARAM, anyOf: [tests] });
    }
    if (!this.exempt && isPatientBound(resourceType)) {
      const granted = [...this.grants.reasons.keys()];
      criteria.push(granted.length ? { kind: 'or', anyOf: [[UNRESTRICTED], [patientIn(resourceType, granted)]] } : UNRESTRICTED);
    }
    return criteria;
  }

  /** The same rules as `visibility`, on one record. */
  readonly canSee = (resource: JsonResource): boolean => {
    const type = resource.resourceType as string;
    if (RBAC.referenceTypes.has(type)) return true;
    const sharable = sharableTypeOf(resource);
    if (!sharable || !this.readable.has(sharable)) return false;
    if (!isPatientBound(type)) return true;
    const patients = patientsOf(resource, this.localBase);
    if (!patients.some((p) => this.reach.patients.has(p))) return false;
    return this.exempt || !isRestricted(resource) || patients.some((p) => this.grants.reasons.has(p));
  };

  /** The reason given for restricted access to this patient's records, if any. */
  restrictedReason(patientId: string): string | undefined {
    return this.grants.reasons.get(patientId);
  }

  /** Uploads: within the sharable scope, of a type the group may upload, for a reachable patient, amending only the HCP's own records. */
  readonly guard: WriteGuard = {
    appliesTo: () => true,
    prepare: (next) => ({ ...next, meta: { ...((next.meta as Record<string, unknown> | undefined) ?? {}), source: contributorSource(this.account.organizationId) } }),
    check: (next, previous) => {
      if (previous) this.checkAmend(previous);
      const type = next.resourceType as string;
      const classification = classify(next);
      if (!classification.type) throw FhirError.of(422, 'business-rule', `Outside the sharable scope of eHealth: ${classification.reason}`, [type]);
      if (!this.uploadable(classification.type)) {
        throw forbidden(`Your professional group (${this.account.group ?? 'none'}) may not upload ${displayOf(classification.type)} records`);
      }
      if (!isPatientBound(type)) return;
      const patients = patientsOf(next, this.localBase);
      if (patients.length === 0) throw unprocessable(`A shared ${type} must name the patient it belongs to`, [type]);
      const unreachable = patients.find((p) => !this.reach.patients.has(p));
      if (unreachable !== undefined) {
        // The same answer whether or not that patient exists.
        throw forbidden(`Patient/${unreachable} is not a joined patient under this HCP's care with a sharing consent in force`);
      }
      if (type === 'EpisodeOfCare' && isCareRelationship(next) && managingOrganization(next) !== `Organization/${this.account.organizationId}`) {
        throw forbidden("An HCP records care relationships at itself only");
      }
    },
    checkDelete: (previous) => this.checkAmend(previous),
  };

  private checkAmend(previous: JsonResource): void {
    const type = previous.resourceType as string;
    if (!this.canSee(previous)) throw notFound(`${type}/${String(previous.id)} is not known`);
    if (contributorOf(previous) !== this.account.organizationId) {
      throw forbidden(`${type}/${String(previous.id)} was contributed by another healthcare provider; only its contributor may amend or delete it`);
    }
  }
}

const isCareRelationship = (resource: JsonResource) =>
  ((resource.type as { coding?: { system?: string; code?: string }[] }[] | undefined) ?? []).some((t) =>
    t.coding?.some((c) => c.system === ACCESS_SYSTEMS.careRelationship && c.code === UNDER_CARE),
  );
const managingOrganization = (resource: JsonResource) => (resource.managingOrganization as { reference?: string } | undefined)?.reference;
