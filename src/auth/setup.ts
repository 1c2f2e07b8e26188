import type { JWK } from 'jose';
import type { CardReaders } from '../participation/card-readings.js';
import type { BackendClient } from './backend-services.js';
import type { SigningKey } from './keys.js';

/** Everything the server needs to know to check tokens and issue its own. */
export interface AuthSetup {
  /** In production the development key is never trusted. */
  mode: 'development' | 'production';
  /** Accepted token issuers; the first is the one this server signs as. */
  issuers: string[];
  audience: string;
  /** Public keys trusted without fetching (this server's own, the development key, a JWKS file). */
  trustedKeys: JWK[];
  /** An identity provider's key set. */
  remoteJwksUrl?: string;
  /** Signs the access tokens of /auth/token; absent = that endpoint issues nothing. */
  signingKey?: SigningKey;
  clients: BackendClient[];
  /** The card readers whose signed smart HKIC readings are trusted, each registered to one HCP; none when absent. */
  cardReaders?: CardReaders;
  tokenLifetimeSeconds: number;
}
