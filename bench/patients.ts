import type { Patient } from 'fhir/r4.js';

/**
 * A deterministic generator of realistic Patients for benchmarks: patient `i` of seed `s` is
 * always the same resource, whatever order patients are generated in, so runs are comparable and
 * later scenarios (search, bundles) can rebuild the same data set without storing it.
 */

/** mulberry32: a small, fast, seeded 32-bit PRNG. Returns floats in [0, 1). */
export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Mixes a seed and an index into one well-spread 32-bit seed. */
export function mix(seed: number, index: number): number {
  let h = (seed ^ Math.imul(index + 0x9e3779b9, 0x85ebca6b)) >>> 0;
  h = Math.imul(h ^ (h >>> 16), 0x7feb352d);
  h = Math.imul(h ^ (h >>> 15), 0x846ca68b);
  return (h ^ (h >>> 16)) >>> 0;
}

/** FNV-1a, 32-bit: a string to a seed. */
export function fnv1a(text: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}

export class Rng {
  private readonly next: () => number;
  constructor(seed: number) {
    this.next = mulberry32(seed);
  }
  float(): number {
    return this.next();
  }
  /** An integer in [min, max]. */
  int(min: number, max: number): number {
    return min + Math.floor(this.next() * (max - min + 1));
  }
  pick<T>(items: readonly T[]): T {
    const item = items[Math.floor(this.next() * items.length)];
    if (item === undefined) throw new Error('pick from an empty list');
    return item;
  }
  chance(p: number): boolean {
    return this.next() < p;
  }
  digits(n: number): string {
    let s = '';
    for (let i = 0; i < n; i++) s += String(Math.floor(this.next() * 10));
    return s;
  }
}

// Family names with their Chinese characters where the patient is likely to carry both forms.
export const CHINESE_FAMILIES: ReadonlyArray<readonly [string, string]> = [
  ['Chan', '陳'], ['Wong', '黃'], ['Lee', '李'], ['Cheung', '張'], ['Lau', '劉'], ['Ho', '何'],
  ['Ng', '吳'], ['Leung', '梁'], ['Lam', '林'], ['Tsang', '曾'], ['Yip', '葉'], ['Chow', '周'],
  ['Kwok', '郭'], ['Tang', '鄧'], ['Fung', '馮'], ['Mak', '麥'], ['Tse', '謝'], ['Lo', '羅'],
  ['Yeung', '楊'], ['Choi', '蔡'], ['Law', '羅'], ['Siu', '蕭'], ['Kwan', '關'], ['Poon', '潘'],
];
export const CHINESE_GIVEN: ReadonlyArray<readonly [string, string]> = [
  ['Tai Man', '大文'], ['Siu Ming', '小明'], ['Ka Yan', '嘉欣'], ['Wing Sze', '詠詩'], ['Chi Keung', '志強'],
  ['Mei Ling', '美玲'], ['Kin Wai', '健偉'], ['Hoi Yan', '凱欣'], ['Wai Kit', '偉傑'], ['Yuk Lan', '玉蘭'],
  ['Ka Ho', '家豪'], ['Pui Shan', '佩珊'], ['Chun Hei', '俊曦'], ['Man Ki', '敏琪'], ['Hon Ming', '漢明'],
  ['Sze Wan', '詩韻'], ['Kwok Wing', '國榮'], ['Lai Fong', '麗芳'], ['Tsz Long', '梓朗'], ['Hiu Tung', '曉彤'],
];
export const ENGLISH_GIVEN_MALE = ['John', 'Michael', 'David', 'Peter', 'Kenneth', 'Raymond', 'Eric', 'Jason', 'Anthony', 'Samuel', 'Thomas', 'Daniel'];
export const ENGLISH_GIVEN_FEMALE = ['Mary', 'Karen', 'Winnie', 'Grace', 'Jennifer', 'Cindy', 'Joyce', 'Emily', 'Vivian', 'Catherine', 'Sarah', 'Angela'];
export const OTHER_FAMILIES = ['Smith', "O'Brien", 'Patel', 'Santos', 'Nguyen', 'Khan', 'García', 'Müller', 'Reyes', 'Sharma', 'Dela Cruz', 'Johnson'];
export const OTHER_GIVEN_MALE = ['James', 'Rajesh', 'Miguel', 'Ahmed', 'Jonas', 'Arjun', 'José', 'William'];
export const OTHER_GIVEN_FEMALE = ['Maria', 'Priya', 'Fatima', 'Anna', 'Sofia', 'Aisha', 'Elena', 'Charlotte'];

export const DISTRICTS: ReadonlyArray<readonly [string, string]> = [
  ['Central and Western', 'Hong Kong Island'], ['Wan Chai', 'Hong Kong Island'], ['Eastern', 'Hong Kong Island'],
  ['Southern', 'Hong Kong Island'], ['Yau Tsim Mong', 'Kowloon'], ['Sham Shui Po', 'Kowloon'],
  ['Kowloon City', 'Kowloon'], ['Wong Tai Sin', 'Kowloon'], ['Kwun Tong', 'Kowloon'], ['Sha Tin', 'New Territories'],
  ['Tai Po', 'New Territories'], ['Yuen Long', 'New Territories'], ['Tuen Mun', 'New Territories'],
  ['Tsuen Wan', 'New Territories'], ['Kwai Tsing', 'New Territories'], ['Sai Kung', 'New Territories'],
  ['Islands', 'New Territories'], ['North', 'New Territories'],
];
export const STREETS = ['Nathan Road', "Queen's Road Central", 'Hennessy Road', 'King\'s Road', 'Castle Peak Road', 'Tai Po Road',
  'Prince Edward Road West', 'Shau Kei Wan Road', 'Des Voeux Road', 'Tuen Mun Heung Sze Wui Road', 'Sha Tin Centre Street', 'Lung Cheung Road'];
const ESTATES = ['Mei Foo Sun Chuen', 'Taikoo Shing', 'City One Shatin', 'Lok Fu Estate', 'Kingswood Villas', 'Laguna City',
  'Whampoa Garden', 'South Horizons', 'Heng Fa Chuen', 'Amoy Gardens'];
const MARITAL = [
  ['M', 'Married'], ['S', 'Never Married'], ['D', 'Divorced'], ['W', 'Widowed'], ['U', 'unmarried'],
] as const;
const LANGUAGES = [['zh-HK', 'Chinese (Hong Kong)'], ['en', 'English'], ['zh-CN', 'Chinese (China)'], ['tl', 'Tagalog'], ['hi', 'Hindi']] as const;

const MRN_SYSTEM = 'http://ehealth.example.org/fhir/sid/mrn';
const NATIONAL_ID_SYSTEM = 'http://ehealth.example.org/fhir/sid/hkid';

export interface PatientGeneratorOptions {
  seed?: number;
}

function pad(n: number, width: number): string {
  return String(n).padStart(width, '0');
}

/** A HKID-shaped identifier, unique per index (the check digit is not a real one). */
function nationalId(rng: Rng, index: number): string {
  const letter = String.fromCharCode(65 + (index % 26));
  return `${letter}${pad(index % 1_000_000, 6)}(${rng.int(0, 9)})`;
}

/** Patient number `index` of the data set `seed`, without an id (ready for a create). */
export function generatePatient(index: number, options: PatientGeneratorOptions = {}): Patient {
  const seed = options.seed ?? 20240601;
  const rng = new Rng(mix(seed, index));

  const roll = rng.float();
  const gender: Patient['gender'] = roll < 0.485 ? 'male' : roll < 0.97 ? 'female' : roll < 0.985 ? 'other' : 'unknown';
  const feminine = gender === 'female' || (gender !== 'male' && rng.chance(0.5));
  const chinese = rng.chance(0.8);

  const year = rng.int(1930, 2024);
  const birthDate = `${year}-${pad(rng.int(1, 12), 2)}-${pad(rng.int(1, 28), 2)}`;

  const names: NonNullable<Patient['name']> = [];
  let family: string;
  let given: string[];
  if (chinese) {
    const [familyEn, familyZh] = rng.pick(CHINESE_FAMILIES);
    const [givenEn, givenZh] = rng.pick(CHINESE_GIVEN);
    family = familyEn;
    given = givenEn.split(' ');
    const english = rng.chance(0.5) ? rng.pick(feminine ? ENGLISH_GIVEN_FEMALE : ENGLISH_GIVEN_MALE) : undefined;
    names.push({
      use: 'official',
      text: `${family.toUpperCase()}, ${givenEn}`,
      family,
      given,
    });
    if (english) names.push({ use: 'usual', family, given: [english] });
    if (rng.chance(0.7)) names.push({ use: 'official', text: `${familyZh}${givenZh}`, family: familyZh, given: [givenZh] });
  } else {
    family = rng.pick(OTHER_FAMILIES);
    given = [rng.pick(feminine ? OTHER_GIVEN_FEMALE : OTHER_GIVEN_MALE)];
    if (rng.chance(0.4)) given.push(rng.pick(feminine ? OTHER_GIVEN_FEMALE : OTHER_GIVEN_MALE));
    names.push({ use: 'official', family, given, ...(rng.chance(0.3) && { prefix: [feminine ? 'Ms' : 'Mr'] }) });
  }

  const identifier: NonNullable<Patient['identifier']> = [
    {
      use: 'usual',
      type: { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/v2-0203', code: 'MR', display: 'Medical record number' }] },
      system: MRN_SYSTEM,
      value: `MRN${pad(seed % 1000, 3)}${pad(index, 8)}`,
      assigner: { display: 'Hospital Authority' },
    },
  ];
  if (rng.chance(0.9)) {
    identifier.push({
      use: 'official',
      type: { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/v2-0203', code: 'NI', display: 'National unique individual identifier' }] },
      system: NATIONAL_ID_SYSTEM,
      value: nationalId(rng, index),
    });
  }

  const telecom: NonNullable<Patient['telecom']> = [
    { system: 'phone', value: `+852 ${rng.pick(['5', '6', '9'])}${rng.digits(3)} ${rng.digits(4)}`, use: 'mobile', rank: 1 },
  ];
  if (rng.chance(0.4)) telecom.push({ system: 'phone', value: `+852 ${rng.pick(['2', '3'])}${rng.digits(3)} ${rng.digits(4)}`, use: 'home' });
  if (rng.chance(0.6)) {
    const local = `${given.join('').toLowerCase()}.${family.toLowerCase()}`.normalize('NFD').replace(/[^a-z.]/g, '');
    telecom.push({ system: 'email', value: `${local}${rng.int(1, 999)}@${rng.pick(['example.com', 'mail.example.org', 'example.net'])}`, use: 'home' });
  }

  const [district, region] = rng.pick(DISTRICTS);
  const line = [`Flat ${rng.int(1, 40)}${rng.pick(['A', 'B', 'C', 'D', 'E', 'F'])}, ${rng.int(1, 60)}/F`];
  if (rng.chance(0.6)) line.push(`Block ${rng.int(1, 12)}, ${rng.pick(ESTATES)}`);
  line.push(`${rng.int(1, 999)} ${rng.pick(STREETS)}`);
  const address: NonNullable<Patient['address']> = [
    { use: 'home', type: 'physical', line, city: district, district, state: region, country: 'HK', period: { start: `${rng.int(1990, 2023)}-01-01` } },
  ];

  const [maritalCode, maritalDisplay] = rng.pick(MARITAL);
  const [lang, langDisplay] = chinese ? (rng.chance(0.85) ? LANGUAGES[0] : LANGUAGES[1]) : rng.pick(LANGUAGES);

  const patient: Patient = {
    resourceType: 'Patient',
    identifier,
    active: true,
    name: names,
    telecom,
    gender,
    birthDate,
    address,
    maritalStatus: {
      coding: [{ system: 'http://terminology.hl7.org/CodeSystem/v3-MaritalStatus', code: maritalCode, display: maritalDisplay }],
    },
    communication: [{ language: { coding: [{ system: 'urn:ietf:bcp:47', code: lang, display: langDisplay }] }, preferred: true }],
  };
  if (year < 1950 && rng.chance(0.2)) {
    patient.deceasedDateTime = `${rng.int(2015, 2024)}-${pad(rng.int(1, 12), 2)}-${pad(rng.int(1, 28), 2)}T${pad(rng.int(0, 23), 2)}:${pad(rng.int(0, 59), 2)}:00+08:00`;
  } else {
    patient.deceasedBoolean = false;
  }
  if (rng.chance(0.03)) patient.multipleBirthInteger = rng.int(1, 2);
  if (rng.chance(0.5)) {
    const contactFamily = chinese ? rng.pick(CHINESE_FAMILIES)[0] : rng.pick(OTHER_FAMILIES);
    patient.contact = [
      {
        relationship: [{ coding: [{ system: 'http://terminology.hl7.org/CodeSystem/v2-0131', code: 'C', display: 'Emergency Contact' }] }],
        name: { family: contactFamily, given: [chinese ? rng.pick(CHINESE_GIVEN)[0] : rng.pick(OTHER_GIVEN_FEMALE)] },
        telecom: [{ system: 'phone', value: `+852 ${rng.pick(['5', '6', '9'])}${rng.digits(3)} ${rng.digits(4)}`, use: 'mobile' }],
      },
    ];
  }
  return patient;
}

/**
 * The body of an update to an existing patient: the same resource with a changed mobile number,
 * so every update is a real change. `revision` picks the number deterministically.
 */
export function revisedPatient(patient: Patient & { id: string }, revision: number): Patient & { id: string } {
  const rng = new Rng(mix(fnv1a(patient.id), revision));
  const telecom = (patient.telecom ?? []).map((t, i) =>
    i === 0 ? { ...t, value: `+852 ${rng.pick(['5', '6', '9'])}${rng.digits(3)} ${rng.digits(4)}` } : t,
  );
  return { ...patient, telecom };
}
