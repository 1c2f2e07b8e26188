import { readdirSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { classify, createClassifier, SHARABLE_TYPE_CODES, SHARABLE_TYPES, type Classification } from '../../src/access/classification.js';

/**
 * The sharable-type classification (profiles/sharable-types.json) on real data: every official
 * R4 example (npm hl7.fhir.r4.examples@4.0.1, and the entries of its Bundles) and the Synthea
 * sample in ../shared/data/synthea-10-patients. Counts per type are printed and pinned: a change
 * to the table that moves an example from one type to another shows up here for review.
 */

type Resource = Record<string, any>;

const examplesDir = dirname(createRequire(import.meta.url).resolve('hl7.fhir.r4.examples/package.json'));
const exampleFiles = readdirSync(examplesDir).filter((f) => f.endsWith('.json') && f !== 'package.json').sort();
const examples = new Map<string, Resource>(exampleFiles.map((file) => [file, JSON.parse(readFileSync(join(examplesDir, file), 'utf8'))]));
/** Resources inside the examples' Bundles, keyed "Bundle file#entry index". */
const bundleEntries = new Map<string, Resource>();
for (const [file, resource] of examples) {
  if (resource.resourceType !== 'Bundle') continue;
  (resource.entry ?? []).forEach((entry: any, index: number) => {
    if (entry?.resource) bundleEntries.set(`${file}#${index}`, entry.resource);
  });
}

const syntheaDir = new URL('../../../shared/data/synthea-10-patients/', import.meta.url);
const synthea: Resource[] = readdirSync(syntheaDir)
  .filter((f) => f.endsWith('.ndjson') && f !== 'log.ndjson')
  .sort()
  .flatMap((file) =>
    readFileSync(new URL(file, syntheaDir), 'utf8')
      .split('\n')
      .filter((line) => line.trim() !== '')
      .map((line) => JSON.parse(line) as Resource),
  );

function countByType(resources: Iterable<Resource>): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const resource of resources) {
    const key = classify(resource).type ?? '(outside the scope)';
    counts[key] = (counts[key] ?? 0) + 1;
  }
  return Object.fromEntries(Object.entries(counts).sort(([a], [b]) => a.localeCompare(b)));
}

const example = (file: string): Resource => {
  const resource = examples.get(file);
  if (!resource) throw new Error(`no example ${file}`);
  return resource;
};
const entryOf = (bundleFile: string, resourceType: string, id?: string): Resource => {
  const found = (example(bundleFile).entry ?? []).map((e: any) => e.resource).find((r: any) => r?.resourceType === resourceType && (id === undefined || r.id === id));
  if (!found) throw new Error(`no ${resourceType} in ${bundleFile}`);
  return found;
};

describe('the sharable-type table', () => {
  it('lists the eleven types, each with a display', () => {
    expect(SHARABLE_TYPES.map((t) => t.code)).toEqual([...SHARABLE_TYPE_CODES]);
    expect(SHARABLE_TYPES.map((t) => t.number)).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11]);
    for (const type of SHARABLE_TYPES) expect(type.display.length).toBeGreaterThan(5);
  });

  const table = () => JSON.parse(readFileSync(new URL('../../profiles/sharable-types.json', import.meta.url), 'utf8'));

  it('refuses a rule naming an unknown sharable type', () => {
    const bad = table();
    bad.rules[0].type = 'genomics';
    expect(() => createClassifier(bad)).toThrow(/rule "observation-birth": unknown sharable type "genomics"/);
  });

  it('refuses a default naming an unknown sharable type, and a missing type', () => {
    const badDefault = table();
    badDefault.defaults.Patient = { type: 'personal' };
    expect(() => createClassifier(badDefault)).toThrow(/default for Patient: unknown sharable type/);
    const missing = table();
    missing.types = missing.types.filter((t: any) => t.code !== 'referrals');
    expect(() => createClassifier(missing)).toThrow(/sharable types missing: referrals/);
  });

  it('refuses a less specific rule placed before a more specific one', () => {
    const bad = table();
    const birth = bad.rules.shift();
    bad.rules.splice(3, 0, birth); // after the Observation category rules
    expect(() => createClassifier(bad)).toThrow(/"observation-birth" is more specific than rule "observation-lifestyle" for Observation/);
  });

  it('refuses a malformed coding and a rule with neither codings nor text', () => {
    const badCoding = table();
    badCoding.rules[0].codings = ['8339-4'];
    expect(() => createClassifier(badCoding)).toThrow(/is not "system\|code"/);
    const neither = table();
    delete neither.rules[0].codings;
    expect(() => createClassifier(neither)).toThrow(/give either "codings" or "text"/);
  });
});

describe('classifying the official R4 examples', () => {
  const cases: [string, Resource, Classification['type']][] = [
    ['Patient/example', example('Patient-example.json'), 'demographics'],
    ['RelatedPerson/peter', example('RelatedPerson-peter.json'), 'demographics'],
    ['AllergyIntolerance/example', example('AllergyIntolerance-example.json'), 'allergies'],
    ['AdverseEvent/example', example('AdverseEvent-example.json'), 'allergies'],
    ['Condition/example', example('Condition-example.json'), 'diagnosis-procedure-medication'],
    ['Procedure/example', example('Procedure-example.json'), 'diagnosis-procedure-medication'],
    ['MedicationRequest/medrx0301', example('MedicationRequest-medrx0301.json'), 'diagnosis-procedure-medication'],
    ['Medication/med0301', example('Medication-med0301.json'), 'diagnosis-procedure-medication'],
    ['Encounter/example', example('Encounter-example.json'), 'encounters'],
    ['Appointment/example', example('Appointment-example.json'), 'encounters'],
    ['EpisodeOfCare/example', example('EpisodeOfCare-example.json'), 'encounters'],
    ['Composition/example (consult note)', example('Composition-example.json'), 'clinical-notes'],
    ['Composition in Bundle/father (discharge summary, LOINC 28655-9)', entryOf('Bundle-father.json', 'Composition'), 'clinical-notes'],
    ['DocumentReference/example (outpatient note)', example('DocumentReference-example.json'), 'clinical-notes'],
    ['ClinicalImpression/example', example('ClinicalImpression-example.json'), 'clinical-notes'],
    ['Immunization/example', example('Immunization-example.json'), 'birth-immunisation'],
    ['ImmunizationRecommendation/example', example('ImmunizationRecommendation-example.json'), 'birth-immunisation'],
    ['Observation/1minute-apgar-score (category survey)', example('Observation-1minute-apgar-score.json'), 'birth-immunisation'],
    ['Observation/5minute-apgar-score', example('Observation-5minute-apgar-score.json'), 'birth-immunisation'],
    ['Observation/20minute-apgar-score (SNOMED only)', example('Observation-20minute-apgar-score.json'), 'birth-immunisation'],
    ['Observation/bloodgroup (laboratory)', example('Observation-bloodgroup.json'), 'lab-radiology'],
    ['DiagnosticReport/f201 (RAD, CT head-neck)', example('DiagnosticReport-f201.json'), 'lab-radiology'],
    ['DiagnosticReport/ultrasound (RAD)', example('DiagnosticReport-ultrasound.json'), 'lab-radiology'],
    ['DiagnosticReport/gingival-mass (PAT)', example('DiagnosticReport-gingival-mass.json'), 'lab-radiology'],
    ['DiagnosticReport in Bundle/101 (HM)', entryOf('Bundle-101.json', 'DiagnosticReport'), 'lab-radiology'],
    ['DiagnosticReport/102 (no category: default)', example('DiagnosticReport-102.json'), 'other-investigations'],
    ['ImagingStudy/example', example('ImagingStudy-example.json'), 'lab-radiology'],
    ['Specimen/101', example('Specimen-101.json'), 'lab-radiology'],
    ['Observation/ekg (category procedure)', example('Observation-ekg.json'), 'other-investigations'],
    ['Observation/f001 (no category: default)', example('Observation-f001.json'), 'other-investigations'],
    ['Observation/blood-pressure (vital-signs)', example('Observation-blood-pressure.json'), 'observations-lifestyle'],
    ['Observation/bmi (vital-signs)', example('Observation-bmi.json'), 'observations-lifestyle'],
    ['Observation/secondsmoke (social-history)', example('Observation-secondsmoke.json'), 'observations-lifestyle'],
    ['Observation/alcohol-type (social-history)', example('Observation-alcohol-type.json'), 'observations-lifestyle'],
    ['Observation/abdo-tender (exam)', example('Observation-abdo-tender.json'), 'observations-lifestyle'],
    ['ServiceRequest/myringotomy (category SNOMED 103696004 referral to specialist)', example('ServiceRequest-myringotomy.json'), 'referrals'],
    ['ServiceRequest/example (a diagnostic order, not a referral)', example('ServiceRequest-example.json'), undefined],
    ['Claim/100150', example('Claim-100150.json'), undefined],
    ['Organization/1', example('Organization-1.json'), undefined],
    ['Practitioner/example', example('Practitioner-example.json'), undefined],
    ['Account/example', example('Account-example.json'), undefined],
    ['CodeSystem/allergy-intolerance-category', example('CodeSystem-allergy-intolerance-category.json'), undefined],
  ];

  it.each(cases)('%s → %s', (_label, resource, expected) => {
    expect(classify(resource).type).toBe(expected);
  });

  it('tells an uploader why a resource is outside the scope', () => {
    expect(classify(example('Claim-100150.json'))).toEqual({ type: undefined, reason: "Claim is outside eHealth's sharable scope (the eleven sharable data types)" });
    expect(classify(example('Organization-1.json'))).toEqual({ type: undefined, reason: "Organization is outside eHealth's sharable scope (the eleven sharable data types)" });
    const order = classify(example('ServiceRequest-example.json'));
    expect(order.type).toBeUndefined();
    expect(order.type === undefined && order.reason).toMatch(/Only referrals are shared/);
    const bundle = classify(example('Bundle-father.json'));
    expect(bundle.type === undefined && bundle.reason).toMatch(/entries are classified one by one/);
  });

  it(`classifies all ${exampleFiles.length} examples and their Bundle entries without throwing, the same way twice`, () => {
    expect(exampleFiles.length).toBe(5306);
    for (const [file, resource] of [...examples, ...bundleEntries]) {
      let first: Classification | undefined;
      expect(() => (first = classify(resource)), file).not.toThrow();
      expect(classify(structuredClone(resource)), file).toEqual(first);
      if (first?.type === undefined) expect(first?.reason, file).toBeTruthy();
    }
  });

  it('counts per sharable type (pinned)', () => {
    const files = countByType(examples.values());
    const entries = countByType(bundleEntries.values());
    console.log('official R4 examples, per sharable type:', files);
    console.log('entries of the official R4 example Bundles, per sharable type:', entries);
    expect(files).toEqual(EXPECTED_EXAMPLE_COUNTS);
    expect(entries).toEqual(EXPECTED_BUNDLE_ENTRY_COUNTS);
  });

  it('puts every example of a resource type named in the domain table into a sharable type', () => {
    const alwaysInScope = new Set(['Patient', 'RelatedPerson', 'AllergyIntolerance', 'AdverseEvent', 'Condition', 'Procedure', 'Medication', 'MedicationRequest', 'MedicationDispense', 'MedicationStatement', 'MedicationAdministration', 'Encounter', 'Appointment', 'EpisodeOfCare', 'Composition', 'DocumentReference', 'ClinicalImpression', 'Immunization', 'ImmunizationRecommendation', 'DiagnosticReport', 'ImagingStudy', 'Specimen', 'Observation']);
    const unclassified = [...examples, ...bundleEntries].filter(([, r]) => alwaysInScope.has(r.resourceType) && classify(r).type === undefined).map(([key]) => key);
    expect(unclassified).toEqual([]);
  });
});

describe('classifying by code, category and text', () => {
  const doc = (type: Resource, resourceType = 'DocumentReference'): Resource => ({ resourceType, status: 'current', type, content: [] });

  it('birth weight is a birth record whatever its category', () => {
    const birthWeight = { resourceType: 'Observation', status: 'final', category: [{ coding: [{ system: 'http://terminology.hl7.org/CodeSystem/observation-category', code: 'vital-signs' }] }], code: { coding: [{ system: 'http://loinc.org', code: '8339-4' }] } };
    expect(classify(birthWeight)).toEqual({ type: 'birth-immunisation', rule: 'observation-birth' });
    // The same code in another system is not the LOINC code.
    expect(classify({ ...birthWeight, code: { coding: [{ system: 'http://example.org', code: '8339-4' }] } }).type).toBe('observations-lifestyle');
  });

  it('activity observations are observation and lifestyle records', () => {
    expect(classify({ resourceType: 'Observation', category: [{ coding: [{ system: 'http://terminology.hl7.org/CodeSystem/observation-category', code: 'activity' }] }] }).type).toBe('observations-lifestyle');
  });

  it('DiagnosticReport: ECG and lung function are other investigations, radiographs radiology', () => {
    const report = (code: string) => ({ resourceType: 'DiagnosticReport', category: [{ coding: [{ system: 'http://terminology.hl7.org/CodeSystem/v2-0074', code }] }] });
    expect(classify(report('EC')).type).toBe('other-investigations');
    expect(classify(report('PF')).type).toBe('other-investigations');
    expect(classify(report('CG')).type).toBe('other-investigations');
    expect(classify(report('RX')).type).toBe('lab-radiology');
    expect(classify(report('LAB')).type).toBe('lab-radiology');
  });

  it('documents: medical certificate by code or by text, notes, referral letters', () => {
    expect(classify(doc({ coding: [{ system: 'https://ehealth.example.hk/fhir/CodeSystem/document-type', code: 'medical-certificate' }] })).type).toBe('medical-certificates');
    expect(classify(doc({ coding: [{ system: 'http://loinc.org', code: '104531-9' }] }, 'Composition')).type).toBe('medical-certificates');
    expect(classify(doc({ coding: [{ system: 'urn:clinic:doc', code: 'MC', display: 'Medical Certificate' }] })).type).toBe('medical-certificates');
    expect(classify(doc({ text: 'Sick leave certificate' }, 'Composition')).type).toBe('medical-certificates');
    expect(classify(doc({ coding: [{ system: 'http://loinc.org', code: '18842-5' }] }, 'Composition')).type).toBe('clinical-notes');
    expect(classify(doc({ coding: [{ system: 'http://loinc.org', code: '11506-3' }] })).type).toBe('clinical-notes');
    // A coded progress note stays a note though its text mentions a certificate.
    expect(classify(doc({ coding: [{ system: 'http://loinc.org', code: '11506-3' }], text: 'Progress note; medical certificate issued' })).type).toBe('clinical-notes');
    expect(classify(doc({ coding: [{ system: 'http://loinc.org', code: '57133-1' }] })).type).toBe('referrals');
    expect(classify(doc({ coding: [{ system: 'http://loinc.org', code: '11502-2' }] })).type).toBe('lab-radiology');
    expect(classify(doc({ text: 'whatever' })).type).toBe('clinical-notes');
  });

  it('ServiceRequest: only referrals are in scope', () => {
    const referral = { resourceType: 'ServiceRequest', status: 'active', intent: 'order', category: [{ coding: [{ system: 'http://snomed.info/sct', code: '3457005', display: 'Patient referral' }] }], code: { text: 'Cardiology' } };
    expect(classify(referral)).toEqual({ type: 'referrals', rule: 'service-request-referral' });
    expect(classify({ ...referral, category: [{ text: 'Referral to physiotherapy' }] }).type).toBe('referrals');
    expect(classify({ ...referral, category: undefined }).type).toBeUndefined();
  });

  it('never throws on odd shapes', () => {
    for (const odd of [null, undefined, 42, 'Observation', [], {}, { resourceType: 7 }, { resourceType: 'Observation', category: 'lab' }, { resourceType: 'Observation', category: [null, { coding: 'x' }, { coding: [null, 3, { system: 1, code: {} }] }] }, { resourceType: 'DocumentReference', type: { text: 42, coding: [{ display: null }] } }]) {
      expect(() => classify(odd)).not.toThrow();
    }
    expect(classify({})).toEqual({ type: undefined, reason: 'Not a FHIR resource: it has no resourceType' });
    expect(classify({ resourceType: 'Observation', category: 'lab' }).type).toBe('other-investigations');
  });
});

describe('classifying the Synthea sample', () => {
  it('gives every clinical resource a sharable type and every directory resource none', () => {
    const clinical: Record<string, Classification['type']> = {
      Patient: 'demographics',
      AllergyIntolerance: 'allergies',
      Condition: 'diagnosis-procedure-medication',
      MedicationRequest: 'diagnosis-procedure-medication',
      Procedure: 'diagnosis-procedure-medication',
      Encounter: 'encounters',
      DocumentReference: 'clinical-notes',
      Immunization: 'birth-immunisation',
    };
    const directory = new Set(['Organization', 'Practitioner', 'PractitionerRole', 'Location', 'Device']);
    const wrong: string[] = [];
    for (const resource of synthea) {
      const got = classify(resource);
      if (resource.resourceType in clinical) {
        if (got.type !== clinical[resource.resourceType]) wrong.push(`${resource.resourceType}/${resource.id}: ${got.type}`);
      } else if (directory.has(resource.resourceType)) {
        if (got.type !== undefined) wrong.push(`${resource.resourceType}/${resource.id}: ${got.type}`);
      } else {
        wrong.push(`${resource.resourceType}/${resource.id}: unexpected resource type`);
      }
    }
    expect(wrong).toEqual([]);
  });

  it('counts per sharable type (pinned)', () => {
    const counts = countByType(synthea);
    console.log('Synthea sample, per sharable type:', counts);
    expect(counts).toEqual(EXPECTED_SYNTHEA_COUNTS);
  });
});

const EXPECTED_EXAMPLE_COUNTS: Record<string, number> = {
  '(outside the scope)': 5025,
  allergies: 7,
  'birth-immunisation': 13,
  'clinical-notes': 4,
  demographics: 27,
  'diagnosis-procedure-medication': 143,
  encounters: 14,
  'lab-radiology': 15,
  'observations-lifestyle': 22,
  'other-investigations': 35,
  referrals: 1,
};
const EXPECTED_BUNDLE_ENTRY_COUNTS: Record<string, number> = {
  '(outside the scope)': 13124,
  allergies: 1,
  'clinical-notes': 2,
  demographics: 30,
  'diagnosis-procedure-medication': 4,
  encounters: 1,
  'lab-radiology': 27,
  'other-investigations': 129,
};
const EXPECTED_SYNTHEA_COUNTS: Record<string, number> = {
  '(outside the scope)': 189,
  allergies: 11,
  'birth-immunisation': 161,
  'clinical-notes': 1215,
  demographics: 13,
  'diagnosis-procedure-medication': 4356,
  encounters: 1215,
};
