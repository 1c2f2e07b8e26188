import { describe, expect, it } from 'vitest';
import { effectiveDate } from '../../src/participation/checks.js';
import { ageInYears } from '../../src/participation/patients.js';
import { within } from '../../src/participation/principals.js';

/** Dates without a time are days in Hong Kong (UTC+8): 17:00 UTC on the 23rd is already the 24th there. */
describe('territory dates', () => {
  const lateEvening = new Date('2026-11-23T17:00:00Z');

  it('age counts birthdays on the Hong Kong calendar', () => {
    expect(ageInYears('2010-11-24', lateEvening)).toBe(16);
    expect(ageInYears('2010-11-25', lateEvening)).toBe(15);
  });

  it("an effective date of Hong Kong's today is not in the future, tomorrow is", () => {
    expect(effectiveDate('2026-11-24', lateEvening)).toBe('2026-11-23T16:00:00.000Z');
    expect(() => effectiveDate('2026-11-25', lateEvening)).toThrow(/future/);
  });

  it('a registration valid until a date lasts to the end of that day in Hong Kong', () => {
    expect(within({ end: '2026-11-24' }, lateEvening)).toBe(true);
    expect(within({ end: '2026-11-23' }, lateEvening)).toBe(false);
    expect(within({ start: '2026-11-24' }, lateEvening)).toBe(true);
  });
});
