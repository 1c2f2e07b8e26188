import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { parseArgs } from 'node:util';
import { calculateJwkThumbprint, exportJWK, generateKeyPair, importJWK, type JWK } from 'jose';
import { DEFAULT_CARD_READERS_FILE } from '../src/auth/from-config.js';
import { readConfig } from '../src/config.js';
import { signCardReading, type CardReader } from '../src/participation/card-readings.js';
import { SYSTEMS } from '../src/participation/rules.js';

/**
 * A development stand-in for an HCP's smart HKIC card reader:
 *   npm run card-reader -- register ORGANIZATION-ID [--reader NAME]
 *     makes a reader key pair, keeps the private key in data/card-reader-<kid>.json and registers
 *     the public key to the HCP in the card readers file (AUTH_CARD_READERS_FILE, default
 *     ./data/card-readers.json); restart the server to trust it.
 *   npm run card-reader -- read KEY-FILE NUMBER [--system SYSTEM]
 *     prints a reading of a card holding NUMBER (an HKIC unless --system), signed now: the
 *     `cardReading` of $give-consent (method smart-hkic) and $grant-restricted-access. Valid
 *     for two minutes, once.
 */

const ALG = 'ES256';

async function register(organizationId: string, readerId: string, readersFile: string): Promise<void> {
  const { privateKey, publicKey } = await generateKeyPair(ALG, { extractable: true });
  const publicJwk: JWK = { ...(await exportJWK(publicKey)), alg: ALG, use: 'sig' };
  publicJwk.kid = await calculateJwkThumbprint(publicJwk);
  const keyFile = join(dirname(readersFile), `card-reader-${publicJwk.kid}.json`);
  mkdirSync(dirname(readersFile), { recursive: true });
  writeFileSync(keyFile, JSON.stringify({ ...(await exportJWK(privateKey)), alg: ALG, kid: publicJwk.kid }, null, 2), { mode: 0o600 });
  chmodSync(keyFile, 0o600);
  const readers = existsSync(readersFile) ? (JSON.parse(readFileSync(readersFile, 'utf8')) as CardReader[]) : [];
  readers.push({ readerId, organizationId, jwks: [publicJwk] });
  writeFileSync(readersFile, JSON.stringify(readers, null, 2));
  console.log(`reader '${readerId}' of Organization/${organizationId} registered in ${readersFile} (kid ${publicJwk.kid}); its private key is in ${keyFile}. Restart the server to trust it.`);
}

async function read(keyFile: string, number: string, system: string): Promise<void> {
  const jwk = JSON.parse(readFileSync(keyFile, 'utf8')) as JWK;
  if (!jwk.d || !jwk.kid) throw new Error(`${keyFile} is not a reader's private key (made by 'register')`);
  const alg = jwk.alg ?? ALG;
  console.log(await signCardReading({ privateKey: await importJWK(jwk, alg), kid: jwk.kid, alg }, { system, value: number }));
}

try {
  const config = readConfig();
  if (config.mode === 'production') throw new Error('EHEALTH_MODE=production: readings come from the HCPs\' registered card readers, not from this script');
  const { values, positionals } = parseArgs({ options: { reader: { type: 'string' }, system: { type: 'string' } }, allowPositionals: true });
  const readerName = values.reader;
  const system = values.system ?? SYSTEMS.identityDocument('hkic');
  const [command, first, second] = positionals;
  if (command === 'register' && first) await register(first, readerName ?? `reader of ${first}`, config.auth.cardReadersFile ?? DEFAULT_CARD_READERS_FILE);
  else if (command === 'read' && first && second) await read(first, second, system);
  else throw new Error('usage: npm run card-reader -- register ORGANIZATION-ID [--reader NAME] | read KEY-FILE NUMBER [--system SYSTEM]');
} catch (error) {
  console.error(`card-reader: ${(error as Error).message}`);
  process.exit(2);
}
