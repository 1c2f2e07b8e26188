import type { Principal, PrincipalClaim } from '../auth/principal.js';

/**
 * Resolved principals, kept for a few seconds so that a burst of requests with one token does
 * not look the account, its HCP and its professional up again each time. Any write to the
 * records a principal is resolved from forgets them all at once, so a deactivated account or a
 * suspended HCP still stops working on the very next request; only changes that come with the
 * passing of time (a registration's validity ending) wait for the few seconds.
 */

const RESOLVED_FROM: ReadonlySet<string> = new Set(['PractitionerRole', 'Organization', 'Practitioner', 'Patient', 'RelatedPerson']);
const MAX_ENTRIES = 10_000;

export class PrincipalCache {
  private generation = 0;
  private readonly entries = new Map<string, { generation: number; until: number; principal: Promise<Principal | undefined> }>();

  constructor(
    private readonly resolve: (claim: PrincipalClaim) => Promise<Principal | undefined>,
    private readonly ttlMs = 5_000,
    private readonly clock: () => number = Date.now,
  ) {}

  changed(resourceType: string): void {
    if (!RESOLVED_FROM.has(resourceType)) return;
    this.generation++;
    this.entries.clear();
  }

  get(claim: PrincipalClaim): Promise<Principal | undefined> {
    // Backend clients carry everything in the token; nothing to look up.
    if (claim.kind === 'system') return this.resolve(claim);
    const key = JSON.stringify(claim);
    const now = this.clock();
    const hit = this.entries.get(key);
    if (hit && hit.generation === this.generation && now < hit.until) return hit.principal;
    const principal = this.resolve(claim);
    const entry = { generation: this.generation, until: now + this.ttlMs, principal };
    if (this.entries.size >= MAX_ENTRIES) this.entries.clear();
    this.entries.set(key, entry);
    principal.catch(() => this.entries.delete(key));
    return principal;
  }
}
