import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import type autocannon from 'autocannon';
import type { Consent, DiagnosticReport, EpisodeOfCare, FhirResource, Location, Organization, ParametersParameter, Patient, Practitioner } from 'fhir/r4.js';
import { ACCESS_SYSTEMS, SHARING, UNDER_CARE } from '../src/access/model.js';
import { loadOrCreateDevKey } from '../src/auth/keys.js';
import type { PrincipalClaim } from '../src/auth/principal.js';
import { issueToken } from '../src/auth/tokens.js';
import { DEFAULT_AUDIENCE, DEFAULT_ISSUER } from '../src/config.js';
import { hkicCheckDigit } from '../src/participation/hkic.js';
import { SYSTEMS } from '../src/participation/rules.js';
import { FHIR_JSON, fhirRequest } from './client.js';
import { anomalies, round, runLoad, type LoadResult } from './load.js';
import { Rng, fnv1a, generatePatient, mix } from './patients.js';
import {
  MissingReferenceError,
  OBSERVATION_KINDS,
  RESOURCE_TYPES,
  buildResource,
  generatePopulation,
  hkDateTime,
  type ClinicalFact,
  type ClinicalType,
  type IdTable,
  type Population,
} from './population.js';
import { fmt, table } from './report.js';
import { environment, envInt, target, type BenchSettings, type Scenario, type ScenarioReport, type Target } from './scenario.js';
import { MB, ServerProcess, processCpuSeconds, repoRoot, systemBusySeconds } from './server-process.js';

/**
 * What access control costs: the same reads and searches made by the operator principal (a
 * backend client with system/*.*, which the access layer does not constrain) and by a doctor's
 * HCProf account at one HCP (whose every query carries the reach, role and restricted-record
 * criteria, and whose principal is resolved from the participation records on each request).
 *
 * Set-up, all through the API on a fresh SQLite store: BENCH_ACCESS_HCPS (20) HCPs registered and
 * approved by the registration office, each with a user administrator and a doctor's account;
 * the population's patients (1,000 per 100,000 resources) registered and activated; for each a
 * sharing consent and a care relationship with 1-3 HCPs (so each HCP reaches ~100 patients; a
 * few care relationships without consent and consents without care reach no one); then the
 * clinical record of BENCH_ACCESS_RESOURCES (100,000) resources (Encounter, Observation vital
 * signs and laboratory, Condition, MedicationRequest, DiagnosticReport, Immunization,
 * AllergyIntolerance; ~5% labelled restricted, meta.security v3-Confidentiality R) by the
 * backend client, BENCH_INGEST_CONCURRENCY (32) POSTs at a time, stopping early (and saying
 * so) after BENCH_ACCESS_LOAD_LIMIT_SECONDS (600).
 *
 * Measured, per principal, with the same requests in the same order: read of
 * Observation/{id} (ids the doctor may see) at BENCH_CONNECTIONS (32), and five searches at
 * BENCH_ACCESS_SEARCH_CONNECTIONS (16): Observation?patient=, Observation?code=&_count=20,
 * Condition?_count=20, Observation?patient=&_sort=-date, Patient?name=. BENCH_ACCESS_ROUNDS (2)
 * rounds alternate which principal goes first; the targets use the mean over rounds. Answers are
 * checked on the way (exact totals for both principals, every returned record reachable and not
 * restricted, hidden records 404). BENCH_ONLY=read,patient,code,condition,sorted,name picks runs.
 * BENCH_ACCESS_PROFILE_DIR=dir: afterwards, one server per principal on the same database with
 * --cpu-prof, each selected run once, profiles written there.
 *
 * About 15 minutes at the defaults on 2 cores (load 6-8, runs 2 × 12 × (warm-up + seconds)).
 */

const DESCRIPTION = 'Access control cost: operator principal (system/*.*) vs a doctor account at one HCP, same requests';

const TARGETS = { readOverheadPct: 15, searchP50OverheadPct: 25 };
/** Sequential requests per run shape and principal before the load runs. */
const PROBES = 9;
/** A shape whose sequential request takes longer than this is not load-tested: at 16 connections every request would time out (autocannon gives up at 10 s). */
const SLOW_MS = 500;
const SETTLE_CAP_MS = 60_000;
/** After the load: the audit thread indexes 100,000 creates' events behind it. */
const LOAD_SETTLE_CAP_MS = 300_000;
const RESTRICTED_SHARE = 0.05;
const LOINC = 'http://loinc.org';
const enc = encodeURIComponent;

type Json = Record<string, unknown>;
type Auth = string;

// ---------------------------------------------------------------------------------------------
// Settings.

function settingsOf(settings: BenchSettings) {
  return {
    resources: envInt('BENCH_ACCESS_RESOURCES', 100_000),
    hcps: envInt('BENCH_ACCESS_HCPS', 20),
    ingestConcurrency: envInt('BENCH_INGEST_CONCURRENCY', 32),
    readConnections: settings.connections,
    searchConnections: envInt('BENCH_ACCESS_SEARCH_CONNECTIONS', 16),
    rounds: envInt('BENCH_ACCESS_ROUNDS', 2),
    loadLimitSeconds: envInt('BENCH_ACCESS_LOAD_LIMIT_SECONDS', 600),
    profileDir: process.env.BENCH_ACCESS_PROFILE_DIR || undefined,
    only: (process.env.BENCH_ONLY ?? '').split(',').map((s) => s.trim()).filter(Boolean),
  };
}
type AccessSettings = ReturnType<typeof settingsOf>;

const RUN_NAMES = ['read', 'patient', 'code', 'condition', 'sorted', 'name'] as const;
type RunName = (typeof RUN_NAMES)[number];

// ---------------------------------------------------------------------------------------------
// Talking to the server as different principals.

class Principals {
  private constructor(private readonly key: Awaited<ReturnType<typeof loadOrCreateDevKey>>) {}

  /** Tokens signed with the development key of this server process (made when it started). */
  static async of(server: ServerProcess): Promise<Principals> {
    const file = join(server.dir, 'dev-signing-key.json');
    if (!existsSync(file)) throw new Error(`the server made no development key at ${file}`);
    return new Principals(await loadOrCreateDevKey(file));
  }

  async authorization(claim: PrincipalClaim): Promise<Auth> {
    const token = await issueToken(claim, { key: this.key, issuer: DEFAULT_ISSUER, audience: DEFAULT_AUDIENCE, lifetimeSeconds: 4 * 3600 });
    return `Bearer ${token}`;
  }
}

const OPERATOR: PrincipalClaim = { kind: 'system', clientId: 'bench-operator', scopes: ['system/*.*'] };
const REGISTRATION_OFFICE: PrincipalClaim = { kind: 'registration-office', staffId: 'bench-ro' };

async function call(server: ServerProcess, auth: Auth, method: string, path: string, body?: unknown, expect: number[] = [200, 201]): Promise<Json> {
  const { json } = await fhirRequest(method, `${server.baseUrl}${path}`, body, expect, { authorization: auth });
  return json as Json;
}

const parameters = (parameter: ParametersParameter[]) => ({ resourceType: 'Parameters', parameter });
const outParam = (result: Json, name: string) => ((result.parameter ?? []) as ParametersParameter[]).find((p) => p.name === name)?.resource as (Json & { id: string }) | undefined;

/** Runs `work(i)` for i in [0, count), `concurrency` at a time; fails on the first error. */
async function pool(count: number, concurrency: number, work: (i: number) => Promise<void>): Promise<void> {
  let next = 0;
  let failed = false;
  const worker = async () => {
    while (!failed && next < count) {
      const i = next++;
      try {
        await work(i);
      } catch (err) {
        failed = true;
        throw err;
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, count) }, worker));
}

// ---------------------------------------------------------------------------------------------
// The territory: HCPs with accounts, joined patients, consents and care.

interface HcpSetup {
  id: string;
  doctorRoleId: string;
  doctorPractitionerId: string;
}

const VALID_TO = `${new Date().getUTCFullYear() + 2}-12-31`;

function professional(group: string, family: string, given: string, number: string): Practitioner {
  return {
    resourceType: 'Practitioner',
    name: [{ family, given: [given], ...(group === 'medical-practitioner' && { prefix: ['Dr'] }) }],
    qualification: [
      {
        code: { coding: [{ system: SYSTEMS.professionalGroup, code: group }] },
        identifier: [{ value: number }],
        period: { start: '2010-01-01', end: VALID_TO },
      },
    ],
  };
}

async function registerHcps(server: ServerProcess, principals: Principals, count: number): Promise<HcpSetup[]> {
  const ro = await principals.authorization(REGISTRATION_OFFICE);
  const hcps: HcpSetup[] = new Array<HcpSetup>(count);
  await pool(count, 4, async (h) => {
    const n = String(h + 1).padStart(3, '0');
    const organization: Organization = {
      resourceType: 'Organization',
      name: `Bench Medical Clinic ${n}`,
      type: [{ coding: [{ system: SYSTEMS.establishmentType, code: 'medical-clinic' }] }],
      identifier: [{ type: { coding: [{ system: SYSTEMS.supportingDocument, code: 'certificate-of-registration-medical-clinic' }] }, value: `BENCH-MC-${n}` }],
      telecom: [{ system: 'phone', value: `+852 2${n} ${String(1000 + h)}` }],
    };
    const location: Location = {
      resourceType: 'Location',
      status: 'active',
      name: `Bench Medical Clinic ${n} (main)`,
      address: { line: [`${h + 1} Nathan Road`], city: 'Kowloon', country: 'HK' },
      telecom: [{ system: 'phone', value: `+852 3${n} ${String(2000 + h)}` }],
    };
    const registered = await call(server, ro, 'POST', '/Organization/$register', parameters([{ name: 'organization', resource: organization }, { name: 'location', resource: location }]), [201]);
    const id = outParam(registered, 'organization')?.id;
    if (!id) throw new Error('Organization/$register answered without the organization');
    await call(server, ro, 'POST', `/Organization/${id}/$approve`, parameters([]), [200]);
    const admin = await call(server, ro, 'POST', '/Practitioner/$register', parameters([{ name: 'practitioner', resource: professional('nurse', 'Lee', `Admin ${n}`, `BN${n}`) }]), [201]);
    const createAccount = (by: Auth, practitionerId: string, userAdministrator: boolean) =>
      call(server, by, 'POST', `/Organization/${id}/$create-account`, parameters([
        { name: 'practitioner', valueReference: { reference: `Practitioner/${practitionerId}` } },
        { name: 'userAdministrator', valueBoolean: userAdministrator },
      ]), [201]);
    const adminRole = await createAccount(ro, admin.id as string, true);
    const ua = await principals.authorization({ kind: 'account', practitionerRoleId: adminRole.id as string });
    const doctor = await call(server, ro, 'POST', '/Practitioner/$register', parameters([{ name: 'practitioner', resource: professional('medical-practitioner', 'Chan', `Doctor ${n}`, `BM${n}`) }]), [201]);
    const doctorRole = await createAccount(ua, doctor.id as string, false);
    hcps[h] = { id, doctorRoleId: doctorRole.id as string, doctorPractitionerId: doctor.id as string };
  });
  return hcps;
}

/** Patient `i` of the population as registered: its generated demographics, adult, with one HKIC. */
function registrationPatient(population: Population, i: number): { patient: Patient; hkic: string } {
  const generated = generatePatient(i, { seed: population.seed });
  const digits = String(200_000 + i).padStart(6, '0');
  const letter = String.fromCharCode(65 + (i % 26));
  const hkic = `${letter}${digits}(${hkicCheckDigit(letter, digits)})`;
  let birthDate = generated.birthDate!;
  const year = Number(birthDate.slice(0, 4));
  if (year > 2005) birthDate = `${year - 40}${birthDate.slice(4)}`;
  const patient: Patient = {
    resourceType: 'Patient',
    name: generated.name!,
    gender: generated.gender!,
    birthDate,
    identifier: [{ system: SYSTEMS.identityDocument('hkic'), value: hkic }],
    ...(generated.telecom && { telecom: generated.telecom }),
    ...(generated.address && { address: generated.address }),
  };
  return { patient, hkic };
}

async function registerPatients(server: ServerProcess, principals: Principals, population: Population, concurrency: number): Promise<string[]> {
  const ro = await principals.authorization(REGISTRATION_OFFICE);
  const ids = new Array<string>(population.counts.Patient);
  await pool(ids.length, Math.min(concurrency, 16), async (i) => {
    const { patient, hkic } = registrationPatient(population, i);
    const registered = await call(server, ro, 'POST', '/Patient/$register', parameters([{ name: 'patient', resource: patient }]), [201]);
    const id = outParam(registered, 'patient')?.id;
    if (!id) throw new Error('Patient/$register answered without the patient');
    await call(server, ro, 'POST', `/Patient/${id}/$activate`, parameters([{ name: 'identityDocument', valueString: hkic }]), [200]);
    ids[i] = id;
  });
  return ids;
}

/** Who shares with whom: per patient the HCPs with consent and care, and some that have only one of the two. */
interface Sharing {
  /** reach[h]: indexes of the patients HCP h may reach (consent and care). */
  reach: Set<number>[];
  consents: { patient: number; hcp: number }[];
  care: { patient: number; hcp: number }[];
}

function planSharing(population: Population, hcps: number): Sharing {
  const reach = Array.from({ length: hcps }, () => new Set<number>());
  const consents: Sharing['consents'] = [];
  const care: Sharing['care'] = [];
  for (let p = 0; p < population.counts.Patient; p++) {
    const rng = new Rng(mix(population.seed ^ fnv1a('sharing'), p));
    const chosen = new Set<number>();
    const k = Math.min(hcps, rng.int(1, 3));
    while (chosen.size < k) chosen.add(rng.int(0, hcps - 1));
    for (const h of chosen) {
      consents.push({ patient: p, hcp: h });
      care.push({ patient: p, hcp: h });
      reach[h]!.add(p);
    }
    // Care without consent, and consent without care: neither makes the patient reachable.
    const other = rng.int(0, hcps - 1);
    if (!chosen.has(other) && rng.chance(0.1)) care.push({ patient: p, hcp: other });
    else if (!chosen.has(other) && rng.chance(0.05)) consents.push({ patient: p, hcp: other });
  }
  return { reach, consents, care };
}

function sharingConsent(patientId: string, organizationId: string, start: string): Consent {
  return {
    resourceType: 'Consent',
    status: 'active',
    scope: { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/consentscope', code: 'patient-privacy' }] },
    category: [{ coding: [{ system: ACCESS_SYSTEMS.consentCategory, code: SHARING }] }],
    patient: { reference: `Patient/${patientId}` },
    dateTime: start,
    policyRule: { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/v3-ActCode', code: 'OPTIN' }] },
    extension: [
      { url: ACCESS_SYSTEMS.consentOption, valueCode: 'indefinite' },
      { url: ACCESS_SYSTEMS.consentMethod, valueCode: 'signed-form' },
    ],
    provision: {
      type: 'permit',
      period: { start },
      actor: [{ role: { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/v3-ParticipationType', code: 'IRCP' }] }, reference: { reference: `Organization/${organizationId}` } }],
    },
  };
}

function careRelationship(patientId: string, organizationId: string, start: string): EpisodeOfCare {
  return {
    resourceType: 'EpisodeOfCare',
    status: 'active',
    type: [{ coding: [{ system: ACCESS_SYSTEMS.careRelationship, code: UNDER_CARE }] }],
    patient: { reference: `Patient/${patientId}` },
    managingOrganization: { reference: `Organization/${organizationId}` },
    period: { start },
  };
}

async function writeSharing(server: ServerProcess, sharing: Sharing, patientIds: string[], hcps: HcpSetup[], concurrency: number): Promise<void> {
  const start = new Date(Date.now() - 3_600_000).toISOString();
  const writes: (Consent | EpisodeOfCare)[] = [
    ...sharing.consents.map((c) => sharingConsent(patientIds[c.patient]!, hcps[c.hcp]!.id, start)),
    ...sharing.care.map((c) => careRelationship(patientIds[c.patient]!, hcps[c.hcp]!.id, start)),
  ];
  await pool(writes.length, concurrency, async (i) => {
    const resource = writes[i]!;
    await call(server, server.authorization, 'POST', `/${resource.resourceType}`, resource, [201]);
  });
}

// ---------------------------------------------------------------------------------------------
// The clinical record.

const DIAGNOSTIC_REPORTS = [
  { code: '24323-8', display: 'Comprehensive metabolic 2000 panel - Serum or Plasma', category: 'CH', text: 'Chemistry' },
  { code: '58410-2', display: 'CBC panel - Blood by Automated count', category: 'HM', text: 'Hematology' },
  { code: '57698-3', display: 'Lipid panel with direct LDL - Serum or Plasma', category: 'CH', text: 'Chemistry' },
  { code: '4548-4', display: 'Hemoglobin A1c/Hemoglobin.total in Blood', category: 'LAB', text: 'Laboratory' },
  { code: '36643-5', display: 'XR Chest 2 Views', category: 'RAD', text: 'Radiology' },
  { code: '11524-6', display: 'EKG study', category: 'CTH', text: 'Cardiac catheterization' },
] as const;

/** A DiagnosticReport in place of the population's Procedure facts (the population has no reports). */
function diagnosticReport(rng: Rng, fact: ClinicalFact, ids: IdTable): DiagnosticReport {
  const patient = ids.Patient[fact.patient];
  const performer = ids.Practitioner[fact.practitioner];
  const encounter = fact.encounter >= 0 ? ids.Encounter[fact.encounter] : undefined;
  if (patient === undefined || performer === undefined || (fact.encounter >= 0 && encounter === undefined)) throw new MissingReferenceError('not created');
  const kind = DIAGNOSTIC_REPORTS[fact.item % DIAGNOSTIC_REPORTS.length]!;
  return {
    resourceType: 'DiagnosticReport',
    status: 'final',
    category: [{ coding: [{ system: 'http://terminology.hl7.org/CodeSystem/v2-0074', code: kind.category, display: kind.text }] }],
    code: { coding: [{ system: LOINC, code: kind.code, display: kind.display }], text: kind.display },
    subject: { reference: `Patient/${patient}` },
    ...(encounter && { encounter: { reference: `Encounter/${encounter}` } }),
    effectiveDateTime: hkDateTime(fact.at),
    issued: hkDateTime(fact.at + rng.int(60, 600) * 60_000),
    performer: [{ reference: `Practitioner/${performer}` }],
    conclusion: rng.chance(0.7) ? 'Within normal limits.' : 'Abnormal findings; see results and clinical correlation advised.',
  };
}

/** Whether clinical resource `index` of `type` is labelled restricted (~5%, the same every run). */
function isRestrictedFact(population: Population, type: string, index: number): boolean {
  return new Rng(mix(population.seed ^ fnv1a(`restricted:${type}`), index)).chance(RESTRICTED_SHARE);
}

/** What was created, for the expected answers. */
interface CreatedRecord {
  type: string;
  id: string;
  patient: number;
  restricted: boolean;
  /** Observations: the kind (index into OBSERVATION_KINDS). */
  item: number;
}

interface LoadOutcome {
  records: CreatedRecord[];
  planned: number;
  byType: Record<string, number>;
  seconds: number;
  failed: number;
  skipped: number;
  firstFailures: string[];
  /** The load stopped at BENCH_ACCESS_LOAD_LIMIT_SECONDS with resources left. */
  cappedAt?: number;
}

const outputType = (type: ClinicalType) => (type === 'Procedure' ? 'DiagnosticReport' : type);

async function loadClinical(server: ServerProcess, population: Population, ids: IdTable, concurrency: number, limitSeconds: number): Promise<LoadOutcome> {
  const phases = population.phases.filter((p) => p.items.every((it) => it.type !== 'Organization' && it.type !== 'Practitioner' && it.type !== 'Patient'));
  const planned = phases.reduce((n, p) => n + p.items.length, 0);
  const outcome: LoadOutcome = { records: [], planned, byType: {}, seconds: 0, failed: 0, skipped: 0, firstFailures: [] };
  const started = performance.now();
  const deadline = started + limitSeconds * 1000;
  const headers = { accept: FHIR_JSON, 'content-type': FHIR_JSON, authorization: server.authorization };
  let attempted = 0;
  for (const phase of phases) {
    let next = 0;
    const worker = async (): Promise<void> => {
      while (next < phase.items.length && outcome.failed < 50) {
        if (performance.now() > deadline) {
          outcome.cappedAt ??= attempted;
          return;
        }
        const { type, index } = phase.items[next++]!;
        attempted++;
        const clinicalType = type as ClinicalType;
        const fact = population.clinical[clinicalType][index]!;
        let resource: FhirResource;
        try {
          resource =
            clinicalType === 'Procedure'
              ? diagnosticReport(new Rng(mix(population.seed ^ fnv1a('DiagnosticReport'), index)), fact, ids)
              : buildResource(population, type, index, ids);
        } catch (err) {
          if (err instanceof MissingReferenceError) {
            outcome.skipped++;
            continue;
          }
          throw err;
        }
        const restricted = isRestrictedFact(population, type, index);
        if (restricted) resource.meta = { security: [{ system: ACCESS_SYSTEMS.confidentiality, code: 'R', display: 'restricted' }] };
        const resourceType = outputType(clinicalType);
        try {
          const res = await fetch(`${server.baseUrl}/${resourceType}`, { method: 'POST', headers, body: JSON.stringify(resource), signal: AbortSignal.timeout(30_000) });
          const text = await res.text();
          if (res.status !== 201) {
            outcome.failed++;
            if (outcome.firstFailures.length < 5) outcome.firstFailures.push(`POST ${resourceType} answered ${res.status}: ${text.slice(0, 400)}`);
            continue;
          }
          const id = (JSON.parse(text) as { id: string }).id;
          if (clinicalType === 'Encounter') ids.Encounter[index] = id;
          outcome.records.push({ type: resourceType, id, patient: fact.patient, restricted, item: fact.item });
          outcome.byType[resourceType] = (outcome.byType[resourceType] ?? 0) + 1;
          if (outcome.records.length % 10_000 === 0) process.stdout.write(` ${fmt(outcome.records.length)}`);
        } catch (err) {
          outcome.failed++;
          if (outcome.firstFailures.length < 5) outcome.firstFailures.push(`POST ${resourceType} failed: ${err instanceof Error ? err.message : String(err)}`);
        }
      }
    };
    await Promise.all(Array.from({ length: Math.min(concurrency, phase.items.length) }, () => worker()));
    if (outcome.cappedAt !== undefined || outcome.failed >= 50) break;
  }
  outcome.seconds = (performance.now() - started) / 1000;
  return outcome;
}

// ---------------------------------------------------------------------------------------------
// What each principal must see, and checks of the answers.

function fold(text: string): string {
  return text.normalize('NFD').replace(/\p{M}/gu, '').toLowerCase();
}

/** The strings Patient?name matches by prefix (text, family, given, prefix, suffix), folded. */
function nameStrings(patient: Patient): string[] {
  return (patient.name ?? []).flatMap((n) => [n.text, n.family, ...(n.given ?? []), ...(n.prefix ?? []), ...(n.suffix ?? [])].filter((s): s is string => !!s).map(fold));
}

interface World {
  population: Population;
  patientIds: string[];
  doctorHcp: number;
  reach: Set<number>;
  records: CreatedRecord[];
  /** Observations the doctor may see (reachable patient, not restricted). */
  visibleObservations: string[];
  /** Reachable patients with at least one Observation (search values). */
  searchPatients: number[];
  /** Family-name prefixes of reachable patients (search values). */
  namePrefixes: string[];
}

interface Check {
  what: string;
  operator: number | string;
  doctor: number | string;
  ok: boolean;
}

async function getBundle(server: ServerProcess, auth: Auth, path: string): Promise<{ total: number; entries: Json[] }> {
  const json = await call(server, auth, 'GET', path, undefined, [200]);
  return { total: json.total as number, entries: ((json.entry ?? []) as { resource: Json; search?: { mode?: string } }[]).filter((e) => e.search?.mode !== 'outcome').map((e) => e.resource) };
}

const subjectPatient = (r: Json): string | undefined => {
  const ref = ((r.subject ?? r.patient) as { reference?: string } | undefined)?.reference;
  return ref?.startsWith('Patient/') ? ref.slice('Patient/'.length) : undefined;
};
const labelledRestricted = (r: Json) =>
  (((r.meta as Json | undefined)?.security ?? []) as { system?: string; code?: string }[]).some((c) => c.system === ACCESS_SYSTEMS.confidentiality && c.code === 'R');

async function checkAnswers(server: ServerProcess, operator: Auth, doctor: Auth, world: World): Promise<{ checks: Check[]; problems: string[] }> {
  const checks: Check[] = [];
  const problems: string[] = [];
  const reachIds = new Set([...world.reach].map((p) => world.patientIds[p]!));
  const count = (type: string, pred: (r: CreatedRecord) => boolean) => world.records.filter((r) => r.type === type && pred(r)).length;
  const visible = (r: CreatedRecord) => world.reach.has(r.patient) && !r.restricted;
  const expectTotals = async (what: string, path: string, expectOperator: number, expectDoctor: number, entryCheck?: (r: Json) => string | undefined) => {
    const [op, doc] = [await getBundle(server, operator, path), await getBundle(server, doctor, path)];
    const ok = op.total === expectOperator && doc.total === expectDoctor;
    checks.push({ what, operator: `${fmt(op.total)} (expected ${fmt(expectOperator)})`, doctor: `${fmt(doc.total)} (expected ${fmt(expectDoctor)})`, ok });
    if (!ok) problems.push(`${what}: totals operator ${op.total}/${expectOperator}, doctor ${doc.total}/${expectDoctor} (answer/expected)`);
    for (const r of doc.entries) {
      const wrong = entryCheck?.(r);
      if (wrong) problems.push(`${what}: the doctor got ${String(r.resourceType)}/${String(r.id)}: ${wrong}`);
    }
  };
  const reachable = (r: Json) => {
    const p = r.resourceType === 'Patient' ? (r.id as string) : subjectPatient(r);
    if (!p || !reachIds.has(p)) return `its patient ${p ?? '(none)'} is not reachable`;
    if (labelledRestricted(r)) return 'it is labelled restricted';
    return undefined;
  };

  await expectTotals('Patient?_summary=count', '/Patient?_summary=count', world.patientIds.length, world.reach.size);
  for (const type of ['Observation', 'Condition', 'Encounter', 'MedicationRequest', 'DiagnosticReport', 'Immunization', 'AllergyIntolerance']) {
    await expectTotals(`${type}?_summary=count`, `/${type}?_summary=count`, count(type, () => true), count(type, visible));
  }
  const rng = new Rng(4242);
  for (let i = 0; i < 3 && world.searchPatients.length; i++) {
    const p = rng.pick(world.searchPatients);
    const id = world.patientIds[p]!;
    const all = count('Observation', (r) => r.patient === p);
    const seen = count('Observation', (r) => r.patient === p && !r.restricted);
    await expectTotals(`Observation?patient= (#${i + 1})`, `/Observation?patient=${id}`, all, seen, reachable);
    await expectTotals(`Observation?patient=&_sort=-date (#${i + 1})`, `/Observation?patient=${id}&_sort=-date`, all, seen, reachable);
  }
  // A patient the doctor's HCP does not reach: nothing of theirs.
  const stranger = world.patientIds.findIndex((_, p) => !world.reach.has(p) && world.records.some((r) => r.patient === p && r.type === 'Observation'));
  if (stranger >= 0) {
    await expectTotals('Observation?patient= (unreachable patient)', `/Observation?patient=${world.patientIds[stranger]}`, count('Observation', (r) => r.patient === stranger), 0);
  }
  for (let i = 0; i < 3; i++) {
    const k = rng.int(0, OBSERVATION_KINDS.length - 1);
    const code = OBSERVATION_KINDS[k]!.code;
    await expectTotals(`Observation?code=${code}&_count=20`, `/Observation?code=${enc(`${LOINC}|${code}`)}&_count=20`, count('Observation', (r) => r.item === k), count('Observation', (r) => r.item === k && visible(r)), reachable);
  }
  await expectTotals('Condition?_count=20', '/Condition?_count=20', count('Condition', () => true), count('Condition', visible), reachable);
  for (let i = 0; i < 3 && world.namePrefixes.length; i++) {
    const prefix = rng.pick(world.namePrefixes);
    const folded = fold(prefix);
    const matching = world.patientIds.flatMap((_, p) => (nameStrings(registrationPatient(world.population, p).patient).some((s) => s.startsWith(folded)) ? [p] : []));
    await expectTotals(`Patient?name=${prefix}`, `/Patient?name=${enc(prefix)}`, matching.length, matching.filter((p) => world.reach.has(p)).length, reachable);
  }

  // Single reads: a visible record, one of an unreachable patient, a restricted one of a reachable patient.
  const readCheck = async (what: string, record: CreatedRecord | undefined, doctorStatus: number) => {
    if (!record) return;
    const path = `${server.baseUrl}/${record.type}/${record.id}`;
    const status = async (auth: Auth) => {
      const res = await fetch(path, { headers: { accept: FHIR_JSON, authorization: auth }, signal: AbortSignal.timeout(30_000) });
      await res.arrayBuffer();
      return res.status;
    };
    const [op, doc] = [await status(operator), await status(doctor)];
    const ok = op === 200 && doc === doctorStatus;
    checks.push({ what, operator: String(op), doctor: `${doc} (expected ${doctorStatus})`, ok });
    if (!ok) problems.push(`${what}: operator ${op}, doctor ${doc} (expected 200 and ${doctorStatus})`);
  };
  await readCheck('read Observation of a reachable patient', world.records.find((r) => r.type === 'Observation' && visible(r)), 200);
  await readCheck('read Observation of an unreachable patient', world.records.find((r) => r.type === 'Observation' && !world.reach.has(r.patient)), 404);
  await readCheck('read restricted Observation of a reachable patient', world.records.find((r) => r.type === 'Observation' && world.reach.has(r.patient) && r.restricted), 404);
  return { checks, problems };
}

// ---------------------------------------------------------------------------------------------
// The measured runs.

interface RunSpec {
  name: RunName;
  query: string;
  connections: number;
  path: (rng: Rng) => string;
}

function runSpecs(world: World, s: AccessSettings): RunSpec[] {
  const patientId = (rng: Rng) => world.patientIds[rng.pick(world.searchPatients)]!;
  const specs: RunSpec[] = [
    { name: 'read', query: 'GET Observation/{id} (ids the doctor may see)', connections: s.readConnections, path: (rng) => `/fhir/Observation/${rng.pick(world.visibleObservations)}` },
    { name: 'patient', query: 'Observation?patient={reachable}', connections: s.searchConnections, path: (rng) => `/fhir/Observation?patient=${patientId(rng)}` },
    {
      name: 'code',
      query: 'Observation?code=loinc|{code}&_count=20',
      connections: s.searchConnections,
      path: (rng) => `/fhir/Observation?code=${enc(`${LOINC}|${rng.pick(OBSERVATION_KINDS).code}`)}&_count=20`,
    },
    { name: 'condition', query: 'Condition?_count=20', connections: s.searchConnections, path: () => '/fhir/Condition?_count=20' },
    { name: 'sorted', query: 'Observation?patient={reachable}&_sort=-date', connections: s.searchConnections, path: (rng) => `/fhir/Observation?patient=${patientId(rng)}&_sort=-date` },
    { name: 'name', query: 'Patient?name={prefix of a reachable patient}', connections: s.searchConnections, path: (rng) => `/fhir/Patient?name=${enc(rng.pick(world.namePrefixes))}` },
  ];
  return specs.filter((spec) => s.only.length === 0 || s.only.includes(spec.name));
}

type Who = 'operator' | 'doctor';

async function measure(server: ServerProcess, settings: BenchSettings, spec: RunSpec, who: Who, auth: Auth, round: number, seconds = settings.seconds): Promise<LoadResult> {
  // The same seed for both principals: the same values in (about) the same order.
  const rng = new Rng(mix(fnv1a(spec.name), round));
  const request: autocannon.Request = {
    method: 'GET',
    headers: { accept: FHIR_JSON, authorization: auth },
    setupRequest: (req) => {
      req.path = spec.path(rng);
      return req;
    },
  };
  process.stdout.write(`   ${spec.name} · ${who} #${round + 1}: ${settings.warmupSeconds} s warm-up + ${seconds} s at ${spec.connections} connections ...`);
  const result = await runLoad({ name: `${spec.name} · ${who} #${round + 1}`, server, connections: spec.connections, seconds, warmupSeconds: settings.warmupSeconds, requests: [request] });
  const broken = result.errors > 0 || result.requests === 0;
  process.stdout.write(
    ` ${fmt(result.rps)} req/s, p50 ${result.latencyMs.p50} ms, p99 ${result.latencyMs.p99} ms${result.non2xx ? `, ${result.non2xx} non-2xx` : ''}` +
      `${broken ? `, ${result.errors} errors (${result.timeouts} timeouts)` : ''}`,
  );
  // Requests autocannon gave up on are still queued in the server: let them drain before the next run.
  const drained = await settle(server);
  process.stdout.write(`${drained.ms > 500 ? ` [server busy ${fmt(drained.ms / 1000, 1)} s after the run${drained.settled ? '' : ', NOT settled'}]` : ''}\n`);
  return result;
}

/**
 * Waits until the server answers a trivial request quickly again (leftover requests done) and
 * then until it is idle: the audit thread indexes the events of a run (or of the load, 100,000
 * creates) after answering them, and a run started meanwhile measures that backlog too (a
 * doctor's request that queues a notification waits for the write gate behind it).
 */
async function settle(server: ServerProcess, capMs = SETTLE_CAP_MS): Promise<{ settled: boolean; ms: number }> {
  const started = performance.now();
  const answering = await answersQuickly(server, capMs);
  if (!answering.settled) return answering;
  for (let before = processCpuSeconds(server.pid); performance.now() - started < capMs; ) {
    await new Promise((resolve) => setTimeout(resolve, IDLE_WINDOW_MS));
    const now = processCpuSeconds(server.pid);
    if (before === undefined || now === undefined) break;
    if ((now - before) * 1000 < IDLE_WINDOW_MS * IDLE_CORES) return { settled: true, ms: performance.now() - started };
    before = now;
  }
  return { settled: false, ms: performance.now() - started };
}

/** A server using less than this share of a core over IDLE_WINDOW_MS is idle (timers and the dispatcher's polls aside). */
const IDLE_CORES = 0.05;
const IDLE_WINDOW_MS = 500;

async function answersQuickly(server: ServerProcess, capMs: number): Promise<{ settled: boolean; ms: number }> {
  const started = performance.now();
  let quick = 0;
  while (performance.now() - started < capMs) {
    const t = performance.now();
    try {
      // AbortSignal.timeout takes whole milliseconds only: a fractional delay throws, and every
      // probe failed at once until the cap was nearly up (each run's settle took about 60 s).
      const res = await fetch(`${server.baseUrl}/metadata`, { signal: AbortSignal.timeout(Math.max(500, Math.round(capMs - (t - started)))) });
      await res.arrayBuffer();
    } catch {
      server.assertAlive();
      await new Promise((resolve) => setTimeout(resolve, 20));
      continue;
    }
    if (performance.now() - t < 50) {
      if (++quick >= 2) return { settled: true, ms: performance.now() - started };
    } else {
      quick = 0;
    }
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  return { settled: false, ms: performance.now() - started };
}

interface Probe {
  /** Median and max of sequential requests (1 connection): the service time, no queueing. */
  medianMs: number;
  maxMs: number;
  statuses: number[];
}

/** A few sequential requests of a run's shape, with the run's values: what one request costs alone. */
async function probe(server: ServerProcess, spec: RunSpec, auth: Auth, count = PROBES): Promise<Probe> {
  const rng = new Rng(mix(fnv1a(spec.name), 0));
  const times: number[] = [];
  const statuses: number[] = [];
  for (let i = 0; i <= count; i++) {
    const t = performance.now();
    const res = await fetch(`${server.origin}${spec.path(rng)}`, { headers: { accept: FHIR_JSON, authorization: auth }, signal: AbortSignal.timeout(60_000) });
    await res.arrayBuffer();
    if (i > 0) times.push(performance.now() - t); // the first warms caches
    statuses.push(res.status);
  }
  times.sort((a, b) => a - b);
  return { medianMs: times[Math.floor((times.length - 1) / 2)] ?? 0, maxMs: times[times.length - 1] ?? 0, statuses };
}

interface Pair {
  spec: RunSpec;
  operator: LoadResult[];
  doctor: LoadResult[];
  probes: Record<Who, Probe>;
}

/** A load run that measured nothing trustworthy: connection errors or timeouts, or no answer at all. */
const brokenRun = (r: LoadResult) => r.errors > 0 || r.requests === 0;

const mean = (values: number[]) => (values.length ? values.reduce((a, b) => a + b, 0) / values.length : 0);
const pct = (value: number, base: number) => (base > 0 ? round((value / base - 1) * 100, 1) : 0);
const loss = (value: number, base: number) => (base > 0 ? round((1 - value / base) * 100, 1) : 0);

function summarize(pairs: Pair[], s: AccessSettings): { notes: string[]; targets: Target[]; overheads: Record<string, unknown> } {
  const rows: string[][] = [];
  const targets: Target[] = [];
  const overheads: Record<string, unknown> = {};
  const figures = (runs: LoadResult[]) => {
    const good = runs.filter((r) => !brokenRun(r));
    const avg = (f: (r: LoadResult) => number) => mean(good.map(f));
    return { runs: good.length, broken: runs.length - good.length, rps: avg((r) => r.rps), p50: avg((r) => r.latencyMs.p50), p99: avg((r) => r.latencyMs.p99), mean: avg((r) => r.latencyMs.mean), perCore: avg((r) => r.server.rpsPerCore) };
  };
  for (const { spec, operator, doctor, probes } of pairs) {
    const op = figures(operator);
    const doc = figures(doctor);
    const loaded = op.runs > 0 && doc.runs > 0;
    const probeOverhead = pct(probes.doctor.medianMs, probes.operator.medianMs);
    const perRound = operator.map((o, i) => {
      const d = doctor[i];
      if (!d || brokenRun(o) || brokenRun(d)) return 'broken';
      return spec.name === 'read' ? `${loss(d.rps, o.rps)}%` : `${pct(d.latencyMs.p50, o.latencyMs.p50)}%`;
    });
    const dash = (f: () => string) => (loaded ? f() : '-');
    rows.push([
      spec.name,
      spec.query,
      String(spec.connections),
      `${fmt(probes.operator.medianMs, 1)} / ${fmt(probes.doctor.medianMs, 1)}`,
      `${probeOverhead}%`,
      op.runs ? fmt(op.rps) : '-',
      doc.runs ? fmt(doc.rps) : '-',
      dash(() => `${loss(doc.rps, op.rps)}%`),
      dash(() => `${loss(doc.perCore, op.perCore)}%`),
      op.runs ? `${fmt(op.p50, 1)} / ${fmt(op.p99, 1)}` : '-',
      doc.runs ? `${fmt(doc.p50, 1)} / ${fmt(doc.p99, 1)}` : '-',
      dash(() => `${pct(doc.p50, op.p50)}%`),
      perRound.length ? perRound.join(', ') : 'not load-tested',
    ]);
    overheads[spec.name] = {
      probes: { operatorMedianMs: round(probes.operator.medianMs, 2), doctorMedianMs: round(probes.doctor.medianMs, 2), operatorMaxMs: round(probes.operator.maxMs, 1), doctorMaxMs: round(probes.doctor.maxMs, 1), overheadPct: probeOverhead },
      operator: op,
      doctor: doc,
      ...(loaded && {
        throughputLossPct: loss(doc.rps, op.rps),
        throughputPerCoreLossPct: loss(doc.perCore, op.perCore),
        p50OverheadPct: pct(doc.p50, op.p50),
        p99OverheadPct: pct(doc.p99, op.p99),
        meanOverheadPct: pct(doc.mean, op.mean),
      }),
      headlinePerRound: perRound,
    };
    // Under load when both principals have good runs; else (timeouts, too slow to load) from the sequential probes.
    const fallback = loaded ? '' : ' [from sequential probes: not measurable under load]';
    if (spec.name === 'read') {
      const value = loaded ? loss(doc.rps, op.rps) : round((1 - probes.operator.medianMs / probes.doctor.medianMs) * 100, 1);
      targets.push(target(`read throughput cost of enforcement (${spec.connections} conn)${fallback}`, value, '<=', TARGETS.readOverheadPct, '%'));
    } else {
      const value = loaded ? pct(doc.p50, op.p50) : probeOverhead;
      targets.push(target(`${spec.name} search p50 cost of enforcement (${spec.connections} conn)${fallback}`, value, '<=', TARGETS.searchP50OverheadPct, '%'));
    }
  }
  const notes = [
    table(
      ['run', 'request', 'conn', 'alone ms op / doc', 'alone +', 'operator req/s', 'doctor req/s', 'req/s lost', 'req/s/core lost', 'operator p50/p99 ms', 'doctor p50/p99 ms', 'p50 +', 'target metric per round'],
      rows,
      2,
    ),
    `   "alone": median of ${PROBES} sequential requests (1 connection, no queueing) before the load runs; a shape slower than ${SLOW_MS} ms alone is not load-tested.`,
    `   Load figures: means over the good runs of ${s.rounds} round(s) (principals alternating who goes first); "req/s lost" = 1 − doctor/operator`,
    '   throughput (the read target), "req/s/core lost" the same per server CPU core used (steadier when other processes compete), "p50 +" =',
    '   doctor p50 / operator p50 − 1 (the search target; autocannon records whole ms; at 16 connections p50 is ~16 × the service time).',
  ];
  return { notes, targets, overheads };
}

// ---------------------------------------------------------------------------------------------
// CPU profiles on request: a fresh server per principal on the same database.

async function profile(dbPath: string, dir: string, settings: BenchSettings, specs: RunSpec[], claims: Record<Who, PrincipalClaim>): Promise<string[]> {
  const written: string[] = [];
  for (const who of ['operator', 'doctor'] as const) {
    const out = join(dir, who);
    const server = await ServerProcess.start({ log: 'null', sqlitePath: dbPath, nodeArgs: ['--cpu-prof', `--cpu-prof-dir=${out}`] });
    try {
      const auth = await (await Principals.of(server)).authorization(claims[who]);
      for (const spec of specs) await measure(server, settings, spec, who, auth, 0);
    } finally {
      await server.stop();
    }
    if (existsSync(out)) written.push(...readdirSync(out).map((f) => join(out, f)));
  }
  return written;
}

// ---------------------------------------------------------------------------------------------
// The scenario.

/** Which source the built server came from: other work may be in progress in the same tree. */
function treeState(): string {
  const git = (...args: string[]) => {
    const result = spawnSync('git', ['-C', repoRoot, ...args], { encoding: 'utf8' });
    return result.status === 0 ? result.stdout.trim() : undefined;
  };
  const head = git('log', '-1', '--format=%h %s')?.slice(0, 90);
  if (head === undefined) return process.env.BENCH_TREE_LABEL ?? `${repoRoot} (not a git work tree)`;
  const dirty = (git('status', '--porcelain', '--', 'src', 'profiles') ?? '').split('\n').filter(Boolean).map((l) => l.slice(3));
  return `${head}${dirty.length ? `; uncommitted in src/profiles: ${dirty.join(', ')}` : '; src clean'}`;
}

function fileSizeMB(path: string): number {
  try {
    return statSync(path).size / MB;
  } catch {
    return 0;
  }
}

export const access: Scenario = {
  name: 'access',
  description: DESCRIPTION,
  timeLimitSeconds(settings) {
    const s = settingsOf(settings);
    const perRun = settings.seconds + settings.warmupSeconds + 10;
    // Territory set-up at a pessimistic 50 requests/s, the load (capped) and some slack, the runs, the profiles.
    const setup = (s.hcps * 8 + (s.resources / 100) * 6) / 50;
    return 300 + setup + s.loadLimitSeconds * 1.2 + 120 + s.rounds * RUN_NAMES.length * 2 * perRun + (s.profileDir ? RUN_NAMES.length * 2 * perRun + 120 : 0);
  },
  async run(settings): Promise<ScenarioReport> {
    const startedAt = new Date().toISOString();
    const s = settingsOf(settings);
    const unknown = s.only.filter((o) => !(RUN_NAMES as readonly string[]).includes(o));
    if (unknown.length) throw new Error(`BENCH_ONLY: unknown '${unknown.join(', ')}' (known: ${RUN_NAMES.join(', ')})`);
    const tree = treeState();
    console.log(`   server built from: ${tree}`);
    const population = generatePopulation(s.resources);
    const clinicalPlanned = RESOURCE_TYPES.filter((t) => t !== 'Organization' && t !== 'Practitioner' && t !== 'Patient').reduce((n, t) => n + population.counts[t], 0);
    console.log(`   plan: ${s.hcps} HCPs, ${fmt(population.counts.Patient)} patients, ${fmt(clinicalPlanned)} clinical resources (${RESOURCE_TYPES.filter((t) => population.counts[t] && !['Organization', 'Practitioner', 'Patient'].includes(t)).map((t) => `${fmt(population.counts[t])} ${t === 'Procedure' ? 'DiagnosticReport' : t}`).join(', ')})`);

    // The first server's directory holds the database: kept while it runs (profiles reuse it), removed at the end.
    const server = await ServerProcess.start({ log: settings.serverLog, keep: true, nodeArgs: settings.serverNodeArgs });
    const dir = server.dir;
    const dbPath = join(dir, 'fhir.sqlite');
    const cleanup = () => {
      if (!settings.keep) rmSync(dir, { recursive: true, force: true });
    };
    process.once('exit', cleanup);
    const warnings: string[] = [];
    const runs: LoadResult[] = [];
    let error: string | undefined;
    let setup: Record<string, unknown> = {};
    const notes: string[] = [];
    const targets: Target[] = [];
    let problems: string[] = [];
    try {
      const principals = await Principals.of(server);
      const operator = await principals.authorization(OPERATOR);
      const t0 = performance.now();
      const setupWindow = server.sampler.begin();
      const busyBefore = systemBusySeconds();
      const cpuBefore = process.cpuUsage();

      process.stdout.write(`   registering ${s.hcps} HCPs (approve, user administrator, doctor account) ...`);
      const hcps = await registerHcps(server, principals, s.hcps);
      const tHcps = performance.now();
      process.stdout.write(` ${((tHcps - t0) / 1000).toFixed(1)} s\n   registering and activating ${fmt(population.counts.Patient)} patients ...`);
      const patientIds = await registerPatients(server, principals, population, s.ingestConcurrency);
      const tPatients = performance.now();
      const sharing = planSharing(population, s.hcps);
      process.stdout.write(` ${((tPatients - tHcps) / 1000).toFixed(1)} s\n   writing ${fmt(sharing.consents.length)} sharing consents and ${fmt(sharing.care.length)} care relationships ...`);
      await writeSharing(server, sharing, patientIds, hcps, s.ingestConcurrency);
      const tSharing = performance.now();
      process.stdout.write(` ${((tSharing - tPatients) / 1000).toFixed(1)} s\n`);

      const ids = Object.fromEntries(RESOURCE_TYPES.map((t) => [t, new Array<string | undefined>(population.counts[t])])) as IdTable;
      ids.Patient = patientIds;
      ids.Organization = Array.from({ length: population.counts.Organization }, (_, i) => hcps[i % hcps.length]!.id);
      ids.Practitioner = Array.from({ length: population.counts.Practitioner }, (_, i) => hcps[i % hcps.length]!.doctorPractitionerId);
      process.stdout.write(`   loading ${fmt(clinicalPlanned)} clinical resources (${s.ingestConcurrency} in parallel, at most ${s.loadLimitSeconds} s) ...`);
      const loaded = await loadClinical(server, population, ids, s.ingestConcurrency, s.loadLimitSeconds);
      const setupCpu = setupWindow();
      const setupSeconds = (performance.now() - t0) / 1000;
      const loaderCpu = process.cpuUsage(cpuBefore);
      const loaderCores = (loaderCpu.user + loaderCpu.system) / 1e6 / setupSeconds;
      const otherCores = Math.max(0, (systemBusySeconds() - busyBefore) / setupSeconds - setupCpu.cpuCores - loaderCores);
      process.stdout.write(` ${fmt(loaded.records.length)} in ${loaded.seconds.toFixed(1)} s (${fmt(loaded.records.length / loaded.seconds)}/s)\n`);
      server.assertAlive();
      if (loaded.skipped) warnings.push(`${fmt(loaded.skipped)} clinical resources skipped: they refer to resources that were not created`);
      if (loaded.failed) {
        for (const f of loaded.firstFailures) console.error(`     ${f}`);
        throw new Error(`${loaded.failed} clinical creates failed; the first: ${loaded.firstFailures[0] ?? ''}`);
      }
      if (loaded.cappedAt !== undefined) {
        warnings.push(
          `the clinical load reached BENCH_ACCESS_LOAD_LIMIT_SECONDS=${s.loadLimitSeconds} s and stopped at ${fmt(loaded.records.length)} of ${fmt(loaded.planned)} resources (in time order); ` +
            `the figures are for that smaller store (lower BENCH_ACCESS_RESOURCES to plan for it)`,
        );
      }

      // The doctor: the HCP whose reach is nearest the average.
      const average = mean(sharing.reach.map((r) => r.size));
      const doctorHcp = sharing.reach.reduce((best, r, h) => (Math.abs(r.size - average) < Math.abs(sharing.reach[best]!.size - average) ? h : best), 0);
      const reach = sharing.reach[doctorHcp]!;
      const doctorClaim: PrincipalClaim = { kind: 'account', practitionerRoleId: hcps[doctorHcp]!.doctorRoleId };
      const doctor = await principals.authorization(doctorClaim);
      const observationsOf = new Map<number, number>();
      for (const r of loaded.records) if (r.type === 'Observation') observationsOf.set(r.patient, (observationsOf.get(r.patient) ?? 0) + 1);
      const world: World = {
        population,
        patientIds,
        doctorHcp,
        reach,
        records: loaded.records,
        visibleObservations: loaded.records.filter((r) => r.type === 'Observation' && reach.has(r.patient) && !r.restricted).map((r) => r.id),
        searchPatients: [...reach].filter((p) => (observationsOf.get(p) ?? 0) > 0).sort((a, b) => a - b),
        namePrefixes: [...new Set([...reach].sort((a, b) => a - b).map((p) => [...(registrationPatient(population, p).patient.name![0]!.family ?? '')].slice(0, 3).join('')).filter(Boolean))],
      };
      if (world.visibleObservations.length === 0 || world.searchPatients.length === 0) throw new Error('the doctor reaches no Observations: nothing to measure');

      const dbMB = fileSizeMB(dbPath) + fileSizeMB(`${dbPath}-wal`);
      const reachSizes = sharing.reach.map((r) => r.size);
      const restrictedCount = loaded.records.filter((r) => r.restricted).length;
      setup = {
        tree,
        hcps: s.hcps,
        patients: patientIds.length,
        sharingConsents: sharing.consents.length,
        careRelationships: sharing.care.length,
        reachMin: Math.min(...reachSizes),
        reachMedian: [...reachSizes].sort((a, b) => a - b)[Math.floor(reachSizes.length / 2)],
        reachMax: Math.max(...reachSizes),
        clinicalPlanned: loaded.planned,
        clinicalCreated: loaded.records.length,
        restrictedCreated: restrictedCount,
        clinicalByType: loaded.byType,
        clinicalSkipped: loaded.skipped,
        loadCappedAtLimit: loaded.cappedAt !== undefined,
        hcpSetupSeconds: round((tHcps - t0) / 1000, 1),
        patientSetupSeconds: round((tPatients - tHcps) / 1000, 1),
        sharingSetupSeconds: round((tSharing - tPatients) / 1000, 1),
        clinicalLoadSeconds: round(loaded.seconds, 1),
        clinicalPerSecond: round(loaded.records.length / loaded.seconds),
        setupTotalSeconds: round(setupSeconds, 1),
        setupServerCpuCores: round(setupCpu.cpuCores, 2),
        setupLoaderCpuCores: round(loaderCores, 2),
        setupOtherCpuCores: round(otherCores, 2),
        setupPeakRssMB: round(setupCpu.peakRssBytes / MB, 1),
        databaseMB: round(dbMB, 1),
        doctorHcp: hcps[doctorHcp]!.id,
        doctorAccount: `PractitionerRole/${hcps[doctorHcp]!.doctorRoleId}`,
        doctorReach: reach.size,
        doctorVisibleObservations: world.visibleObservations.length,
      };
      console.log(
        `   territory and record ready in ${fmt(setupSeconds)} s (HCPs ${fmt((tHcps - t0) / 1000)} s, patients ${fmt((tPatients - tHcps) / 1000)} s, ` +
          `consents and care ${fmt((tSharing - tPatients) / 1000)} s, clinical ${fmt(loaded.seconds)} s); database ${fmt(dbMB)} MB`,
      );
      console.log(`   doctor: PractitionerRole/${hcps[doctorHcp]!.doctorRoleId} at Organization/${hcps[doctorHcp]!.id}, reaching ${reach.size} patients, ${fmt(world.visibleObservations.length)} visible Observations`);

      // The audit trail of the load is indexed behind it: measure nothing before that is done.
      const loadDrained = await settle(server, LOAD_SETTLE_CAP_MS);
      console.log(`   server idle ${fmt(loadDrained.ms / 1000, 1)} s after the load${loadDrained.settled ? '' : ' (NOT settled)'}`);

      // Correctness, before measuring: exact totals for both principals, nothing out of reach.
      process.stdout.write('   checking answers ...');
      const checked = await checkAnswers(server, operator, doctor, world);
      problems = checked.problems;
      process.stdout.write(` ${checked.checks.filter((c) => c.ok).length} of ${checked.checks.length} right${problems.length ? `; ${problems.length} PROBLEMS` : ''}\n`);

      // The runs: each round both principals, alternating who goes first.
      const specs = runSpecs(world, s);
      const auth: Record<Who, Auth> = { operator, doctor };
      const pairs: Pair[] = [];
      for (const spec of specs) {
        const probes = { operator: await probe(server, spec, operator), doctor: await probe(server, spec, doctor) };
        console.log(`   ${spec.name} alone (median of ${PROBES} sequential): operator ${fmt(probes.operator.medianMs, 1)} ms, doctor ${fmt(probes.doctor.medianMs, 1)} ms`);
        const bad = [...probes.operator.statuses, ...probes.doctor.statuses].filter((status) => status !== 200);
        if (bad.length) problems.push(`${spec.name}: sequential requests answered ${bad.join(', ')}`);
        pairs.push({ spec, operator: [], doctor: [], probes });
      }
      const loadable = pairs.filter((p) => Math.max(p.probes.operator.medianMs, p.probes.doctor.medianMs) <= SLOW_MS);
      for (const p of pairs.filter((x) => !loadable.includes(x))) {
        warnings.push(`${p.spec.name}: not load-tested (a request alone takes ${fmt(Math.max(p.probes.operator.medianMs, p.probes.doctor.medianMs))} ms; at ${p.spec.connections} connections every request would time out); its target uses the sequential requests`);
      }
      try {
        for (let round = 0; round < s.rounds; round++) {
          for (const pair of loadable) {
            const order: Who[] = round % 2 === 0 ? ['operator', 'doctor'] : ['doctor', 'operator'];
            for (const who of order) {
              const result = await measure(server, settings, pair.spec, who, auth[who], round);
              runs.push(result);
              pair[who].push(result);
            }
          }
        }
      } catch (err) {
        error = err instanceof Error ? err.message : String(err);
        process.stdout.write(' failed\n');
      }
      const summary = summarize(pairs, s);
      const non2xx = runs.reduce((n, r) => n + r.non2xx + (r.warmup?.non2xx ?? 0), 0);
      notes.push(
        table(
          ['HCPs', 'patients', 'consents', 'care', 'reach min/median/max', 'clinical', 'restricted', 'load s', 'load /s', 'DB MB'],
          [[String(s.hcps), fmt(patientIds.length), fmt(sharing.consents.length), fmt(sharing.care.length), `${setup.reachMin}/${setup.reachMedian}/${setup.reachMax}`, fmt(loaded.records.length), fmt(restrictedCount), fmt(loaded.seconds), fmt(loaded.records.length / loaded.seconds), fmt(dbMB)]],
        ),
        `   clinical by type: ${Object.entries(loaded.byType).map(([t, n]) => `${fmt(n)} ${t}`).join(', ')}; whole set-up ${fmt(setupSeconds)} s ` +
          `(server CPU ${fmt(setupCpu.cpuCores, 2)} cores, loader ${fmt(loaderCores, 2)}, other processes ${fmt(otherCores, 2)})${loaded.cappedAt !== undefined ? ' — LOAD STOPPED AT THE TIME LIMIT' : ''}`,
        `   server built from: ${tree}`,
        `   doctor account at one HCP reaching ${reach.size} patients (${fmt(world.visibleObservations.length)} Observations visible to it of ${fmt(loaded.byType.Observation ?? 0)}); operator = backend client system/*.*`,
        '',
        table(
          ['answer checked', 'operator', 'doctor', 'right'],
          checked.checks.map((c) => [c.what, String(c.operator), String(c.doctor), c.ok ? 'yes' : 'NO']),
          1,
        ),
        '',
        ...summary.notes,
      );
      targets.push(...summary.targets);
      targets.push(target('non-2xx answers during the runs (both principals)', non2xx, '<=', 0, ''));
      targets.push(target('wrong answers in the checks', problems.length, '<=', 0, ''));
      setup = { ...setup, overheads: summary.overheads, checks: checked.checks };
      warnings.push(...problems.slice(0, 10));

      if (s.profileDir && error === undefined) {
        const overall = server.sampler.overall();
        setup.peakRssMB = round(overall.peakRssBytes / MB, 1);
        await server.stop();
        console.log(`   profiling: one server per principal on the same database, --cpu-prof into ${s.profileDir}`);
        const files = await profile(dbPath, s.profileDir, settings, specs, { operator: OPERATOR, doctor: doctorClaim });
        notes.push('', `   CPU profiles (each principal's runs once, on its own server): ${files.join(', ')}`);
      }
    } catch (err) {
      error = err instanceof Error ? err.message : String(err);
    } finally {
      const overall = server.sampler.overall();
      const logBytes = server.logBytes();
      await server.stop();
      cleanup();
      setup = { ...setup, peakRssMB: setup.peakRssMB ?? round(overall.peakRssBytes / MB, 1), serverLogBytes: logBytes };
    }
    warnings.push(...runs.flatMap(anomalies));

    return {
      scenario: 'access',
      description: DESCRIPTION,
      startedAt,
      finishedAt: new Date().toISOString(),
      settings: { ...settings, ...s, connections: s.readConnections },
      environment: environment(),
      setup,
      runs,
      server: { peakRssMB: setup.peakRssMB as number, logBytes: (setup.serverLogBytes as number) ?? 0 },
      targets,
      warnings,
      notes,
      failed: error !== undefined || runs.some((r) => r.errors > 0 || (r.warmup?.errors ?? 0) > 0),
      ...(error !== undefined && { error }),
    };
  },
};
