import type { SharableTypeCode } from '../../src/access/classification.js';

/** One record of each sharable type (bar demographics, which is the Patient itself) for a patient. */
export function sampleRecords(patientId: string): Record<Exclude<SharableTypeCode, 'demographics'>, Record<string, unknown>> {
  const subject = { reference: `Patient/${patientId}` };
  const observation = (category: string, text: string) => ({
    resourceType: 'Observation',
    status: 'final',
    category: [{ coding: [{ system: 'http://terminology.hl7.org/CodeSystem/observation-category', code: category }] }],
    code: { text },
    subject,
  });
  const document = (system: string, code: string) => ({
    resourceType: 'DocumentReference',
    status: 'current',
    type: { coding: [{ system, code }] },
    subject,
    content: [{ attachment: { contentType: 'text/plain', data: Buffer.from('note').toString('base64') } }],
  });
  return {
    allergies: { resourceType: 'AllergyIntolerance', patient: subject, code: { text: 'Penicillin' } },
    'diagnosis-procedure-medication': { resourceType: 'Condition', subject, code: { text: 'Type 2 diabetes' } },
    encounters: { resourceType: 'Encounter', status: 'finished', class: { system: 'http://terminology.hl7.org/CodeSystem/v3-ActCode', code: 'AMB' }, subject },
    'clinical-notes': document('http://loinc.org', '18842-5'),
    'birth-immunisation': { resourceType: 'Immunization', status: 'completed', vaccineCode: { text: 'Influenza' }, patient: subject, occurrenceDateTime: '2026-10-01' },
    'lab-radiology': observation('laboratory', 'HbA1c'),
    'other-investigations': observation('procedure', 'ECG'),
    referrals: { resourceType: 'ServiceRequest', status: 'active', intent: 'order', category: [{ coding: [{ system: 'http://snomed.info/sct', code: '3457005' }] }], subject },
    'medical-certificates': document('https://ehealth.example.hk/fhir/CodeSystem/document-type', 'medical-certificate'),
    'observations-lifestyle': observation('vital-signs', 'Blood pressure'),
  };
}
