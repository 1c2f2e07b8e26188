import type { EpisodeOfCare, Identifier, Parameters, ParametersParameter, Patient } from 'fhir/r4.js';
import type { AccountPrincipal, Principal } from '../auth/principal.js';
import { ACCESS_SYSTEMS, UNDER_CARE } from '../access/model.js';
import { forbidden } from '../access/rights.js';
import { badRequest, FhirError, notFound } from '../fhir/outcome.js';
import { KeyedLock } from '../fhir/keyed-lock.js';
import { conflict, nowIso, refId, rule } from './checks.js';
import { AuditedRefusal, type OperationResult } from './patients.js';
import type { Inputs } from './parameters.js';
import { careRelationshipInForce, identityDocumentsOf, normaliseDocumentNumber } from './reach.js';
import type { Records } from './records.js';
import { identityDocumentOf, SYSTEMS } from './rules.js';
import { AttemptLimiter, minutes } from './secrets.js';
import { statusOf } from './status.js';

/**
 * Care relationships: the patient is under an HCP's care from the moment an HCProf of that HCP
 * verifies the patient's identity document at a visit ($establish-care) until the HCP ends it
 * ($end-care). Kept as EpisodeOfCare (type `under-care`, managingOrganization the HCP); the
 * visibility rules find the ones in force with `inForce.careRelationships`.
 *
 * Whether a document belongs to an active participant shows in the answer (the visit needs to
 * know), so documents nobody holds are limited per account (NOT_FOUND_LIMIT) and audited with
 * the document's system and masked number, and a patient found is named in the audit trail.
 */

const UNDER_CARE_TYPE = { coding: [{ system: ACCESS_SYSTEMS.careRelationship, code: UNDER_CARE, display: "Under this HCP's care" }] };
/** The same answer whether nobody, a pending or a withdrawn patient holds the document. */
const NO_SUCH_PATIENT = 'No active eHealth participant holds this identity document';
/**
 * Documents no active participant holds, per account: enough for mistyped numbers at a busy
 * desk, too few to go through the register. While locked every lookup is refused, found or
 * not, so the lock itself tells nothing.
 */
export const NOT_FOUND_LIMIT = { max: 10, windowMs: 60 * 60_000, lockMs: 60 * 60_000 } as const;

/**
 * A document number for the audit trail: letters and the first two digits kept, the rest `*`
 * (`A123456(3)` -> `A12****(*)`): enough to match a complaint or see the same number tried
 * again, not enough to be the number.
 */
export function maskDocumentNumber(value: string): string {
  const keep = (/^[A-Za-z]*/.exec(value)?.[0].length ?? 0) + 2;
  let seen = 0;
  return value.replace(/[A-Za-z0-9]/g, (c) => (seen++ < keep ? c : '*'));
}

/** An account that may reach clinical records: usable, with a valid professional registration. */
export function requireClinicalAccount(principal: Principal, what: string): AccountPrincipal {
  if (principal.kind !== 'account') throw forbidden(`Only a healthcare professional's account ${what}`);
  if (principal.unusable) throw forbidden(principal.unusable);
  if (principal.noClinicalAccess) throw forbidden(principal.noClinicalAccess);
  return principal;
}

/**
 * The `identifier` parameter, as valueIdentifier (system and value) or as a token string
 * `system|value`. Inputs reads primitives and resources only, so the Identifier form is read
 * from the Parameters here.
 */
function identifierParameter(inputs: Inputs): Identifier {
  const expression = ["Parameters.parameter('identifier')"];
  const raw = ((inputs as unknown as { parameters?: ParametersParameter[] }).parameters ?? []).filter((p) => p.name === 'identifier');
  if (raw.length > 1) throw badRequest("Parameter 'identifier' may appear only once", expression);
  let identifier = raw[0]?.valueIdentifier;
  if (!identifier) {
    const token = inputs.string('identifier', true);
    const bar = token.indexOf('|');
    identifier = bar < 0 ? { value: token } : { system: token.slice(0, bar), value: token.slice(bar + 1) };
  }
  if (!identifier.system || !identifier.value?.trim()) throw badRequest("Parameter 'identifier' needs the identity document's system and number", expression);
  return identifier;
}

export class CareRegistry {
  /** One establishment per patient and HCP at a time, so two visits cannot open two relationships. */
  private readonly establishing = new KeyedLock();
  private readonly notFound: AttemptLimiter;

  constructor(
    private readonly records: Records,
    private readonly clock: () => Date = () => new Date(),
  ) {
    this.notFound = new AttemptLimiter(NOT_FOUND_LIMIT, clock);
  }

  async establish(principal: Principal, inputs: Inputs, baseUrl: string): Promise<OperationResult> {
    const account = requireClinicalAccount(principal, 'establishes a care relationship, at a visit');
    const lockedUntil = this.notFound.lockedUntil(account.accountId);
    if (lockedUntil) {
      throw FhirError.of(429, 'throttled', `This account looked up ${NOT_FOUND_LIMIT.max} identity documents no active participant holds within ${minutes(NOT_FOUND_LIMIT.windowMs)}; it can establish care again after ${lockedUntil.toISOString()}`);
    }
    const identifier = identifierParameter(inputs);
    const type = identityDocumentOf(identifier.system);
    if (!type) throw rule(`'${identifier.system!.slice(0, 100)}' is not an identity document system; use the one the patient registered with, e.g. ${SYSTEMS.identityDocument('hkic')}`, ["Parameters.parameter('identifier')"]);
    const system = identifier.system!;
    const value = normaliseDocumentNumber(type, identifier.value!);
    const now = this.clock();

    const candidates = await this.records.find<Patient>('Patient', `identifier=${encodeURIComponent(`${system}|${value}`)}`, baseUrl, 5);
    const patient = candidates.find((p) => statusOf(p) === 'active' && identityDocumentsOf(p).some((d) => d.system === system && d.value === value));
    if (!patient) {
      this.notFound.record(account.accountId);
      throw new AuditedRefusal(notFound(NO_SUCH_PATIENT), { identityDocument: { system, value: maskDocumentNumber(value) } });
    }

    const organizationId = account.organizationId;
    return this.establishing.run(`${organizationId}|${patient.id}`, async () => {
      const current = await careRelationshipInForce(this.records, patient.id, organizationId, now, baseUrl);
      const episode =
        current ??
        (await this.records.create<EpisodeOfCare>(
          {
            resourceType: 'EpisodeOfCare',
            status: 'active',
            type: [structuredClone(UNDER_CARE_TYPE)],
            patient: { reference: `Patient/${patient.id}` },
            managingOrganization: { reference: `Organization/${organizationId}` },
            period: { start: nowIso(now) },
            careManager: { reference: `PractitionerRole/${account.accountId}` },
          },
          baseUrl,
        ));
      const body: Parameters = {
        resourceType: 'Parameters',
        parameter: [
          { name: 'patient', valueReference: { reference: `Patient/${patient.id}` } },
          { name: 'episodeOfCare', resource: episode },
        ],
      };
      const audit = { patients: [patient.id] };
      return current ? { status: 200, body, audit } : { status: 201, body, location: `EpisodeOfCare/${episode.id}`, audit };
    });
  }

  async end(principal: Principal, id: string, _inputs: Inputs, baseUrl: string): Promise<OperationResult> {
    if (principal.kind === 'account') {
      if (principal.unusable) throw forbidden(principal.unusable);
    } else if (principal.kind !== 'registration-office') {
      throw forbidden("Only an account of the HCP or the registration office ends a care relationship");
    }
    const current = await this.records.current<EpisodeOfCare>('EpisodeOfCare', id);
    const organizationId = refId(current?.resource.managingOrganization?.reference, 'Organization');
    const isCare = current?.resource.type?.some((t) => t.coding?.some((c) => c.system === ACCESS_SYSTEMS.careRelationship && c.code === UNDER_CARE));
    // Another HCP's care relationships do not exist for an account.
    if (!current || !isCare || (principal.kind === 'account' && principal.organizationId !== organizationId)) throw notFound(`EpisodeOfCare/${id} is not known`);
    if (current.resource.status !== 'active') throw conflict(`EpisodeOfCare/${id} has already ended (${current.resource.status})`);
    const now = nowIso(this.clock());
    const period = { ...current.resource.period, end: now };
    const next: EpisodeOfCare & { id: string } = {
      ...current.resource,
      status: 'finished',
      statusHistory: [...(current.resource.statusHistory ?? []), { status: 'active', period: { ...current.resource.period, end: now } }],
      period,
    };
    return { status: 200, body: await this.records.replace(next, current.versionId, baseUrl) };
  }
}
