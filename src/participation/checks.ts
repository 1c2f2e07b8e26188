import type { Principal } from '../auth/principal.js';
import { grantFor } from '../auth/scopes.js';
import { forbidden } from '../access/rights.js';
import { FhirError } from '../fhir/outcome.js';
import { startOfDay } from './rules.js';

/** Small shared pieces of the participation services. */

export const conflict = (diagnostics: string) => FhirError.of(409, 'business-rule', diagnostics);
export const rule = (diagnostics: string, expression?: string[]) => FhirError.of(422, 'business-rule', diagnostics, expression);

export type Actor = Principal['kind'] | 'user-administrator' | 'account';

/** Throws 403 unless the principal is one of the given kinds (an account must be usable). */
export function requireActor(principal: Principal, allowed: Actor[], what: string, systemScopeType?: string): void {
  if (allowed.includes(principal.kind)) {
    if (principal.kind === 'account' && principal.unusable) throw forbidden(principal.unusable);
    if (principal.kind === 'system' && systemScopeType && !grantFor(principal.scopes, systemScopeType).write) {
      throw forbidden(`This client's scopes do not allow writing ${systemScopeType}`);
    }
    return;
  }
  if (principal.kind === 'account' && allowed.includes('user-administrator') && principal.userAdministrator) {
    if (principal.unusable) throw forbidden(principal.unusable);
    return;
  }
  throw forbidden(`Only ${what}`);
}

export function nowIso(now: Date): string {
  return now.toISOString();
}

/** An effective date given by the caller: a valid date or dateTime, not in the future. */
export function effectiveDate(value: string | undefined, now: Date): string {
  if (value === undefined) return nowIso(now);
  const t = /^\d{4}-\d{2}-\d{2}$/.test(value) ? startOfDay(value) : Date.parse(value);
  if (!/^\d{4}-\d{2}-\d{2}(T.*)?$/.test(value) || Number.isNaN(t)) throw rule(`effectiveDate '${value.slice(0, 40)}' is not a valid date`, ["Parameters.parameter('effectiveDate')"]);
  if (t > now.getTime()) throw rule('effectiveDate may not be in the future: record the change on the day it takes effect', ["Parameters.parameter('effectiveDate')"]);
  return new Date(t).toISOString();
}

export const refId = (reference: string | undefined, type: string): string | undefined =>
  reference?.startsWith(`${type}/`) ? reference.slice(type.length + 1) : undefined;
