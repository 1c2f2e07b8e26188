import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { SHARABLE_TYPE_CODES } from '../../src/access/classification.js';
import { createRbacMatrix, isEnabled, mayRead, mayUpload, RBAC } from '../../src/access/rbac.js';
import { RULES } from '../../src/participation/rules.js';

/** The role-based access matrix in profiles/rbac-matrix.json: 13 professional groups × 11 sharable types. */

const file = () => JSON.parse(readFileSync(new URL('../../profiles/rbac-matrix.json', import.meta.url), 'utf8'));
const groups = RULES.professionalGroups.map((group) => group.code);

describe('the RBAC matrix file', () => {
  it('covers the 13 professional groups of participation.json × the 11 sharable types, with booleans', () => {
    const raw = file();
    expect(groups).toHaveLength(13);
    expect(Object.keys(raw.groups).sort()).toEqual([...groups].sort());
    for (const group of groups) {
      expect(typeof raw.groups[group].enabled).toBe('boolean');
      expect(Object.keys(raw.groups[group].access).sort()).toEqual([...SHARABLE_TYPE_CODES].sort());
      for (const type of SHARABLE_TYPE_CODES) {
        expect(typeof raw.groups[group].access[type].read).toBe('boolean');
        expect(typeof raw.groups[group].access[type].upload).toBe('boolean');
      }
    }
    expect(raw.$comment).toMatch(/not an official eHealth table/);
  });

  it('has access switched on for eleven groups, not for dental hygienists and chiropractors', () => {
    expect(groups.filter((group) => isEnabled(group))).toHaveLength(11);
    expect(groups.filter((group) => !isEnabled(group)).sort()).toEqual(['chiropractor', 'dental-hygienist']);
  });

  it('refuses a missing group, an unknown group, a missing type, a non-boolean and upload without read', () => {
    const missingGroup = file();
    delete missingGroup.groups.nurse;
    expect(() => createRbacMatrix(missingGroup)).toThrow(/professional group "nurse" is missing/);
    const unknownGroup = file();
    unknownGroup.groups.veterinarian = unknownGroup.groups.nurse;
    expect(() => createRbacMatrix(unknownGroup)).toThrow(/unknown professional groups: veterinarian/);
    const missingType = file();
    delete missingType.groups.pharmacist.access.referrals;
    expect(() => createRbacMatrix(missingType)).toThrow(/"pharmacist": sharable type "referrals" is missing/);
    const unknownType = file();
    unknownType.groups.pharmacist.access.genomics = { read: true, upload: false };
    expect(() => createRbacMatrix(unknownType)).toThrow(/unknown sharable types genomics/);
    const notBoolean = file();
    notBoolean.groups.pharmacist.access.allergies.read = 'yes';
    expect(() => createRbacMatrix(notBoolean)).toThrow(/must be booleans/);
    const enabledNotBoolean = file();
    enabledNotBoolean.groups.pharmacist.enabled = 1;
    expect(() => createRbacMatrix(enabledNotBoolean)).toThrow(/boolean "enabled"/);
    const uploadOnly = file();
    uploadOnly.groups.pharmacist.access.referrals = { read: false, upload: true };
    expect(() => createRbacMatrix(uploadOnly)).toThrow(/upload without read/);
  });
});

describe('mayRead and mayUpload', () => {
  it('doctors read and upload all eleven types', () => {
    for (const type of SHARABLE_TYPE_CODES) {
      expect(mayRead('medical-practitioner', type)).toBe(true);
      expect(mayUpload('medical-practitioner', type)).toBe(true);
    }
  });

  it('a group whose access is not switched on can do nothing, whatever the file grants it', () => {
    for (const group of ['dental-hygienist', 'chiropractor']) {
      expect(RBAC.readableTypes(group)).toEqual([]);
      for (const type of SHARABLE_TYPE_CODES) {
        expect(mayRead(group, type)).toBe(false);
        expect(mayUpload(group, type)).toBe(false);
      }
    }
    // The file does list rights for them (for when they are switched on): enabling is one edit.
    const raw = file();
    expect(raw.groups['dental-hygienist'].access.allergies.read).toBe(true);
    raw.groups['dental-hygienist'].enabled = true;
    expect(createRbacMatrix(raw).mayRead('dental-hygienist', 'allergies')).toBe(true);
  });

  it('an unknown group can do nothing', () => {
    expect(mayRead('veterinarian', 'allergies')).toBe(false);
    expect(mayUpload('veterinarian', 'allergies')).toBe(false);
    expect(isEnabled('veterinarian')).toBe(false);
  });

  it('every enabled group reads demographics; uploads are a subset of reads', () => {
    for (const group of groups) {
      if (isEnabled(group)) expect(mayRead(group, 'demographics'), group).toBe(true);
      for (const type of SHARABLE_TYPE_CODES) if (mayUpload(group, type)) expect(mayRead(group, type), `${group} ${type}`).toBe(true);
    }
  });

  it('spot checks of the clinical functions', () => {
    // Pharmacist: allergies, diagnosis and medication, lab; uploads dispensing and ADRs; no notes or certificates.
    expect(mayRead('pharmacist', 'allergies')).toBe(true);
    expect(mayRead('pharmacist', 'diagnosis-procedure-medication')).toBe(true);
    expect(mayRead('pharmacist', 'lab-radiology')).toBe(true);
    expect(mayUpload('pharmacist', 'diagnosis-procedure-medication')).toBe(true);
    expect(mayUpload('pharmacist', 'allergies')).toBe(true);
    expect(mayRead('pharmacist', 'clinical-notes')).toBe(false);
    expect(mayRead('pharmacist', 'medical-certificates')).toBe(false);
    expect(mayUpload('pharmacist', 'lab-radiology')).toBe(false);
    // Radiographer: reads and uploads lab-radiology, reads the referral; not notes.
    expect(mayRead('radiographer', 'lab-radiology')).toBe(true);
    expect(mayUpload('radiographer', 'lab-radiology')).toBe(true);
    expect(mayRead('radiographer', 'referrals')).toBe(true);
    expect(mayRead('radiographer', 'clinical-notes')).toBe(false);
    // Medical laboratory technologist: lab only.
    expect(RBAC.readableTypes('medical-laboratory-technologist')).toEqual(['demographics', 'diagnosis-procedure-medication', 'lab-radiology']);
    expect(mayUpload('medical-laboratory-technologist', 'lab-radiology')).toBe(true);
    // Midwife and nurse: birth and immunisation records.
    expect(mayUpload('midwife', 'birth-immunisation')).toBe(true);
    expect(mayUpload('nurse', 'birth-immunisation')).toBe(true);
    expect(mayRead('nurse', 'medical-certificates')).toBe(false);
    // Certificates are issued by doctors, dentists and Chinese medicine practitioners.
    expect(groups.filter((group) => mayUpload(group, 'medical-certificates')).sort()).toEqual(['chinese-medicine-practitioner', 'dentist', 'medical-practitioner']);
  });
});
