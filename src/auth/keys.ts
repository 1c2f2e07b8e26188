import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import {
  calculateJwkThumbprint,
  createLocalJWKSet,
  createRemoteJWKSet,
  exportJWK,
  generateKeyPair,
  importJWK,
  type CryptoKey,
  type JSONWebKeySet,
  type JWK,
  type JWTVerifyGetKey,
  type KeyObject,
} from 'jose';

/**
 * Signing keys and the set of keys whose tokens this server trusts. Only asymmetric
 * algorithms are accepted: a shared secret would let every holder mint tokens.
 */

export const ACCEPTED_ALGORITHMS = ['ES256', 'ES384', 'RS256', 'RS384', 'PS256', 'EdDSA'];
const SIGNING_ALGORITHM = 'ES256';

export interface SigningKey {
  kid: string;
  alg: string;
  privateKey: CryptoKey | KeyObject | Uint8Array;
  publicJwk: JWK;
}

async function signingKeyFromJwk(jwk: JWK): Promise<SigningKey> {
  const alg = jwk.alg ?? SIGNING_ALGORITHM;
  const { d: _d, p: _p, q: _q, dp: _dp, dq: _dq, qi: _qi, ...publicPart } = jwk;
  const kid = jwk.kid ?? (await calculateJwkThumbprint(publicPart));
  return { kid, alg, privateKey: await importJWK(jwk, alg), publicJwk: { ...publicPart, kid, alg, use: 'sig' } };
}

/** A private JWK from a file (production: the token endpoint's signing key). */
export async function readSigningKey(path: string): Promise<SigningKey> {
  const jwk = JSON.parse(readFileSync(path, 'utf8')) as JWK;
  if (!jwk.d) throw new Error(`${path} holds no private key`);
  return signingKeyFromJwk(jwk);
}

export async function generateSigningKey(): Promise<{ key: SigningKey; privateJwk: JWK }> {
  const { privateKey } = await generateKeyPair(SIGNING_ALGORITHM, { extractable: true });
  const privateJwk = { ...(await exportJWK(privateKey)), alg: SIGNING_ALGORITHM };
  privateJwk.kid = await calculateJwkThumbprint({ kty: privateJwk.kty!, crv: privateJwk.crv!, x: privateJwk.x!, y: privateJwk.y! });
  return { key: await signingKeyFromJwk(privateJwk), privateJwk };
}

/**
 * The development key: made on first use and kept beside the data, so that the server and
 * `npm run token` agree. A production server never loads it.
 */
export async function loadOrCreateDevKey(path: string): Promise<SigningKey> {
  if (existsSync(path)) return readSigningKey(path);
  const { key, privateJwk } = await generateSigningKey();
  mkdirSync(dirname(path), { recursive: true });
  writeFileSync(path, JSON.stringify(privateJwk, null, 2), { mode: 0o600 });
  chmodSync(path, 0o600);
  return key;
}

export function readJwks(path: string): JSONWebKeySet {
  const jwks = JSON.parse(readFileSync(path, 'utf8')) as JSONWebKeySet;
  if (!Array.isArray(jwks.keys)) throw new Error(`${path} is not a JSON Web Key Set`);
  return jwks;
}

export interface TrustedKeySources {
  /** Keys held here: the server's own signing key, the development key, a configured file. */
  local: JWK[];
  /** An identity provider's key set, fetched and cached by jose. */
  remoteJwksUrl?: string;
}

/** One key lookup over local keys first, then the remote set. */
export function trustedKeys(sources: TrustedKeySources): JWTVerifyGetKey {
  const local = sources.local.length ? createLocalJWKSet({ keys: sources.local }) : undefined;
  const remote = sources.remoteJwksUrl ? createRemoteJWKSet(new URL(sources.remoteJwksUrl), { cacheMaxAge: 10 * 60_000, cooldownDuration: 30_000 }) : undefined;
  return async (header, token) => {
    if (local) {
      try {
        return await local(header, token);
      } catch (error) {
        if (!remote) throw error;
      }
    }
    if (remote) return remote(header, token);
    throw new Error('no trusted keys');
  };
}
