/**
 * Canonical forms of common UCUM units, so that `5 g` and `5000 mg` match the same quantity
 * search. Units not listed compare by their own code only. Affine units (Cel, [degF]) are left
 * alone on purpose: they cannot be converted by a factor.
 */

export const UCUM_SYSTEM = 'http://unitsofmeasure.org';

const FACTORS: Record<string, [canonical: string, factor: number]> = {
  // mass
  kg: ['g', 1e3], g: ['g', 1], mg: ['g', 1e-3], ug: ['g', 1e-6], ng: ['g', 1e-9], pg: ['g', 1e-12],
  '[lb_av]': ['g', 453.59237], '[oz_av]': ['g', 28.349523125],
  // length
  km: ['m', 1e3], m: ['m', 1], cm: ['m', 1e-2], mm: ['m', 1e-3], um: ['m', 1e-6],
  '[in_i]': ['m', 0.0254], '[ft_i]': ['m', 0.3048],
  // volume
  L: ['L', 1], l: ['L', 1], dL: ['L', 0.1], cL: ['L', 1e-2], mL: ['L', 1e-3], uL: ['L', 1e-6], fL: ['L', 1e-15],
  // time
  s: ['s', 1], ms: ['s', 1e-3], min: ['s', 60], h: ['s', 3600], d: ['s', 86400], wk: ['s', 604800],
  mo: ['s', 2629800], a: ['s', 31557600],
  // mass concentration
  'g/L': ['g/L', 1], 'g/dL': ['g/L', 10], 'mg/dL': ['g/L', 1e-2], 'mg/L': ['g/L', 1e-3], 'ug/L': ['g/L', 1e-6], 'ug/dL': ['g/L', 1e-5], 'ng/mL': ['g/L', 1e-6],
  // substance concentration
  'mol/L': ['mol/L', 1], 'mmol/L': ['mol/L', 1e-3], 'umol/L': ['mol/L', 1e-6], 'nmol/L': ['mol/L', 1e-9],
  // body mass index and similar
  'kg/m2': ['g/m2', 1e3],
};

export interface CanonicalQuantity {
  code: string;
  value: number;
}

/** The canonical code and value of a UCUM quantity, or undefined if the unit is not known here. */
export function canonicalUcum(value: number, code: string): CanonicalQuantity | undefined {
  const entry = FACTORS[code];
  if (!entry) return undefined;
  const [canonical, factor] = entry;
  // Round away binary noise (0.1 * 3 and friends) so equal quantities compare equal.
  return { code: canonical, value: Number((value * factor).toPrecision(12)) };
}

/** The text of a quantity's UCUM-converted index row; any other text on a quantity row is its human unit. */
export const CANONICAL = 'canonical';
