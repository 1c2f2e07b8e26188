import { generateSigningKey, type SigningKey } from '../src/auth/keys.js';
import type { PrincipalClaim } from '../src/auth/principal.js';
import type { AuthSetup } from '../src/auth/setup.js';
import { issueToken } from '../src/auth/tokens.js';

/** A signing key per test process, an AuthSetup trusting it, and tokens made with it. */

export const TEST_ISSUER = 'ehealth-test-issuer';
export const TEST_AUDIENCE = 'ehealth-test';

let key: Promise<SigningKey> | undefined;
export const testKey = () => (key ??= generateSigningKey().then((k) => k.key));

export async function testAuth(overrides: Partial<AuthSetup> = {}): Promise<AuthSetup> {
  const signingKey = await testKey();
  return {
    mode: 'development',
    issuers: [TEST_ISSUER],
    audience: TEST_AUDIENCE,
    trustedKeys: [signingKey.publicJwk],
    signingKey,
    clients: [],
    tokenLifetimeSeconds: 300,
    ...overrides,
  };
}

export async function tokenFor(claim: PrincipalClaim, options: { lifetimeSeconds?: number; key?: SigningKey; issuer?: string; audience?: string } = {}): Promise<string> {
  return issueToken(claim, {
    key: options.key ?? (await testKey()),
    issuer: options.issuer ?? TEST_ISSUER,
    audience: options.audience ?? TEST_AUDIENCE,
    lifetimeSeconds: options.lifetimeSeconds ?? 600,
  });
}

/**
 * A backend client allowed every type a client can be granted, an operator's tool that also sees
 * patients who take no part: the principal of the suites that test FHIR itself. Wildcards leave
 * out Communication (the notification queue), so it is named.
 */
export const SUPER_CLIENT: PrincipalClaim = { kind: 'system', clientId: 'test-suite', scopes: ['system/*.*', 'system/Communication.*'], seesNonParticipating: true };

export const bearer = (token: string) => ({ authorization: `Bearer ${token}` });
