import { createLocalJWKSet, errors, jwtVerify, type JWK } from 'jose';
import { ACCEPTED_ALGORITHMS } from './keys.js';
import { isSystemScope, neverGranted, scopeAllowed } from './scopes.js';

/**
 * The token endpoint of SMART Backend Services: a registered client proves who it is with a
 * JWT signed by its own private key (`private_key_jwt`) and receives a short-lived access
 * token. Errors follow OAuth 2.0 (RFC 6749 §5.2), which is what client libraries expect.
 */

export interface BackendClient {
  clientId: string;
  name: string;
  /** The client's public keys. */
  jwks: JWK[];
  /** The most this client may ask for. */
  scopes: string[];
  /**
   * For an operator's own tools only: also see the records of patients who do not take part
   * (pending activation, withdrawn). HCP systems, the default, do not.
   */
  seesNonParticipating?: boolean;
}

export class OAuthError extends Error {
  constructor(
    readonly status: number,
    readonly error: 'invalid_request' | 'invalid_client' | 'invalid_grant' | 'unsupported_grant_type' | 'invalid_scope',
    readonly description: string,
  ) {
    super(description);
  }
}

export const CLIENT_ASSERTION_TYPE = 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer';
/** The longest-lived assertion accepted: the spec asks for no more than five minutes. */
const MAX_ASSERTION_LIFETIME_SECONDS = 300;

export interface GrantedClient {
  clientId: string;
  scopes: string[];
  seesNonParticipating?: true;
}

export class BackendServices {
  private readonly clients: Map<string, BackendClient>;
  /** jti values already used, until the assertion carrying them expires. */
  private readonly usedAssertions = new Map<string, number>();

  constructor(clients: BackendClient[]) {
    this.clients = new Map(clients.map((c) => [c.clientId, c]));
  }

  get registeredClients(): number {
    return this.clients.size;
  }

  /** Checks a client_credentials request; answers the client and the scopes to grant. */
  async grant(form: URLSearchParams, tokenUrl: string): Promise<GrantedClient> {
    const grantType = form.get('grant_type');
    if (grantType !== 'client_credentials') throw new OAuthError(400, 'unsupported_grant_type', 'Only grant_type=client_credentials is supported');
    if (form.get('client_assertion_type') !== CLIENT_ASSERTION_TYPE) {
      throw new OAuthError(400, 'invalid_request', `client_assertion_type must be ${CLIENT_ASSERTION_TYPE}`);
    }
    const assertion = form.get('client_assertion');
    if (!assertion) throw new OAuthError(400, 'invalid_request', 'client_assertion is missing');
    const requested = (form.get('scope') ?? '').split(/\s+/).filter(Boolean);
    if (requested.length === 0) throw new OAuthError(400, 'invalid_scope', 'scope is missing');

    const client = await this.authenticate(assertion, tokenUrl, form.get('client_id'));
    for (const scope of requested) {
      if (!isSystemScope(scope)) throw new OAuthError(400, 'invalid_scope', `Unknown scope '${scope}': only system/ scopes are granted here`);
      const refused = neverGranted(scope);
      if (refused) throw new OAuthError(400, 'invalid_scope', refused);
      if (!scopeAllowed(scope, client.scopes)) throw new OAuthError(400, 'invalid_scope', `This client may not ask for '${scope}'`);
    }
    return { clientId: client.clientId, scopes: requested, ...(client.seesNonParticipating === true && { seesNonParticipating: true as const }) };
  }

  private async authenticate(assertion: string, tokenUrl: string, clientIdParam: string | null): Promise<BackendClient> {
    let issuer: unknown;
    try {
      issuer = JSON.parse(Buffer.from(assertion.split('.')[1] ?? '', 'base64url').toString('utf8')).iss;
    } catch {
      throw new OAuthError(400, 'invalid_request', 'client_assertion is not a JWT');
    }
    const client = typeof issuer === 'string' ? this.clients.get(issuer) : undefined;
    if (!client || (clientIdParam && clientIdParam !== client.clientId)) throw new OAuthError(401, 'invalid_client', 'Unknown client');

    let payload;
    try {
      ({ payload } = await jwtVerify(assertion, createLocalJWKSet({ keys: client.jwks }), {
        algorithms: ACCEPTED_ALGORITHMS,
        issuer: client.clientId,
        subject: client.clientId,
        audience: tokenUrl,
        requiredClaims: ['exp', 'jti'],
        clockTolerance: 30,
      }));
    } catch (error) {
      const why = error instanceof errors.JWTExpired ? 'client_assertion has expired' : error instanceof errors.JWTClaimValidationFailed ? `client_assertion ${error.claim} is not valid` : 'client_assertion does not verify against the client\'s keys';
      throw new OAuthError(401, 'invalid_client', why);
    }
    const nowSeconds = Math.floor(Date.now() / 1000);
    if (payload.exp! > nowSeconds + MAX_ASSERTION_LIFETIME_SECONDS + 30) throw new OAuthError(401, 'invalid_client', 'client_assertion lives longer than five minutes');
    this.forgetExpired(nowSeconds);
    const key = `${client.clientId} ${String(payload.jti)}`;
    if (this.usedAssertions.has(key)) throw new OAuthError(401, 'invalid_client', 'client_assertion has been used before (jti replayed)');
    this.usedAssertions.set(key, payload.exp!);
    return client;
  }

  private forgetExpired(nowSeconds: number): void {
    // Kept 60 s past expiry, longer than the clock tolerance, so a replay can never slip through.
    for (const [key, exp] of this.usedAssertions) if (exp + 60 < nowSeconds) this.usedAssertions.delete(key);
  }
}
