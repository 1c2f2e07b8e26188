import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { exportJWK, generateKeyPair } from 'jose';
import { afterAll, expect, it } from 'vitest';
import { authFromConfig, readCardReaders } from '../../src/auth/from-config.js';
import { readConfig } from '../../src/config.js';

/** The card readers file: public keys only, each kid once, every reader naming its HCP. */

const dir = mkdtempSync(join(tmpdir(), 'card-readers-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const file = (name: string, content: unknown) => {
  const path = join(dir, name);
  writeFileSync(path, JSON.stringify(content));
  return path;
};

it('reads the registered readers by key id; AUTH_CARD_READERS_FILE names the file', async () => {
  const { publicKey } = await generateKeyPair('ES256');
  const jwk = { ...(await exportJWK(publicKey)), kid: 'desk-1', alg: 'ES256' };
  const path = file('ok.json', [{ readerId: 'clinic desk 1', organizationId: 'org-1', jwks: [jwk] }]);
  expect(readCardReaders(path).keyOf('desk-1')?.reader.organizationId).toBe('org-1');
  const config = readConfig({ AUTH_CARD_READERS_FILE: path, AUTH_DEV_KEY_FILE: join(dir, 'dev-key.json') });
  expect(config.auth.cardReadersFile).toBe(path);
  expect((await authFromConfig(config)).cardReaders?.size).toBe(1);
});

it('refuses private or symmetric keys, keys without kid or given twice, and readers without an HCP', async () => {
  const { publicKey, privateKey } = await generateKeyPair('ES256', { extractable: true });
  const pub = { ...(await exportJWK(publicKey)), kid: 'k1' };
  const reader = (jwks: unknown[], extra: Record<string, unknown> = {}) => ({ readerId: 'desk', organizationId: 'org-1', jwks, ...extra });
  const cases: [unknown, RegExp][] = [
    [{ readers: [] }, /array of card readers/],
    [[reader([{ ...(await exportJWK(privateKey)), kid: 'k1' }])], /public keys only/],
    [[reader([{ kty: 'oct', k: 'c2VjcmV0', kid: 'k1' }])], /public keys only/],
    [[reader([{ ...pub, kid: undefined }])], /needs a kid/],
    [[reader([pub]), reader([pub])], /given twice/],
    [[reader([pub], { organizationId: undefined })], /organizationId/],
  ];
  for (const [content, error] of cases) expect(() => readCardReaders(file('bad.json', content))).toThrow(error);
});
