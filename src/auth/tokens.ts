import { randomUUID } from 'node:crypto';
import { errors, jwtVerify, SignJWT, type JWTVerifyGetKey } from 'jose';
import { ACCEPTED_ALGORITHMS, type SigningKey } from './keys.js';
import { claimFromToken, NON_PARTICIPATING_CLAIM, subjectOf, type PrincipalClaim } from './principal.js';

/** Verifying bearer tokens, and making the server's own. */

/** A token that cannot be accepted; the message is safe to show the client. */
export class InvalidToken extends Error {}

export interface TokenPolicy {
  /** Issuers whose tokens are accepted; the first is the one this server signs as. */
  issuers: string[];
  audience: string;
  /** Allowed clock difference between this server and token issuers. */
  clockToleranceSeconds: number;
}

const CACHE_LIMIT = 10_000;

export class TokenVerifier {
  /** Verified tokens, so a client's repeated requests cost a lookup and not a signature check. */
  private readonly verified = new Map<string, { claim: PrincipalClaim; expiresAt: number; notBefore: number }>();

  constructor(
    private readonly keys: JWTVerifyGetKey,
    private readonly policy: TokenPolicy,
  ) {}

  async verify(token: string): Promise<PrincipalClaim> {
    const now = Date.now();
    const cached = this.verified.get(token);
    const tolerance = this.policy.clockToleranceSeconds * 1000;
    if (cached && now < cached.expiresAt + tolerance && now >= cached.notBefore - tolerance) return cached.claim;
    if (cached) this.verified.delete(token);

    let payload;
    try {
      ({ payload } = await jwtVerify(token, this.keys, {
        algorithms: ACCEPTED_ALGORITHMS,
        issuer: this.policy.issuers,
        audience: this.policy.audience,
        clockTolerance: this.policy.clockToleranceSeconds,
        requiredClaims: ['exp', 'sub'],
      }));
    } catch (error) {
      throw new InvalidToken(reason(error));
    }
    const claim = claimFromToken(payload.sub, payload.scope, payload[NON_PARTICIPATING_CLAIM]);
    if (!claim) throw new InvalidToken('The token names no principal this server knows');
    if (this.verified.size >= CACHE_LIMIT) this.verified.delete(this.verified.keys().next().value!);
    this.verified.set(token, { claim, expiresAt: payload.exp! * 1000, notBefore: (payload.nbf ?? 0) * 1000 });
    return claim;
  }
}

function reason(error: unknown): string {
  if (error instanceof errors.JWTExpired) return 'The token has expired';
  if (error instanceof errors.JWTClaimValidationFailed) {
    if (error.claim === 'nbf') return 'The token is not valid yet';
    if (error.claim === 'aud') return 'The token is not meant for this server (audience)';
    if (error.claim === 'iss') return 'The token comes from an issuer this server does not trust';
    return `The token's ${error.claim} claim is missing or not valid`;
  }
  if (error instanceof errors.JOSEAlgNotAllowed || error instanceof errors.JOSENotSupported) return 'The token is signed with an algorithm this server does not accept';
  if (error instanceof errors.JWSSignatureVerificationFailed || error instanceof errors.JWKSNoMatchingKey) return 'The token signature does not verify against any trusted key';
  return 'The token is malformed';
}

export interface IssueOptions {
  key: SigningKey;
  issuer: string;
  audience: string;
  lifetimeSeconds: number;
}

/** Makes an access token for a principal, signed with the given key. */
export async function issueToken(claim: PrincipalClaim, options: IssueOptions): Promise<string> {
  const jwt = new SignJWT(claim.kind === 'system' ? { scope: claim.scopes.join(' '), ...(claim.seesNonParticipating && { [NON_PARTICIPATING_CLAIM]: true }) } : {})
    .setProtectedHeader({ alg: options.key.alg, kid: options.key.kid, typ: 'JWT' })
    .setSubject(subjectOf(claim))
    .setIssuer(options.issuer)
    .setAudience(options.audience)
    .setIssuedAt()
    .setJti(randomUUID())
    .setExpirationTime(`${options.lifetimeSeconds}s`);
  return jwt.sign(options.key.privateKey);
}
