/**
 * FHIR date, dateTime and instant values as the range of instants they denote, in ms
 * (inclusive at both ends): `2013` is the whole of 2013. Values without a zone are read as
 * UTC, this server's zone.
 */

const PATTERN = /^(\d{4})(?:-(\d{2})(?:-(\d{2})(?:T(\d{2}):(\d{2})(?::(\d{2})(\.\d+)?)?(Z|[+-]\d{2}:\d{2})?)?)?)?$/;

/** The earliest and latest instants any stored date can have. */
export const MIN_INSTANT = Date.UTC(-9999, 0, 1);
export const MAX_INSTANT = Date.UTC(9999, 11, 31, 23, 59, 59, 999);

export interface InstantRange {
  low: number;
  high: number;
}

function zoneOffsetMs(zone: string | undefined): number {
  if (!zone || zone === 'Z') return 0;
  const sign = zone.startsWith('-') ? -1 : 1;
  const [h, m] = zone.slice(1).split(':').map(Number) as [number, number];
  return sign * (h * 60 + m) * 60_000;
}

/**
 * Date.UTC, for every year: Date.UTC itself reads years 0 to 99 as 1900 to 1999. Months, days
 * and times out of range carry over as there (day 0 is the last day of the month before).
 */
function utc(year: number, month: number, day = 1, hour = 0, minute = 0, second = 0): number {
  const date = new Date(0);
  date.setUTCFullYear(year, month, day);
  date.setUTCHours(hour, minute, second, 0);
  return date.getTime();
}

export function dateRange(value: string): InstantRange | undefined {
  const m = PATTERN.exec(value);
  if (!m) return undefined;
  const [, y, mo, d, hh, mi, ss, frac, zone] = m;
  const year = Number(y);
  const month = mo ? Number(mo) - 1 : undefined;
  const day = d ? Number(d) : undefined;
  if (month !== undefined && (month < 0 || month > 11)) return undefined;
  if (day !== undefined && (day < 1 || day > new Date(utc(year, month! + 1, 0)).getUTCDate())) return undefined;
  if (month === undefined) return { low: utc(year, 0, 1), high: utc(year + 1, 0, 1) - 1 };
  if (day === undefined) return { low: utc(year, month, 1), high: utc(year, month + 1, 1) - 1 };
  if (hh === undefined) return { low: utc(year, month, day), high: utc(year, month, day + 1) - 1 };
  const [h, min, s] = [Number(hh), Number(mi), Number(ss ?? 0)];
  if (h > 23 || min > 59 || s > 60) return undefined;
  const base = utc(year, month, day, h, min, s) - zoneOffsetMs(zone);
  if (ss === undefined) return { low: base, high: base + 60_000 - 1 };
  if (frac === undefined) return { low: base, high: base + 999 };
  const ms = Math.floor(Number(`0${frac}`) * 1000);
  const digits = frac.length - 1;
  const span = digits >= 3 ? 0 : 10 ** (3 - digits) - 1;
  return { low: base + ms, high: base + ms + span };
}
