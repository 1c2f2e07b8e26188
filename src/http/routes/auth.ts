import type { FastifyInstance, FastifyRequest } from 'fastify';
import { BackendServices, OAuthError } from '../../auth/backend-services.js';
import type { SigningKey } from '../../auth/keys.js';
import { ACCEPTED_ALGORITHMS } from '../../auth/keys.js';
import { issueToken } from '../../auth/tokens.js';
import { baseUrl } from '../request.js';

/** SMART discovery and the Backend Services token endpoint (OAuth answers, not FHIR ones). */

export interface TokenEndpointOptions {
  clients: BackendServices;
  /** The key access tokens are signed with; without one the endpoint says it is unavailable. */
  signingKey: SigningKey | undefined;
  issuer: string;
  audience: string;
  lifetimeSeconds: number;
}

export const SUPPORTED_SCOPES = ['system/*.read', 'system/*.write', 'system/*.*', 'system/*.rs', 'system/*.cruds'];

function tokenUrl(request: FastifyRequest): string {
  return `${baseUrl(request).replace(/\/fhir$/, '')}/auth/token`;
}

export async function authRoutes(app: FastifyInstance, options: TokenEndpointOptions): Promise<void> {
  const discovery = async (request: FastifyRequest) => ({
    issuer: options.issuer,
    token_endpoint: tokenUrl(request),
    token_endpoint_auth_methods_supported: ['private_key_jwt'],
    token_endpoint_auth_signing_alg_values_supported: ACCEPTED_ALGORITHMS,
    grant_types_supported: ['client_credentials'],
    scopes_supported: SUPPORTED_SCOPES,
    capabilities: ['client-confidential-asymmetric', 'permission-v1', 'permission-v2'],
  });
  app.get('/.well-known/smart-configuration', discovery);
  app.get('/fhir/.well-known/smart-configuration', discovery);

  await app.register(async (scope) => {
    scope.addContentTypeParser('application/x-www-form-urlencoded', { parseAs: 'string' }, (_request, body, done) => done(null, new URLSearchParams(body as string)));
    scope.post('/auth/token', async (request, reply) => {
      reply.header('Cache-Control', 'no-store').header('Pragma', 'no-cache');
      try {
        if (!(request.body instanceof URLSearchParams)) throw new OAuthError(400, 'invalid_request', 'Send the token request as application/x-www-form-urlencoded');
        if (!options.signingKey) throw new OAuthError(400, 'invalid_client', 'This server issues no tokens: no signing key is configured');
        const granted = await options.clients.grant(request.body, tokenUrl(request));
        const accessToken = await issueToken(
          { kind: 'system', clientId: granted.clientId, scopes: granted.scopes, ...(granted.seesNonParticipating && { seesNonParticipating: true as const }) },
          { key: options.signingKey, issuer: options.issuer, audience: options.audience, lifetimeSeconds: options.lifetimeSeconds },
        );
        return reply.code(200).send({ access_token: accessToken, token_type: 'bearer', expires_in: options.lifetimeSeconds, scope: granted.scopes.join(' ') });
      } catch (error) {
        if (!(error instanceof OAuthError)) throw error;
        return reply.code(error.status).send({ error: error.error, error_description: error.description });
      }
    });
  });
}
