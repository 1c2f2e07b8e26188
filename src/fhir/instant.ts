import { badRequest } from './outcome.js';
import { dateRange } from './search/dates.js';

/** The earliest instant a FHIR date/dateTime/instant parameter denotes, in ms; a 400 otherwise. */
export function parseInstantLowerBound(value: string, param: string): number {
  const range = dateRange(value);
  if (!range) throw badRequest(`Parameter '${param}' must be a FHIR date, dateTime or instant`, [param]);
  return range.low;
}
