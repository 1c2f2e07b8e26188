import { exportJWK, generateKeyPair, SignJWT } from 'jose';
import { randomUUID } from 'node:crypto';
import { CARD_READING_TYPE, signCardReading, type CardReaders } from '../../src/participation/card-readings.js';
import { HKIC } from './access-fixtures.js';

/** Smart HKIC card readers for tests: a key pair each, registered to an HCP (or not), signing readings. */

export interface TestCardReader {
  kid: string;
  /** A reading of a card holding the document `number` (an HKIC unless `system` says otherwise), made now unless `iat` says when. */
  read(number: string, options?: { iat?: number; jti?: string; system?: string }): Promise<string>;
}

let serial = 0;

/** A new reader; registered to `organizationId` in `readers` unless that is undefined. */
export async function cardReader(readers: CardReaders | undefined, organizationId: string): Promise<TestCardReader> {
  const { privateKey, publicKey } = await generateKeyPair('ES256');
  const kid = `test-reader-${++serial}-${randomUUID().slice(0, 8)}`;
  readers?.add({ readerId: `desk ${serial}`, organizationId, jwks: [{ ...(await exportJWK(publicKey)), kid, alg: 'ES256' }] });
  return {
    kid,
    read: (number, options = {}) => signCardReading({ privateKey, kid, alg: 'ES256' }, { system: options.system ?? HKIC, value: number }, options),
  };
}

/** A reading signed with a shared secret under a registered reader's key id: what only an asymmetric key may sign. */
export function symmetricReading(kid: string, number: string): Promise<string> {
  return new SignJWT({ identityDocument: { system: HKIC, value: number } })
    .setProtectedHeader({ alg: 'HS256', kid, typ: CARD_READING_TYPE })
    .setIssuedAt()
    .setJti(randomUUID())
    .sign(new TextEncoder().encode('a secret anybody could share with the server'));
}

export const withReading = (reading: string) => [{ name: 'cardReading', valueString: reading }];
