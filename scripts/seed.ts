import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import { authFromConfig } from '../src/auth/from-config.js';
import { loadOrCreateDevKey } from '../src/auth/keys.js';
import type { PrincipalClaim } from '../src/auth/principal.js';
import { issueToken } from '../src/auth/tokens.js';
import { readConfig } from '../src/config.js';
import { hkicCheckDigit } from '../src/participation/hkic.js';
import { RULES, SYSTEMS } from '../src/participation/rules.js';
import { buildServer } from '../src/server.js';
import { software } from '../src/software.js';
import { PATIENT_OWNERSHIP } from '../src/fhir/search/compartments.js';
import { openStore } from '../src/store/open-store.js';

/**
 * `npm run seed`: a small demo territory on the configured store, made through the real API
 * (the same operations the registration office and user administrators use): HA, DH and six
 * private HCPs (one suspended), professionals of all 13 groups with accounts (one doctor at
 * two HCPs), patients in every state with their records from the Synthea sample, a child with
 * an SDM and a newborn. Prints ready-to-use development tokens.
 */

const config = readConfig();
if (config.mode === 'production') {
  console.error('seed: EHEALTH_MODE=production; the demo territory is for development only');
  process.exit(2);
}
const SYNTHEA = new URL('../../shared/data/synthea-10-patients/', import.meta.url);
const SUMMARY = join(config.sqlitePath.replace(/[^/]+$/, ''), 'demo-territory.json');

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- FHIR JSON from files and answers, read loosely
type Json = Record<string, any>;
type Tokens = Record<string, { claim: PrincipalClaim; note: string }>;

const store = await openStore(config, PATIENT_OWNERSHIP);
const auth = await authFromConfig(config);
const app = await buildServer({
  store, software, auth, publicProviders: true, bodyLimit: config.bodyLimit, defaultPageSize: 20, maxPageSize: 1000, pagingSecret: config.pagingSecret,
  baseUrl: config.baseUrl ?? `http://localhost:${config.port}/fhir`,
});
const key = await loadOrCreateDevKey(config.auth.devKeyFile);
const mint = (claim: PrincipalClaim, lifetimeSeconds = 8 * 3600) => issueToken(claim, { key, issuer: config.auth.issuers[0]!, audience: config.auth.audience, lifetimeSeconds });

async function call(app: FastifyInstance, claim: PrincipalClaim, method: string, url: string, payload?: unknown): Promise<Json> {
  const res = await app.inject({ method: method as 'POST', url, headers: { authorization: `Bearer ${await mint(claim, 300)}`, 'content-type': 'application/fhir+json' }, ...(payload !== undefined && { payload: payload as Json }) });
  if (res.statusCode >= 300) throw new Error(`${method} ${url} answered ${res.statusCode}: ${res.body.slice(0, 400)}`);
  return res.json();
}
const params = (parameter: Json[]) => ({ resourceType: 'Parameters', parameter });
const out = (result: Json, name: string) => (result.parameter as Json[]).filter((p) => p.name === name).map((p) => p.resource as Json);

const RO: PrincipalClaim = { kind: 'registration-office', staffId: 'ro-demo' };
const HA_CLIENT: PrincipalClaim = { kind: 'system', clientId: 'ha-bulk-demo', scopes: ['system/*.*'] };
let serial = 310_000;
const hkic = (letter: string) => {
  const digits = String(serial++);
  return `${letter}${digits}(${hkicCheckDigit(letter, digits)})`;
};

async function seed(): Promise<Tokens> {
  const tokens: Tokens = { 'registration-office': { claim: RO, note: 'the registration office' }, 'ha-bulk': { claim: HA_CLIENT, note: 'HA bulk exchange client (system/*.*)' } };

  // Providers: one of each establishment type, and a clinic that gets suspended.
  const hcps: { key: string; name: string; type: string; doc: string; district: string; suspend?: boolean }[] = [
    { key: 'hospital', name: 'Kowloon Bay Private Hospital', type: 'private-hospital', doc: 'certificate-of-registration-private-hospital', district: 'Kowloon Bay' },
    { key: 'clinic', name: 'Dr Chan Tai Man Clinic', type: 'medical-clinic', doc: 'certificate-of-registration-medical-clinic', district: 'Tsim Sha Tsui' },
    { key: 'dental', name: 'Sai Kung Dental Company', type: 'dental-company', doc: 'dh-acknowledgement-dental-particulars', district: 'Sai Kung' },
    { key: 'nursing', name: 'Sha Tin Nursing Home', type: 'nursing-home', doc: 'certificate-of-registration-nursing-home', district: 'Sha Tin' },
    { key: 'rche', name: 'Tuen Mun Elderly Care Home', type: 'rche', doc: 'licence-rche', district: 'Tuen Mun' },
    { key: 'entity', name: 'Kwun Tong Community Health Centre', type: 'specified-entity', doc: 'business-registration-certificate', district: 'Kwun Tong' },
    { key: 'suspended', name: 'Mong Kok Medical Clinic', type: 'medical-clinic', doc: 'certificate-of-registration-medical-clinic', district: 'Mong Kok', suspend: true },
  ];
  const orgIds: Record<string, string> = { ha: 'ha', dh: 'dh' };
  for (const [i, h] of hcps.entries()) {
    const organization = {
      resourceType: 'Organization', name: h.name,
      type: [{ coding: [{ system: SYSTEMS.establishmentType, code: h.type }] }],
      identifier: [{ type: { coding: [{ system: SYSTEMS.supportingDocument, code: h.doc }] }, system: `${SYSTEMS.supportingDocument}/${h.doc}`, value: `DEMO-${1000 + i}` }],
      telecom: [{ system: 'phone', value: `+852 2${String(100_0000 + i * 1111).slice(0, 3)} ${String(1000 + i)}` }],
    };
    const location = { resourceType: 'Location', status: 'active', name: `${h.name} (${h.district})`, address: { line: [`${10 + i} Demo Road`], district: h.district, country: 'HK' }, telecom: [{ system: 'phone', value: `+852 3${String(200 + i)} ${String(4000 + i)}` }] };
    const result = await call(app, RO, 'POST', '/fhir/Organization/$register', params([{ name: 'organization', resource: organization }, { name: 'location', resource: location }]));
    const id = out(result, 'organization')[0]!.id as string;
    orgIds[h.key] = id;
    await call(app, RO, 'POST', `/fhir/Organization/${id}/$approve`, params([]));
  }

  // Professionals of all 13 groups, valid for two more years.
  const validTo = `${new Date().getUTCFullYear() + 2}-12-31`;
  const practitioner = async (group: string, family: string, given: string, n: number) => {
    const resource = { resourceType: 'Practitioner', name: [{ family, given: [given], ...(group === 'medical-practitioner' && { prefix: ['Dr'] }) }], qualification: [{ code: { coding: [{ system: SYSTEMS.professionalGroup, code: group }] }, identifier: [{ value: `${group.slice(0, 3).toUpperCase()}${String(n).padStart(5, '0')}` }], period: { start: '2010-01-01', end: validTo } }] };
    return (await call(app, RO, 'POST', '/fhir/Practitioner/$register', params([{ name: 'practitioner', resource }]))).id as string;
  };
  const account = async (by: PrincipalClaim, org: string, practitionerId: string, userAdministrator = false) =>
    (await call(app, by, 'POST', `/fhir/Organization/${org}/$create-account`, params([{ name: 'practitioner', valueReference: { reference: `Practitioner/${practitionerId}` } }, ...(userAdministrator ? [{ name: 'userAdministrator', valueBoolean: true }] : [])]))).id as string;

  // Every HCP gets a nurse as user administrator (appointed by the registration office).
  const uaClaims: Record<string, PrincipalClaim> = {};
  for (const [i, org] of Object.keys(orgIds).entries()) {
    const nurse = await practitioner('nurse', 'Lee', `Admin ${org}`, 100 + i);
    const role = await account(RO, orgIds[org]!, nurse, true);
    uaClaims[org] = { kind: 'account', practitionerRoleId: role };
    tokens[`ua-${org}`] = { claim: uaClaims[org], note: `user administrator of ${org === 'ha' ? 'HA' : org === 'dh' ? 'DH' : hcps.find((h) => h.key === org)!.name}` };
  }
  const names = ['Chan', 'Wong', 'Cheung', 'Lau', 'Li', 'Ng', 'Ho', 'Leung', 'Lam', 'Tsang', 'Yip', 'Kwok', 'Tang'];
  const placement: Record<string, string> = { 'medical-practitioner': 'clinic', dentist: 'dental', midwife: 'hospital', nurse: 'nursing', pharmacist: 'hospital', 'medical-laboratory-technologist': 'hospital', 'occupational-therapist': 'rche', 'optometrist-part-i': 'entity', radiographer: 'ha', physiotherapist: 'dh', 'dental-hygienist': 'dental', chiropractor: 'entity', 'chinese-medicine-practitioner': 'entity' };
  for (const [i, group] of RULES.professionalGroups.map((g) => g.code).entries()) {
    const id = await practitioner(group, names[i]!, group === 'medical-practitioner' ? 'Tai Man' : 'Demo', i + 1);
    const at = placement[group]!;
    tokens[group] = { claim: { kind: 'account', practitionerRoleId: await account(uaClaims[at]!, orgIds[at]!, id) }, note: `${group} at ${at}` };
    if (group === 'medical-practitioner') {
      // Dr Chan also visits the private hospital: a second account there.
      tokens['doctor-at-hospital'] = { claim: { kind: 'account', practitionerRoleId: await account(uaClaims.hospital!, orgIds.hospital!, id) }, note: 'the same doctor, at the private hospital' };
    }
  }
  const haDoctor = await practitioner('medical-practitioner', 'Cheung', 'Wing Yan', 99);
  tokens['doctor-at-ha'] = { claim: { kind: 'account', practitionerRoleId: await account(uaClaims.ha!, 'ha', haDoctor) }, note: 'a doctor at HA' };
  const suspendedDoctor = await practitioner('medical-practitioner', 'Ma', 'Kin Fung', 98);
  tokens['doctor-at-suspended-hcp'] = { claim: { kind: 'account', practitionerRoleId: await account(uaClaims.suspended!, orgIds.suspended!, suspendedDoctor) }, note: 'a doctor whose HCP is suspended (gets 403)' };
  await call(app, RO, 'POST', `/fhir/Organization/${orgIds.suspended}/$suspend`, params([{ name: 'reason', valueString: 'Demo: registration suspended pending inspection' }]));

  // Patients from the Synthea sample (the living ones), each in a state.
  const synthea = readFileSync(new URL('Patient.000.ndjson', SYNTHEA), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as Json).filter((p) => !p.deceasedDateTime);
  const idMap = new Map<string, string>();
  const states: string[] = [];
  const joined: { id: string; document: { system: string; value: string } }[] = [];
  for (const [i, p] of synthea.entries()) {
    const doc = hkic(i % 2 ? 'Z' : 'Y');
    const age = new Date().getUTCFullYear() - Number(String(p.birthDate).slice(0, 4));
    const patient = { resourceType: 'Patient', name: p.name, gender: p.gender, birthDate: p.birthDate, telecom: p.telecom, address: [{ line: [`${i + 1} Nathan Road`], district: 'Yau Tsim Mong', country: 'HK' }], identifier: [{ system: SYSTEMS.identityDocument(age < 11 ? 'hk-birth-certificate' : 'hkic'), value: doc }] };
    const sdm = age < 16 ? [{ name: 'sdm', resource: { resourceType: 'RelatedPerson', patient: { reference: 'Patient/x' }, name: [{ family: p.name[0].family, given: ['Parent'] }], identifier: [{ system: SYSTEMS.identityDocument('hkic'), value: hkic('P') }], relationship: [{ coding: [{ system: SYSTEMS.sdmRelationship, code: 'parent' }] }] } }] : [];
    const result = await call(app, RO, 'POST', '/fhir/Patient/$register', params([{ name: 'patient', resource: patient }, ...sdm]));
    const id = out(result, 'patient')[0]!.id as string;
    idMap.set(p.id as string, id);
    const state = i === synthea.length - 1 ? 'pending-activation' : i === synthea.length - 2 ? 'withdrawn' : 'active';
    if (state !== 'pending-activation') await call(app, RO, 'POST', `/fhir/Patient/${id}/$activate`, params([{ name: 'identityDocument', valueString: doc }]));
    if (state === 'withdrawn') await call(app, RO, 'POST', `/fhir/Patient/${id}/$withdraw`, params([{ name: 'reason', valueString: 'Demo: withdrew from eHealth' }]));
    states.push(state);
    if (state === 'active') joined.push({ id, document: patient.identifier[0]! });
    const label = `patient-${state}${sdm.length ? '-child' : ''}-${i}`;
    tokens[label] = { claim: { kind: 'patient', patientId: id }, note: `${p.name[0].given[0]} ${p.name[0].family}, born ${p.birthDate}, ${state}` };
    const guardian = out(result, 'sdm')[0];
    if (guardian) tokens[`sdm-of-${i}`] = { claim: { kind: 'sdm', relatedPersonId: guardian.id as string }, note: `the parent acting for patient ${id}` };
  }
  // A newborn, registered at the birth hospital and not yet completed with the birth certificate.
  const baby = { resourceType: 'Patient', name: [{ family: 'Chan', given: ['Baby of Chan Mei Ling'] }], gender: 'female', birthDate: new Date(Date.now() - 5 * 86_400_000).toISOString().slice(0, 10), identifier: [{ system: SYSTEMS.identityDocument('birth-hospital-record'), value: 'KBPH-BR-0001' }] };
  const mother = { resourceType: 'RelatedPerson', patient: { reference: 'Patient/x' }, name: [{ family: 'Chan', given: ['Mei Ling'] }], identifier: [{ system: SYSTEMS.identityDocument('hkic'), value: hkic('M') }], relationship: [{ coding: [{ system: SYSTEMS.sdmRelationship, code: 'parent' }] }] };
  const newborn = await call(app, tokens['midwife']!.claim, 'POST', '/fhir/Patient/$register', params([{ name: 'patient', resource: baby }, { name: 'sdm', resource: mother }]));
  tokens['sdm-of-newborn'] = { claim: { kind: 'sdm', relatedPersonId: out(newborn, 'sdm')[0]!.id as string }, note: `mother of the newborn Patient/${out(newborn, 'patient')[0]!.id as string}` };

  // Their records, uploaded by HA's bulk client with the patients' new ids.
  let records = 0;
  for (const type of ['Encounter', 'Condition', 'AllergyIntolerance', 'Immunization', 'MedicationRequest', 'Procedure']) {
    for (const line of readFileSync(new URL(`${type}.000.ndjson`, SYNTHEA), 'utf8').trim().split('\n')) {
      const ref = /"Patient\/([0-9a-f-]{36})"/.exec(line)?.[1];
      const patientId = ref ? idMap.get(ref) : undefined;
      if (!patientId) continue;
      const resource = JSON.parse(line.replaceAll(`Patient/${ref}`, `Patient/${patientId}`)) as Json;
      delete resource.meta;
      await call(app, HA_CLIENT, 'PUT', `/fhir/${type}/${resource.id as string}`, resource);
      records++;
    }
  }
  // Sharing: every joined patient consents to the clinic (indefinitely) and to the private hospital
  // (for a year), and is under the care of the clinic and HA, verified at a visit.
  for (const [i, p] of joined.entries()) {
    const give = (org: string, option: string) =>
      call(app, RO, 'POST', `/fhir/Patient/${p.id}/$give-consent`, params([{ name: 'organization', valueReference: { reference: `Organization/${orgIds[org]}` } }, { name: 'option', valueCode: option }, { name: 'method', valueCode: 'signed-form' }]));
    await give('clinic', 'indefinite');
    if (i % 2 === 0) await give('hospital', 'one-year');
    const visit = [{ name: 'identifier', valueIdentifier: p.document }];
    await call(app, tokens['medical-practitioner']!.claim, 'POST', '/fhir/Patient/$establish-care', params(visit));
    await call(app, tokens['doctor-at-ha']!.claim, 'POST', '/fhir/Patient/$establish-care', params(visit));
    if (i % 2 === 0) await call(app, tokens['doctor-at-hospital']!.claim, 'POST', '/fhir/Patient/$establish-care', params(visit));
  }
  console.log(`seeded: ${Object.keys(orgIds).length} HCPs, ${RULES.professionalGroups.length + 2 + Object.keys(orgIds).length} professionals, ${synthea.length + 1} patients (${states.filter((s) => s === 'active').length} active), ${records} clinical records`);
  return tokens;
}

try {
  let tokens: Tokens;
  if (existsSync(SUMMARY) && !config.mongodbUri) {
    tokens = JSON.parse(readFileSync(SUMMARY, 'utf8')) as Tokens;
    console.log(`The demo territory is already seeded (${SUMMARY}); fresh tokens follow.`);
  } else {
    tokens = await seed();
    if (!config.mongodbUri) writeFileSync(SUMMARY, JSON.stringify(tokens, null, 2));
  }
  console.log('\nDevelopment tokens (valid 8 hours): export TOKEN=… then curl -H "Authorization: Bearer $TOKEN" …\n');
  for (const [name, { claim, note }] of Object.entries(tokens)) console.log(`# ${name}: ${note}\n${await mint(claim)}\n`);
} finally {
  await app.close();
  await store.close();
}
