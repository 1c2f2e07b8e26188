import { badRequest } from './outcome.js';

const DATE_TIME = /^(\d{4})(-(\d{2})(-(\d{2})(T(\d{2}):(\d{2})(:(\d{2})(\.\d{1,9})?)?(Z|[+-]\d{2}:\d{2})?)?)?)?$/;

/**
 * The earliest instant a FHIR date/dateTime/instant value can denote, in ms. A value with a
 * time but no zone is read as UTC, which is this server's own zone.
 */
export function parseInstantLowerBound(value: string, param: string): number {
  const m = DATE_TIME.exec(value);
  if (!m) throw badRequest(`Parameter '${param}' must be a FHIR date, dateTime or instant`, [param]);
  const [, year, , month = '01', , day = '01', , hour = '00', minute = '00', , second = '00', fraction = '', zone = 'Z'] = m;
  const iso = `${year}-${month}-${day}T${hour}:${minute}:${second}${fraction.slice(0, 4)}${zone}`;
  const ms = Date.parse(iso);
  if (Number.isNaN(ms)) throw badRequest(`Parameter '${param}' is not a real date`, [param]);
  return ms;
}
