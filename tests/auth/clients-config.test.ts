import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { exportJWK, generateKeyPair } from 'jose';
import { afterAll, expect, it } from 'vitest';
import { authFromConfig } from '../../src/auth/from-config.js';
import { readConfig } from '../../src/config.js';

/** The backend clients file (AUTH_CLIENTS_FILE): what each registration must and may say. */

const dir = mkdtempSync(join(tmpdir(), 'clients-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

async function load(clients: unknown) {
  const path = join(dir, `clients-${Math.random().toString(36).slice(2)}.json`);
  writeFileSync(path, JSON.stringify(clients));
  return authFromConfig(readConfig({ AUTH_CLIENTS_FILE: path, AUTH_DEV_KEY_FILE: join(dir, 'dev-key.json') }));
}

it('reads registrations, seesNonParticipating among them, and refuses a malformed one', async () => {
  const { publicKey } = await generateKeyPair('ES256');
  const jwk = { ...(await exportJWK(publicKey)), kid: 'ha-1', alg: 'ES256' };
  const ha = { clientId: 'ha-bulk', name: 'HA', jwks: [jwk], scopes: ['system/*.read'] };
  const tool = { ...ha, clientId: 'migration', seesNonParticipating: true };
  expect((await load([ha, tool])).clients.map((c) => [c.clientId, c.seesNonParticipating === true])).toEqual([
    ['ha-bulk', false],
    ['migration', true],
  ]);
  await expect(load([{ ...ha, scopes: undefined }])).rejects.toThrow(/clientId, jwks and scopes/);
  await expect(load([{ ...ha, seesNonParticipating: 'yes' }])).rejects.toThrow(/seesNonParticipating is true or false/);
});
