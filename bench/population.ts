import type {
  AllergyIntolerance,
  CodeableConcept,
  Coding,
  Condition,
  Encounter,
  FhirResource,
  Immunization,
  MedicationRequest,
  Observation,
  Organization,
  Patient,
  Practitioner,
  Procedure,
  Quantity,
  Reference,
} from 'fhir/r4.js';
import {
  CHINESE_FAMILIES,
  CHINESE_GIVEN,
  DISTRICTS,
  ENGLISH_GIVEN_FEMALE,
  ENGLISH_GIVEN_MALE,
  OTHER_FAMILIES,
  OTHER_GIVEN_FEMALE,
  OTHER_GIVEN_MALE,
  Rng,
  STREETS,
  fnv1a,
  generatePatient,
  mix,
} from './patients.js';

/**
 * A deterministic, realistic EHR population for the search benchmark: Organizations,
 * Practitioners and Patients, and the clinical record that refers to them (Encounters,
 * Observations, Conditions, MedicationRequests, Procedures, Immunizations,
 * AllergyIntolerances) in proportions like a real EHR's, Observations the large majority.
 *
 * generatePopulation() plans the whole population as small facts (who, when, what code), the
 * same for the same size and seed; buildResource() turns one fact into its FHIR resource once
 * the server has assigned ids to what it refers to. The benchmark checks search answers against
 * the facts, so they are the ground truth.
 */

export const RESOURCE_TYPES = [
  'Organization',
  'Practitioner',
  'Patient',
  'Encounter',
  'Observation',
  'Condition',
  'MedicationRequest',
  'Procedure',
  'Immunization',
  'AllergyIntolerance',
] as const;
export type PopulationType = (typeof RESOURCE_TYPES)[number];
export type ClinicalType = Exclude<PopulationType, 'Organization' | 'Practitioner' | 'Patient'>;

/** Server-assigned ids by type, in the generator's index order (undefined: not created). */
export type IdTable = Record<PopulationType, (string | undefined)[]>;

export type PopulationCounts = Record<PopulationType, number>;

/** Share of the clinical resources (everything but Organizations, Practitioners, Patients). */
const CLINICAL_SHARE: Record<ClinicalType, number> = {
  Encounter: 0.1,
  Observation: 0.7,
  Condition: 0.05,
  MedicationRequest: 0.07,
  Procedure: 0.035,
  Immunization: 0.03,
  AllergyIntolerance: 0.015,
};

export const MIN_RESOURCES = 500;

/** How many of each type a population of `total` resources has (1,000 Patients per 100,000). */
export function plannedCounts(total: number): PopulationCounts {
  if (!Number.isInteger(total) || total < MIN_RESOURCES) throw new Error(`a population needs at least ${MIN_RESOURCES} resources`);
  const Organization = Math.max(2, Math.round(total * 0.0002));
  const Practitioner = Math.max(4, Math.round(total * 0.002));
  const Patient = Math.max(10, Math.round(total * 0.01));
  const rest = total - Organization - Practitioner - Patient;
  const clinical = Object.fromEntries(
    Object.entries(CLINICAL_SHARE).map(([type, share]) => [type, Math.floor(rest * share)]),
  ) as Record<ClinicalType, number>;
  const assigned = Object.values(clinical).reduce((a, b) => a + b, 0);
  clinical.Observation += rest - assigned;
  return { Organization, Practitioner, Patient, ...clinical };
}

/** One planned clinical resource: enough to build it, and to know which searches must find it. */
export interface ClinicalFact {
  type: ClinicalType;
  /** Index among the population's resources of this type. */
  index: number;
  patient: number;
  /** The encounter it was recorded in, or -1. */
  encounter: number;
  practitioner: number;
  organization: number;
  /** Index into the type's catalogue (the Observation kind, the Condition code, ...); for Encounters the class. */
  item: number;
  /** The clinically relevant time, ms: period start, effective, onset, authoredOn, performed, occurrence, recorded. */
  at: number;
  /** Encounters: period end. */
  end?: number;
}

export interface PatientFact {
  organization: number;
  practitioner: number;
  /** Birth date as ms (UTC midnight). */
  birth: number;
}

export interface Population {
  seed: number;
  counts: PopulationCounts;
  patients: PatientFact[];
  /** Practitioner i works at organization practitioners[i]. */
  practitioners: number[];
  clinical: Record<ClinicalType, ClinicalFact[]>;
  /** What to create, in order: each phase only refers to resources of earlier phases. */
  phases: { label: string; items: { type: PopulationType; index: number }[] }[];
}

// ---------------------------------------------------------------------------------------------
// Time: the record spans several years; stored times carry Hong Kong's offset.

const DAY = 86_400_000;
const MINUTE = 60_000;
export const SPAN_START = Date.UTC(2019, 0, 1);
export const SPAN_END = Date.UTC(2025, 5, 30);
const HK_OFFSET = 8 * 3_600_000;

/** A dateTime with seconds and the +08:00 offset, e.g. 2021-03-04T09:15:00+08:00. */
export function hkDateTime(ms: number): string {
  return `${new Date(ms + HK_OFFSET).toISOString().slice(0, 19)}+08:00`;
}

/** The date part of a time in Hong Kong, e.g. 2021-03-04. */
export function hkDate(ms: number): string {
  return new Date(ms + HK_OFFSET).toISOString().slice(0, 10);
}

// ---------------------------------------------------------------------------------------------
// Catalogues (real code systems; weights say how common each is).

const LOINC = 'http://loinc.org';
const SNOMED = 'http://snomed.info/sct';
const UCUM = 'http://unitsofmeasure.org';
const RXNORM = 'http://www.nlm.nih.gov/research/umls/rxnorm';
const CVX = 'http://hl7.org/fhir/sid/cvx';
const OBSERVATION_CATEGORY = 'http://terminology.hl7.org/CodeSystem/observation-category';
const INTERPRETATION = 'http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation';

interface ObservationKind {
  code: string;
  display: string;
  category: 'vital-signs' | 'laboratory';
  /** UCUM code and its human-readable unit. */
  unit: string;
  unitDisplay: string;
  low: number;
  high: number;
  /** Normal range (labs get a referenceRange and an interpretation). */
  normal?: [number, number];
  decimals: number;
  weight: number;
  /** Blood pressure: a panel with systolic and diastolic components. */
  panel?: boolean;
}

export const OBSERVATION_KINDS: readonly ObservationKind[] = [
  { code: '85354-9', display: 'Blood pressure panel with all children optional', category: 'vital-signs', unit: 'mm[Hg]', unitDisplay: 'mmHg', low: 0, high: 0, decimals: 0, weight: 10, panel: true },
  { code: '8867-4', display: 'Heart rate', category: 'vital-signs', unit: '/min', unitDisplay: 'beats/minute', low: 48, high: 125, decimals: 0, weight: 10 },
  { code: '8310-5', display: 'Body temperature', category: 'vital-signs', unit: 'Cel', unitDisplay: 'C', low: 35.8, high: 39.2, decimals: 1, weight: 8 },
  { code: '9279-1', display: 'Respiratory rate', category: 'vital-signs', unit: '/min', unitDisplay: 'breaths/minute', low: 11, high: 28, decimals: 0, weight: 7 },
  { code: '59408-5', display: 'Oxygen saturation in Arterial blood by Pulse oximetry', category: 'vital-signs', unit: '%', unitDisplay: '%', low: 88, high: 100, decimals: 0, weight: 7 },
  { code: '29463-7', display: 'Body weight', category: 'vital-signs', unit: 'kg', unitDisplay: 'kg', low: 38, high: 115, decimals: 1, weight: 6 },
  { code: '8302-2', display: 'Body height', category: 'vital-signs', unit: 'cm', unitDisplay: 'cm', low: 142, high: 192, decimals: 0, weight: 3 },
  { code: '39156-5', display: 'Body mass index (BMI) [Ratio]', category: 'vital-signs', unit: 'kg/m2', unitDisplay: 'kg/m2', low: 16.5, high: 38, decimals: 1, weight: 4 },
  { code: '2339-0', display: 'Glucose [Mass/volume] in Blood', category: 'laboratory', unit: 'mg/dL', unitDisplay: 'mg/dL', low: 62, high: 260, normal: [70, 140], decimals: 0, weight: 5 },
  { code: '4548-4', display: 'Hemoglobin A1c/Hemoglobin.total in Blood', category: 'laboratory', unit: '%', unitDisplay: '%', low: 4.6, high: 11.5, normal: [4, 5.6], decimals: 1, weight: 3 },
  { code: '2160-0', display: 'Creatinine [Mass/volume] in Serum or Plasma', category: 'laboratory', unit: 'mg/dL', unitDisplay: 'mg/dL', low: 0.45, high: 2.6, normal: [0.6, 1.3], decimals: 2, weight: 4 },
  { code: '33914-3', display: 'Glomerular filtration rate/1.73 sq M.predicted [Volume Rate/Area] in Serum or Plasma by Creatinine-based formula (MDRD)', category: 'laboratory', unit: 'mL/min/{1.73_m2}', unitDisplay: 'mL/min/1.73m2', low: 18, high: 125, normal: [60, 200], decimals: 0, weight: 3 },
  { code: '2951-2', display: 'Sodium [Moles/volume] in Serum or Plasma', category: 'laboratory', unit: 'mmol/L', unitDisplay: 'mmol/L', low: 128, high: 150, normal: [135, 145], decimals: 0, weight: 4 },
  { code: '2823-3', display: 'Potassium [Moles/volume] in Serum or Plasma', category: 'laboratory', unit: 'mmol/L', unitDisplay: 'mmol/L', low: 3.0, high: 5.8, normal: [3.5, 5.1], decimals: 1, weight: 4 },
  { code: '718-7', display: 'Hemoglobin [Mass/volume] in Blood', category: 'laboratory', unit: 'g/dL', unitDisplay: 'g/dL', low: 8.5, high: 17.5, normal: [12, 17.5], decimals: 1, weight: 4 },
  { code: '6690-2', display: 'Leukocytes [#/volume] in Blood by Automated count', category: 'laboratory', unit: '10*3/uL', unitDisplay: '10^3/uL', low: 3.1, high: 16, normal: [4, 11], decimals: 1, weight: 4 },
  { code: '777-3', display: 'Platelets [#/volume] in Blood by Automated count', category: 'laboratory', unit: '10*3/uL', unitDisplay: '10^3/uL', low: 110, high: 430, normal: [150, 400], decimals: 0, weight: 3 },
  { code: '2093-3', display: 'Cholesterol [Mass/volume] in Serum or Plasma', category: 'laboratory', unit: 'mg/dL', unitDisplay: 'mg/dL', low: 125, high: 290, normal: [0, 200], decimals: 0, weight: 2 },
  { code: '13457-7', display: 'Cholesterol in LDL [Mass/volume] in Serum or Plasma by calculation', category: 'laboratory', unit: 'mg/dL', unitDisplay: 'mg/dL', low: 55, high: 195, normal: [0, 130], decimals: 0, weight: 2 },
  { code: '2085-9', display: 'Cholesterol in HDL [Mass/volume] in Serum or Plasma', category: 'laboratory', unit: 'mg/dL', unitDisplay: 'mg/dL', low: 28, high: 92, normal: [40, 200], decimals: 0, weight: 2 },
  { code: '1742-6', display: 'Alanine aminotransferase [Enzymatic activity/volume] in Serum or Plasma', category: 'laboratory', unit: 'U/L', unitDisplay: 'U/L', low: 6, high: 95, normal: [7, 56], decimals: 0, weight: 2 },
];

const BP_COMPONENTS = [
  { code: '8480-6', display: 'Systolic blood pressure', low: 92, high: 178 },
  { code: '8462-4', display: 'Diastolic blood pressure', low: 52, high: 104 },
] as const;

interface Concept {
  code: string;
  display: string;
  weight: number;
}

/** SNOMED CT conditions; chronic ones start before the encounter and stay active. */
const CONDITIONS: readonly (Concept & { chronic: boolean })[] = [
  { code: '38341003', display: 'Hypertensive disorder, systemic arterial (disorder)', weight: 10, chronic: true },
  { code: '44054006', display: 'Diabetes mellitus type 2 (disorder)', weight: 7, chronic: true },
  { code: '55822004', display: 'Hyperlipidemia (disorder)', weight: 7, chronic: true },
  { code: '709044004', display: 'Chronic kidney disease (disorder)', weight: 3, chronic: true },
  { code: '13645005', display: 'Chronic obstructive lung disease (disorder)', weight: 2, chronic: true },
  { code: '195967001', display: 'Asthma (disorder)', weight: 3, chronic: true },
  { code: '49436004', display: 'Atrial fibrillation (disorder)', weight: 2, chronic: true },
  { code: '35489007', display: 'Depressive disorder (disorder)', weight: 2, chronic: true },
  { code: '396275006', display: 'Osteoarthritis (disorder)', weight: 3, chronic: true },
  { code: '66071002', display: 'Viral hepatitis type B (disorder)', weight: 2, chronic: true },
  { code: '444814009', display: 'Viral sinusitis (disorder)', weight: 6, chronic: false },
  { code: '233604007', display: 'Pneumonia (disorder)', weight: 3, chronic: false },
  { code: '68566005', display: 'Urinary tract infectious disease (disorder)', weight: 3, chronic: false },
  { code: '10509002', display: 'Acute bronchitis (disorder)', weight: 4, chronic: false },
  { code: '22298006', display: 'Myocardial infarction (disorder)', weight: 1, chronic: false },
  { code: '230690007', display: 'Cerebrovascular accident (disorder)', weight: 1, chronic: false },
];

const MEDICATIONS: readonly (Concept & { dose: string; timing: [number, 'd'] })[] = [
  { code: '197361', display: 'amlodipine 5 MG Oral Tablet', weight: 8, dose: 'Take one tablet by mouth once daily', timing: [1, 'd'] },
  { code: '860975', display: '24 HR metformin hydrochloride 500 MG Extended Release Oral Tablet', weight: 7, dose: 'Take one tablet by mouth with the evening meal', timing: [1, 'd'] },
  { code: '314076', display: 'lisinopril 10 MG Oral Tablet', weight: 5, dose: 'Take one tablet by mouth once daily', timing: [1, 'd'] },
  { code: '259255', display: 'atorvastatin 80 MG Oral Tablet', weight: 5, dose: 'Take one tablet by mouth at night', timing: [1, 'd'] },
  { code: '313782', display: 'acetaminophen 325 MG Oral Tablet', weight: 6, dose: 'Take two tablets by mouth every six hours as needed for pain', timing: [4, 'd'] },
  { code: '308182', display: 'amoxicillin 250 MG Oral Capsule', weight: 4, dose: 'Take one capsule by mouth three times daily for seven days', timing: [3, 'd'] },
  { code: '745679', display: '200 ACTUAT albuterol 0.09 MG/ACTUAT Metered Dose Inhaler', weight: 3, dose: 'Inhale two puffs every four to six hours as needed', timing: [4, 'd'] },
  { code: '310798', display: 'hydrochlorothiazide 25 MG Oral Tablet', weight: 3, dose: 'Take one tablet by mouth every morning', timing: [1, 'd'] },
  { code: '855332', display: 'warfarin sodium 5 MG Oral Tablet', weight: 1, dose: 'Take as directed by the anticoagulation clinic', timing: [1, 'd'] },
  { code: '849574', display: 'naproxen sodium 220 MG Oral Tablet', weight: 2, dose: 'Take one tablet by mouth twice daily with food', timing: [2, 'd'] },
];

const PROCEDURES: readonly (Concept & { minutes: number })[] = [
  { code: '399208008', display: 'Plain X-ray of chest (procedure)', weight: 8, minutes: 15 },
  { code: '29303009', display: 'Electrocardiographic procedure (procedure)', weight: 7, minutes: 15 },
  { code: '430193006', display: 'Medication reconciliation (procedure)', weight: 6, minutes: 20 },
  { code: '73761001', display: 'Colonoscopy (procedure)', weight: 2, minutes: 45 },
  { code: '117015009', display: 'Throat culture (procedure)', weight: 3, minutes: 10 },
  { code: '80146002', display: 'Appendectomy (procedure)', weight: 1, minutes: 90 },
  { code: '232717009', display: 'Coronary artery bypass grafting (procedure)', weight: 1, minutes: 300 },
  { code: '274474001', display: 'Bone immobilization (procedure)', weight: 1, minutes: 40 },
];

const VACCINES: readonly Concept[] = [
  { code: '140', display: 'Influenza, seasonal, injectable, preservative free', weight: 10 },
  { code: '208', display: 'SARS-COV-2 (COVID-19) vaccine, mRNA, spike protein, LNP, preservative free, 30 mcg/0.3mL dose', weight: 6 },
  { code: '133', display: 'Pneumococcal conjugate PCV 13', weight: 2 },
  { code: '33', display: 'pneumococcal polysaccharide vaccine, 23 valent', weight: 2 },
  { code: '115', display: 'Tdap', weight: 2 },
  { code: '43', display: 'Hep B, adult', weight: 2 },
  { code: '62', display: 'HPV, quadrivalent', weight: 1 },
  { code: '03', display: 'measles, mumps and rubella virus vaccine', weight: 1 },
];

const ALLERGIES: readonly (Concept & { category: 'food' | 'medication' | 'environment' })[] = [
  { code: '91936005', display: 'Allergy to penicillin (finding)', weight: 6, category: 'medication' },
  { code: '294505008', display: 'Allergy to sulfonamide (finding)', weight: 2, category: 'medication' },
  { code: '91935009', display: 'Allergy to peanuts (finding)', weight: 3, category: 'food' },
  { code: '300913006', display: 'Shellfish allergy (finding)', weight: 4, category: 'food' },
  { code: '417532002', display: 'Allergy to fish (finding)', weight: 1, category: 'food' },
  { code: '418689008', display: 'Allergy to grass pollen (finding)', weight: 3, category: 'environment' },
  { code: '232347008', display: 'Dander (animal) allergy (finding)', weight: 2, category: 'environment' },
  { code: '419474003', display: 'Allergy to mould (finding)', weight: 2, category: 'environment' },
];

const REACTIONS: readonly Concept[] = [
  { code: '271807003', display: 'Eruption of skin (disorder)', weight: 5 },
  { code: '247472004', display: 'Wheal (finding)', weight: 3 },
  { code: '49727002', display: 'Cough (finding)', weight: 2 },
  { code: '39579001', display: 'Anaphylaxis (disorder)', weight: 1 },
];

/** Encounter classes (v3 ActCode) with their typical types and lengths. */
const ENCOUNTER_CLASSES = [
  { code: 'AMB', display: 'ambulatory', weight: 75, obsWeight: 1, type: ['185349003', 'Encounter for check up (procedure)'], minutes: [10, 50] },
  { code: 'EMER', display: 'emergency', weight: 10, obsWeight: 2, type: ['50849002', 'Emergency room admission (procedure)'], minutes: [90, 480] },
  { code: 'IMP', display: 'inpatient encounter', weight: 15, obsWeight: 4, type: ['183452005', 'Emergency hospital admission (procedure)'], minutes: [1440, 14400] },
] as const;

const HOSPITALS = [
  'Queen Mary Hospital', 'Prince of Wales Hospital', 'Queen Elizabeth Hospital', 'Tuen Mun Hospital',
  'Pamela Youde Nethersole Eastern Hospital', 'Princess Margaret Hospital', 'Kwong Wah Hospital', 'United Christian Hospital',
  'Caritas Medical Centre', 'Tseung Kwan O Hospital', 'North District Hospital', 'Yan Chai Hospital',
  'Alice Ho Miu Ling Nethersole Hospital', 'Ruttonjee Hospital', 'Pok Oi Hospital', 'Sai Ying Pun Jockey Club General Out-patient Clinic',
  'Shek Wu Hui Jockey Club General Out-patient Clinic', 'Lek Yuen General Out-patient Clinic', 'Kowloon Bay Health Centre', 'Wan Chai Polyclinic',
];
const SPECIALTIES = [
  ['419772000', 'Family practice'], ['394802001', 'General medicine'], ['394579002', 'Cardiology'], ['394583002', 'Endocrinology'],
  ['394609007', 'General surgery'], ['394537008', 'Pediatric specialty'], ['394807007', 'Infectious diseases'], ['418112009', 'Pulmonary medicine'],
] as const;

// ---------------------------------------------------------------------------------------------
// Planning.

/** Picks indexes with given weights in O(log n). */
class WeightedPicker {
  private readonly cumulative: number[] = [];
  private readonly sum: number;
  constructor(weights: readonly number[]) {
    let s = 0;
    for (const w of weights) this.cumulative.push((s += Math.max(0, w)));
    this.sum = s;
    if (!(s > 0)) throw new Error('WeightedPicker needs a positive weight');
  }
  pick(rng: Rng): number {
    const x = rng.float() * this.sum;
    let lo = 0;
    let hi = this.cumulative.length - 1;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (this.cumulative[mid]! > x) hi = mid;
      else lo = mid + 1;
    }
    return lo;
  }
}

function weights(items: readonly { weight: number }[]): WeightedPicker {
  return new WeightedPicker(items.map((i) => i.weight));
}

function minuteOf(ms: number): number {
  return Math.floor(ms / MINUTE) * MINUTE;
}

/** A time uniformly between `from` and `to`. */
function between(rng: Rng, from: number, to: number): number {
  return minuteOf(from + rng.float() * Math.max(0, to - from));
}

export function generatePopulation(total: number, seed = 20240601): Population {
  const counts = plannedCounts(total);
  const rng = new Rng(mix(seed, 0x5ea2c4));

  const practitioners = Array.from({ length: counts.Practitioner }, (_, i) => i % counts.Organization);
  const byOrganization = Array.from({ length: counts.Organization }, (_, o) => practitioners.flatMap((org, i) => (org === o ? [i] : [])));

  // Patients; how much care each needs is skewed: a few chronic patients have long records.
  const patients: PatientFact[] = [];
  const careWeights: number[] = [];
  for (let i = 0; i < counts.Patient; i++) {
    const organization = rng.int(0, counts.Organization - 1);
    const staff = byOrganization[organization]!;
    const birth = Date.parse(generatePatient(i, { seed }).birthDate!);
    patients.push({ organization, practitioner: staff.length ? rng.pick(staff) : rng.int(0, counts.Practitioner - 1), birth });
    careWeights.push(0.2 - Math.log(1 - rng.float()));
  }
  const carePicker = new WeightedPicker(careWeights);
  const uniformPatient = () => rng.int(0, counts.Patient - 1);
  const firstDay = (p: number) => Math.max(SPAN_START, patients[p]!.birth + DAY);

  const clinical: Record<ClinicalType, ClinicalFact[]> = {
    Encounter: [], Observation: [], Condition: [], MedicationRequest: [], Procedure: [], Immunization: [], AllergyIntolerance: [],
  };

  const classPicker = weights(ENCOUNTER_CLASSES);
  for (let index = 0; index < counts.Encounter; index++) {
    const patient = carePicker.pick(rng);
    const klass = classPicker.pick(rng);
    const cls = ENCOUNTER_CLASSES[klass]!;
    const day = Math.floor(between(rng, firstDay(patient), SPAN_END - DAY) / DAY) * DAY;
    // Clinic visits in office hours (HK time), the others any time of day.
    const start = cls.code === 'AMB' ? day - HK_OFFSET + 9 * 3_600_000 + rng.int(0, 17) * 30 * MINUTE : minuteOf(day + rng.float() * DAY);
    const end = start + rng.int(cls.minutes[0], cls.minutes[1]) * MINUTE;
    const organization = rng.chance(0.7) ? patients[patient]!.organization : rng.int(0, counts.Organization - 1);
    const staff = byOrganization[organization]!;
    const practitioner = staff.length ? rng.pick(staff) : rng.int(0, counts.Practitioner - 1);
    clinical.Encounter.push({ type: 'Encounter', index, patient, encounter: -1, practitioner, organization, item: klass, at: start, end });
  }
  const encounters = clinical.Encounter;
  const noEncounters = encounters.length === 0;
  const byObsWeight = noEncounters ? undefined : new WeightedPicker(encounters.map((e) => ENCOUNTER_CLASSES[e.item]!.obsWeight));
  const byProcedureWeight = noEncounters ? undefined : new WeightedPicker(encounters.map((e) => (e.item === 2 ? 3 : 1)));
  const anyEncounter = () => rng.int(0, encounters.length - 1);

  /** A fact recorded during an encounter, at a time within it. */
  function inEncounter(type: ClinicalType, index: number, e: number, item: number, after = 0): ClinicalFact {
    const enc = encounters[e]!;
    const at = minuteOf(Math.min(enc.end!, enc.at + after + rng.float() * (enc.end! - enc.at)));
    return { type, index, patient: enc.patient, encounter: e, practitioner: enc.practitioner, organization: enc.organization, item, at };
  }
  function withoutEncounter(type: ClinicalType, index: number, item: number): ClinicalFact {
    const patient = type === 'AllergyIntolerance' ? uniformPatient() : carePicker.pick(rng);
    const organization = patients[patient]!.organization;
    const practitioner = patients[patient]!.practitioner;
    return { type, index, patient, encounter: -1, practitioner, organization, item, at: between(rng, firstDay(patient), SPAN_END) };
  }

  const observationKinds = weights(OBSERVATION_KINDS);
  for (let index = 0; index < counts.Observation; index++) {
    const item = observationKinds.pick(rng);
    clinical.Observation.push(noEncounters ? withoutEncounter('Observation', index, item) : inEncounter('Observation', index, byObsWeight!.pick(rng), item));
  }
  const conditionCodes = weights(CONDITIONS);
  for (let index = 0; index < counts.Condition; index++) {
    const item = conditionCodes.pick(rng);
    const fact = noEncounters ? withoutEncounter('Condition', index, item) : inEncounter('Condition', index, anyEncounter(), item);
    // A chronic condition began before the visit that recorded it (onset), not before birth.
    if (CONDITIONS[item]!.chronic) fact.at = minuteOf(Math.max(patients[fact.patient]!.birth + 365 * DAY, fact.at - rng.float() * 6 * 365 * DAY));
    clinical.Condition.push(fact);
  }
  const medications = weights(MEDICATIONS);
  for (let index = 0; index < counts.MedicationRequest; index++) {
    const item = medications.pick(rng);
    clinical.MedicationRequest.push(noEncounters ? withoutEncounter('MedicationRequest', index, item) : inEncounter('MedicationRequest', index, anyEncounter(), item));
  }
  const procedures = weights(PROCEDURES);
  for (let index = 0; index < counts.Procedure; index++) {
    const item = procedures.pick(rng);
    clinical.Procedure.push(noEncounters ? withoutEncounter('Procedure', index, item) : inEncounter('Procedure', index, byProcedureWeight!.pick(rng), item));
  }
  const vaccines = weights(VACCINES);
  for (let index = 0; index < counts.Immunization; index++) {
    const item = vaccines.pick(rng);
    clinical.Immunization.push(withoutEncounter('Immunization', index, item));
  }
  const allergies = weights(ALLERGIES);
  for (let index = 0; index < counts.AllergyIntolerance; index++) {
    const item = allergies.pick(rng);
    clinical.AllergyIntolerance.push(withoutEncounter('AllergyIntolerance', index, item));
  }

  const range = (type: PopulationType, n: number) => Array.from({ length: n }, (_, index) => ({ type, index }));
  // The rest of the record arrives as an EHR accumulates it: in time order, types interleaved.
  const rest = (['Observation', 'Condition', 'MedicationRequest', 'Procedure', 'Immunization', 'AllergyIntolerance'] as const)
    .flatMap((type) => clinical[type])
    .sort((a, b) => a.at - b.at || a.type.localeCompare(b.type) || a.index - b.index)
    .map((f) => ({ type: f.type as PopulationType, index: f.index }));
  const phases = [
    { label: 'organizations', items: range('Organization', counts.Organization) },
    { label: 'practitioners', items: range('Practitioner', counts.Practitioner) },
    { label: 'patients', items: range('Patient', counts.Patient) },
    { label: 'encounters', items: range('Encounter', counts.Encounter) },
    { label: 'observations, conditions, medications, procedures, immunizations, allergies', items: rest },
  ];
  return { seed, counts, patients, practitioners, clinical, phases };
}

// ---------------------------------------------------------------------------------------------
// Building resources.

/** A resource refers to one that was not created (its create failed): it cannot be built. */
export class MissingReferenceError extends Error {}

function coding(system: string, code: string, display?: string): Coding {
  return display === undefined ? { system, code } : { system, code, display };
}

function concept(system: string, code: string, display: string, text = display): CodeableConcept {
  return { coding: [coding(system, code, display)], text };
}

function quantity(value: number, unit: string, unitDisplay: string): Quantity {
  return { value, unit: unitDisplay, system: UCUM, code: unit };
}

function round(value: number, decimals: number): number {
  const f = 10 ** decimals;
  return Math.round(value * f) / f;
}

function measure(rng: Rng, low: number, high: number, decimals: number): number {
  // Most values near the middle of the range, a few at its ends.
  const u = (rng.float() + rng.float() + rng.float()) / 3;
  return round(low + u * (high - low), decimals);
}

export function buildResource(population: Population, type: PopulationType, index: number, ids: IdTable): FhirResource {
  const rng = new Rng(mix(population.seed ^ fnv1a(type), index));
  const ref = (target: PopulationType, i: number, display?: string): Reference => {
    const id = ids[target][i];
    if (id === undefined) throw new MissingReferenceError(`${type} #${index} refers to ${target} #${i}, which was not created`);
    return display === undefined ? { reference: `${target}/${id}` } : { reference: `${target}/${id}`, display };
  };
  switch (type) {
    case 'Organization':
      return organization(rng, index);
    case 'Practitioner':
      return practitioner(rng, index, population, ref);
    case 'Patient': {
      const fact = population.patients[index]!;
      return {
        ...generatePatient(index, { seed: population.seed }),
        generalPractitioner: [ref('Practitioner', fact.practitioner)],
        managingOrganization: ref('Organization', fact.organization),
      } satisfies Patient;
    }
    default: {
      const fact = population.clinical[type][index]!;
      return clinicalResource(rng, fact, population, ref);
    }
  }
}

type RefFn = (target: PopulationType, i: number, display?: string) => Reference;

function organization(rng: Rng, index: number): Organization {
  const base = HOSPITALS[index % HOSPITALS.length]!;
  const name = index < HOSPITALS.length ? base : `${base} (Annex ${Math.floor(index / HOSPITALS.length)})`;
  const [district, region] = rng.pick(DISTRICTS);
  return {
    resourceType: 'Organization',
    identifier: [{ system: 'http://ehealth.example.org/fhir/sid/hcp', value: `HCP${String(index + 1).padStart(5, '0')}` }],
    active: true,
    type: [concept('http://terminology.hl7.org/CodeSystem/organization-type', 'prov', 'Healthcare Provider')],
    name,
    telecom: [{ system: 'phone', value: `+852 ${rng.int(2, 3)}${rng.digits(3)} ${rng.digits(4)}`, use: 'work' }],
    address: [{ use: 'work', line: [`${rng.int(1, 300)} ${rng.pick(STREETS)}`], city: district, district, state: region, country: 'HK' }],
  };
}

function practitioner(rng: Rng, index: number, population: Population, ref: RefFn): Practitioner {
  const female = rng.chance(0.5);
  const chinese = rng.chance(0.75);
  const family = chinese ? rng.pick(CHINESE_FAMILIES)[0] : rng.pick(OTHER_FAMILIES);
  const given = chinese ? rng.pick(CHINESE_GIVEN)[0].split(' ') : [rng.pick(female ? OTHER_GIVEN_FEMALE : OTHER_GIVEN_MALE)];
  const english = chinese && rng.chance(0.6) ? rng.pick(female ? ENGLISH_GIVEN_FEMALE : ENGLISH_GIVEN_MALE) : undefined;
  const [specialtyCode, specialty] = rng.pick(SPECIALTIES);
  return {
    resourceType: 'Practitioner',
    identifier: [{ system: 'http://ehealth.example.org/fhir/sid/mchk', value: `M${String(10000 + index).padStart(5, '0')}` }],
    active: true,
    name: [{ use: 'official', family, given: english ? [english, ...given] : given, prefix: ['Dr'] }],
    telecom: [{ system: 'phone', value: `+852 ${rng.int(2, 3)}${rng.digits(3)} ${rng.digits(4)}`, use: 'work' }],
    gender: female ? 'female' : 'male',
    qualification: [
      { code: { text: 'MBBS' }, issuer: ref('Organization', population.practitioners[index]!) },
      { code: concept(SNOMED, specialtyCode, specialty) },
    ],
  };
}

function clinicalResource(rng: Rng, f: ClinicalFact, population: Population, ref: RefFn): FhirResource {
  const subject = ref('Patient', f.patient);
  const encounter = f.encounter >= 0 ? { encounter: ref('Encounter', f.encounter) } : {};
  const who = ref('Practitioner', f.practitioner);
  switch (f.type) {
    case 'Encounter': {
      const cls = ENCOUNTER_CLASSES[f.item]!;
      const resource: Encounter = {
        resourceType: 'Encounter',
        identifier: [{ system: 'http://ehealth.example.org/fhir/sid/episode', value: `EP${population.seed % 1000}-${String(f.index).padStart(8, '0')}` }],
        status: 'finished',
        class: coding('http://terminology.hl7.org/CodeSystem/v3-ActCode', cls.code, cls.display),
        type: [concept(SNOMED, cls.type[0], cls.type[1])],
        subject,
        participant: [
          {
            type: [concept('http://terminology.hl7.org/CodeSystem/v3-ParticipationType', 'PPRF', 'primary performer')],
            individual: who,
            period: { start: hkDateTime(f.at), end: hkDateTime(f.end!) },
          },
        ],
        period: { start: hkDateTime(f.at), end: hkDateTime(f.end!) },
        serviceProvider: ref('Organization', f.organization),
      };
      if (cls.code === 'IMP') {
        resource.hospitalization = { dischargeDisposition: concept('http://terminology.hl7.org/CodeSystem/discharge-disposition', 'home', 'Home') };
      }
      return resource;
    }
    case 'Observation': {
      const kind = OBSERVATION_KINDS[f.item]!;
      const resource: Observation = {
        resourceType: 'Observation',
        status: 'final',
        category: [{ coding: [coding(OBSERVATION_CATEGORY, kind.category, kind.category === 'vital-signs' ? 'Vital Signs' : 'Laboratory')] }],
        code: concept(LOINC, kind.code, kind.display),
        subject,
        ...encounter,
        effectiveDateTime: hkDateTime(f.at),
        issued: hkDateTime(f.at + (kind.category === 'laboratory' ? rng.int(30, 240) : 1) * MINUTE),
        performer: [who],
      };
      if (kind.panel) {
        resource.component = BP_COMPONENTS.map((c) => ({
          code: concept(LOINC, c.code, c.display),
          valueQuantity: quantity(measure(rng, c.low, c.high, 0), 'mm[Hg]', 'mmHg'),
        }));
      } else {
        const value = measure(rng, kind.low, kind.high, kind.decimals);
        resource.valueQuantity = quantity(value, kind.unit, kind.unitDisplay);
        if (kind.normal) {
          const [low, high] = kind.normal;
          const flag = value < low ? ['L', 'Low'] : value > high ? ['H', 'High'] : ['N', 'Normal'];
          resource.interpretation = [concept(INTERPRETATION, flag[0]!, flag[1]!)];
          resource.referenceRange = [{ low: quantity(low, kind.unit, kind.unitDisplay), high: quantity(high, kind.unit, kind.unitDisplay) }];
        }
      }
      return resource;
    }
    case 'Condition': {
      const c = CONDITIONS[f.item]!;
      const resolved = !c.chronic && rng.chance(0.8);
      const resource: Condition = {
        resourceType: 'Condition',
        clinicalStatus: concept('http://terminology.hl7.org/CodeSystem/condition-clinical', resolved ? 'resolved' : 'active', resolved ? 'Resolved' : 'Active'),
        verificationStatus: concept('http://terminology.hl7.org/CodeSystem/condition-ver-status', 'confirmed', 'Confirmed'),
        category: [
          c.chronic
            ? concept('http://terminology.hl7.org/CodeSystem/condition-category', 'problem-list-item', 'Problem List Item')
            : concept('http://terminology.hl7.org/CodeSystem/condition-category', 'encounter-diagnosis', 'Encounter Diagnosis'),
        ],
        code: concept(SNOMED, c.code, c.display),
        subject,
        ...encounter,
        onsetDateTime: hkDateTime(f.at),
        recorder: who,
      };
      if (resolved) resource.abatementDateTime = hkDateTime(f.at + rng.int(5, 40) * DAY);
      const recorded = f.encounter >= 0 ? population.clinical.Encounter[f.encounter]!.at : f.at;
      resource.recordedDate = hkDateTime(Math.max(recorded, f.at));
      return resource;
    }
    case 'MedicationRequest': {
      const m = MEDICATIONS[f.item]!;
      const days = rng.pick([7, 14, 30, 90]);
      const past = f.at + days * DAY < SPAN_END;
      const resource: MedicationRequest = {
        resourceType: 'MedicationRequest',
        status: past ? (rng.chance(0.9) ? 'completed' : 'stopped') : 'active',
        intent: 'order',
        medicationCodeableConcept: concept(RXNORM, m.code, m.display),
        subject,
        ...encounter,
        authoredOn: hkDateTime(f.at),
        requester: who,
        dosageInstruction: [
          {
            sequence: 1,
            text: m.dose,
            timing: { repeat: { frequency: m.timing[0], period: 1, periodUnit: m.timing[1] } },
            route: concept(SNOMED, '26643006', 'Oral route'),
            doseAndRate: [{ doseQuantity: { value: 1, unit: 'tablet', system: 'http://terminology.hl7.org/CodeSystem/v3-orderableDrugForm', code: 'TAB' } }],
          },
        ],
        dispenseRequest: { expectedSupplyDuration: { value: days, unit: 'days', system: UCUM, code: 'd' }, numberOfRepeatsAllowed: rng.int(0, 3) },
      };
      return resource;
    }
    case 'Procedure': {
      const p = PROCEDURES[f.item]!;
      const resource: Procedure = {
        resourceType: 'Procedure',
        status: 'completed',
        code: concept(SNOMED, p.code, p.display),
        subject,
        ...encounter,
        performer: [{ actor: who }],
      };
      if (p.minutes >= 60) resource.performedPeriod = { start: hkDateTime(f.at), end: hkDateTime(f.at + p.minutes * MINUTE) };
      else resource.performedDateTime = hkDateTime(f.at);
      return resource;
    }
    case 'Immunization': {
      const v = VACCINES[f.item]!;
      const [site, siteDisplay] = rng.pick([['LA', 'left arm'], ['RA', 'right arm']] as const);
      return {
        resourceType: 'Immunization',
        status: 'completed',
        vaccineCode: concept(CVX, v.code, v.display),
        patient: subject,
        occurrenceDateTime: hkDateTime(f.at),
        recorded: hkDateTime(f.at),
        primarySource: true,
        lotNumber: `${String.fromCharCode(65 + rng.int(0, 25))}${rng.digits(5)}`,
        site: concept('http://terminology.hl7.org/CodeSystem/v3-ActSite', site, siteDisplay),
        route: concept('http://terminology.hl7.org/CodeSystem/v3-RouteOfAdministration', 'IM', 'Injection, intramuscular'),
        performer: [{ actor: who }],
      } satisfies Immunization;
    }
    case 'AllergyIntolerance': {
      const a = ALLERGIES[f.item]!;
      const reaction = REACTIONS[rng.int(0, REACTIONS.length - 1)]!;
      return {
        resourceType: 'AllergyIntolerance',
        clinicalStatus: concept('http://terminology.hl7.org/CodeSystem/allergyintolerance-clinical', 'active', 'Active'),
        verificationStatus: concept('http://terminology.hl7.org/CodeSystem/allergyintolerance-verification', 'confirmed', 'Confirmed'),
        type: 'allergy',
        category: [a.category],
        criticality: reaction.code === '39579001' ? 'high' : 'low',
        code: concept(SNOMED, a.code, a.display),
        patient: subject,
        recordedDate: hkDateTime(f.at),
        recorder: who,
        reaction: [{ manifestation: [concept(SNOMED, reaction.code, reaction.display)], severity: reaction.code === '39579001' ? 'severe' : 'mild' }],
      } satisfies AllergyIntolerance;
    }
  }
}
