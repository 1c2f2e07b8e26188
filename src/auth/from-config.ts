import { existsSync, readFileSync } from 'node:fs';
import type { ServerConfig } from '../config.js';
import { CardReaders, type CardReader } from '../participation/card-readings.js';
import type { BackendClient } from './backend-services.js';
import { loadOrCreateDevKey, readJwks, readSigningKey, type SigningKey } from './keys.js';
import type { AuthSetup } from './setup.js';

/** Reads keys and clients named by the configuration. */

export const DEFAULT_CLIENTS_FILE = './data/clients.json';
export const DEFAULT_CARD_READERS_FILE = './data/card-readers.json';

function readClients(path: string): BackendClient[] {
  const clients = JSON.parse(readFileSync(path, 'utf8')) as BackendClient[];
  if (!Array.isArray(clients)) throw new Error(`${path} must hold an array of clients`);
  for (const c of clients) {
    if (typeof c.clientId !== 'string' || !Array.isArray(c.jwks) || !Array.isArray(c.scopes)) throw new Error(`${path}: each client needs clientId, jwks and scopes`);
    if (c.seesNonParticipating !== undefined && typeof c.seesNonParticipating !== 'boolean') throw new Error(`${path}: ${c.clientId}: seesNonParticipating is true or false`);
  }
  return clients;
}

/** `[{"readerId","organizationId","jwks":[public JWKs with kid]}]`: checked whole, or the server does not start. */
export function readCardReaders(path: string): CardReaders {
  const readers = JSON.parse(readFileSync(path, 'utf8')) as CardReader[];
  if (!Array.isArray(readers)) throw new Error(`${path} must hold an array of card readers`);
  return new CardReaders(readers, path);
}

export async function authFromConfig(config: ServerConfig): Promise<AuthSetup> {
  const { auth } = config;
  let signingKey: SigningKey | undefined;
  if (auth.signingKeyFile) signingKey = await readSigningKey(auth.signingKeyFile);
  else if (config.mode === 'development') signingKey = await loadOrCreateDevKey(auth.devKeyFile);

  if (config.mode === 'production' && !auth.jwksFile && !auth.jwksUrl && !signingKey) {
    throw new Error('In production, configure AUTH_JWKS_URL, AUTH_JWKS_FILE or AUTH_SIGNING_KEY_FILE: no token could be checked otherwise');
  }
  const trusted = [...(signingKey ? [signingKey.publicJwk] : []), ...(auth.jwksFile ? readJwks(auth.jwksFile).keys : [])];
  const clientsFile = auth.clientsFile ?? (config.mode === 'development' && existsSync(DEFAULT_CLIENTS_FILE) ? DEFAULT_CLIENTS_FILE : undefined);
  const cardReadersFile = auth.cardReadersFile ?? (config.mode === 'development' && existsSync(DEFAULT_CARD_READERS_FILE) ? DEFAULT_CARD_READERS_FILE : undefined);
  return {
    mode: config.mode,
    issuers: auth.issuers,
    audience: auth.audience,
    trustedKeys: trusted,
    ...(auth.jwksUrl && { remoteJwksUrl: auth.jwksUrl }),
    ...(signingKey && { signingKey }),
    clients: clientsFile ? readClients(clientsFile) : [],
    cardReaders: cardReadersFile ? readCardReaders(cardReadersFile) : new CardReaders(),
    tokenLifetimeSeconds: auth.tokenLifetimeSeconds,
  };
}
