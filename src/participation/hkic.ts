/**
 * Hong Kong Identity Card numbers: one or two letters, six digits and a check digit (0-9 or A),
 * written `A123456(3)` or `A1234563`. The check digit makes the weighted sum (weights 9..1,
 * letters A=10..Z=35, a missing first letter 36) divisible by 11.
 */

const FORMAT = /^([A-Z]{1,2})(\d{6})\(?([0-9A])\)?$/;

export function normaliseHkic(value: string): string | undefined {
  const m = FORMAT.exec(value.trim().toUpperCase().replace(/\s+/g, ''));
  return m ? `${m[1]}${m[2]}(${m[3]})` : undefined;
}

export function hkicCheckDigit(letters: string, digits: string): string {
  const padded = letters.length === 1 ? ` ${letters}` : letters;
  const values = [...padded].map((c) => (c === ' ' ? 36 : c.charCodeAt(0) - 55)).concat([...digits].map(Number));
  const sum = values.reduce((total, v, i) => total + v * (9 - i), 0);
  const check = (11 - (sum % 11)) % 11;
  return check === 10 ? 'A' : String(check);
}

/** Why the number is not a valid HKIC number, or undefined when it is. */
export function hkicProblem(value: string): string | undefined {
  const m = FORMAT.exec(value.trim().toUpperCase().replace(/\s+/g, ''));
  if (!m) return 'is not in the HKIC format (one or two letters, six digits, a check digit), e.g. A123456(3)';
  if (hkicCheckDigit(m[1]!, m[2]!) !== m[3]) return 'has a wrong check digit';
  return undefined;
}
