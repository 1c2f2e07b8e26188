/**
 * SMART system scopes (v1 `system/Patient.read`, `.write`, `.*`; v2 `system/Patient.rs`,
 * `.cruds`) read into what they allow per resource type.
 *
 * Backend clients exchange health records. The audit trail and the patient-notification queue
 * are not health records: a wildcard (`system/*.…`) does not cover them. The audit trail is read
 * by auditors only, so no scope grants AuditEvent; the notification queue only to a client
 * registered with a scope naming Communication (a delivery gateway).
 */

export interface ScopeGrant {
  read: boolean;
  write: boolean;
}

const SCOPE = /^system\/(\*|[A-Z][A-Za-z]+)\.(read|write|\*|[cruds]+)$/;

export function isSystemScope(scope: string): boolean {
  const m = SCOPE.exec(scope);
  if (!m) return false;
  const rights = m[2]!;
  // v2 letters must come in the order c, r, u, d, s with no repeats.
  return ['read', 'write', '*'].includes(rights) || /^c?r?u?d?s?$/.test(rights);
}

/** Types no scope grants: the audit trail is for auditors (`auditor/{staff}` tokens). */
const NEVER_GRANTED: ReadonlySet<string> = new Set(['AuditEvent']);
/** Types a wildcard scope does not cover: they are granted only by a scope that names them. */
const NOT_BY_WILDCARD: ReadonlySet<string> = new Set([...NEVER_GRANTED, 'Communication']);

function grantOf(rights: string): ScopeGrant {
  if (rights === '*') return { read: true, write: true };
  if (rights === 'read') return { read: true, write: false };
  if (rights === 'write') return { read: false, write: true };
  return { read: /[rs]/.test(rights), write: /[cud]/.test(rights) };
}

/** What a set of scopes allows on one resource type. */
export function grantFor(scopes: readonly string[], resourceType: string): ScopeGrant {
  const grant = { read: false, write: false };
  if (NEVER_GRANTED.has(resourceType)) return grant;
  for (const scope of scopes) {
    const m = SCOPE.exec(scope);
    if (!m || (m[1] === '*' ? NOT_BY_WILDCARD.has(resourceType) : m[1] !== resourceType)) continue;
    const g = grantOf(m[2]!);
    grant.read ||= g.read;
    grant.write ||= g.write;
  }
  return grant;
}

/** Whether some scope lets the client write some resource type. */
export function writesSomeType(scopes: readonly string[]): boolean {
  return scopes.some((scope) => {
    const m = SCOPE.exec(scope);
    return m !== null && !NEVER_GRANTED.has(m[1]!) && grantOf(m[2]!).write;
  });
}

/** Whether a wildcard scope covers this type (else only a scope naming it grants it). */
export const coveredByWildcard = (resourceType: string): boolean => !NOT_BY_WILDCARD.has(resourceType);

/** Why no client may hold this scope, if none may (it names a type no scope grants). */
export function neverGranted(scope: string): string | undefined {
  const type = SCOPE.exec(scope)?.[1];
  return type !== undefined && NEVER_GRANTED.has(type) ? `No client scope grants ${type}: the audit trail is read by auditors only` : undefined;
}

/** Is `requested` covered by one of `allowed`? (A client may ask for less than it holds.) */
export function scopeAllowed(requested: string, allowed: readonly string[]): boolean {
  const m = SCOPE.exec(requested);
  if (!m || !isSystemScope(requested)) return false;
  const want = grantOf(m[2]!);
  const have = grantFor(allowed, m[1] === '*' ? '*' : m[1]!);
  if (m[1] === '*') {
    // A wildcard request needs a wildcard grant.
    const wild = { read: false, write: false };
    for (const scope of allowed) {
      const a = SCOPE.exec(scope);
      if (a?.[1] !== '*') continue;
      const g = grantOf(a[2]!);
      wild.read ||= g.read;
      wild.write ||= g.write;
    }
    return (!want.read || wild.read) && (!want.write || wild.write);
  }
  return (!want.read || have.read) && (!want.write || have.write);
}
