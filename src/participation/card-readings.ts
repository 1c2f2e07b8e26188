import { createLocalJWKSet, decodeProtectedHeader, jwtVerify, SignJWT, type CryptoKey, type JWK, type KeyObject } from 'jose';
import { randomUUID } from 'node:crypto';
import { ACCEPTED_ALGORITHMS } from '../auth/keys.js';
import { forbidden } from '../access/rights.js';
import { badRequest, FhirError } from '../fhir/outcome.js';

/**
 * Smart HKIC readings as evidence. The number printed on an identity card is no secret, so a
 * typed number proves nothing; what proves the card was at the HCP is a reading signed by a card
 * reader registered to that HCP. A reading is a compact JWS (header `typ` CARD_READING_TYPE,
 * `kid` the reader's key, an asymmetric `alg`) whose payload carries the document read from the
 * chip (`identityDocument`: system and value), `iat` and a single-use `jti`.
 *
 * Used readings (their `jti`) are remembered in this process's memory until they could no
 * longer be fresh: a restart cannot make an old reading usable again, because by then it is too
 * old; several server processes would need a shared store (like the one-time codes, secrets.ts).
 */

export const CARD_READING_TYPE = 'smart-hkic-reading+jwt';
/** How old a reading may be: it is made at the desk, moments before it is sent. */
export const CARD_READING_MAX_AGE_SECONDS = 120;
/** How far the reader's clock may run ahead of the server's. */
export const CARD_READING_SKEW_SECONDS = 30;

export interface CardReader {
  /** Names the reader (e.g. the desk it stands at), for the operator. */
  readerId: string;
  /** The HCP (Organization id) the reader is registered to: only its accounts may present its readings. */
  organizationId: string;
  /** The reader's public keys; each `kid` unique among all readers. */
  jwks: JWK[];
}

/** The readers whose readings are trusted, by key id. Filled from configuration (tests add their own). */
export class CardReaders {
  private readonly byKid = new Map<string, { reader: CardReader; jwk: JWK }>();

  constructor(readers: CardReader[] = [], source = 'card readers') {
    for (const reader of readers) this.add(reader, source);
  }

  get size(): number {
    return this.byKid.size;
  }

  add(reader: CardReader, source = 'card readers'): void {
    if (typeof reader.readerId !== 'string' || typeof reader.organizationId !== 'string' || !Array.isArray(reader.jwks) || reader.jwks.length === 0) {
      throw new Error(`${source}: each card reader needs readerId, organizationId and jwks (its public keys)`);
    }
    for (const jwk of reader.jwks) {
      if (!jwk.kid) throw new Error(`${source}: every key of card reader ${reader.readerId} needs a kid`);
      // A shared secret would let every holder (the server included) forge readings.
      if (jwk.kty === 'oct' || jwk.d !== undefined) throw new Error(`${source}: card reader ${reader.readerId} must be given public keys only`);
      if (this.byKid.has(jwk.kid)) throw new Error(`${source}: key id ${jwk.kid} is given twice`);
      this.byKid.set(jwk.kid, { reader, jwk });
    }
  }

  keyOf(kid: string): { reader: CardReader; jwk: JWK } | undefined {
    return this.byKid.get(kid);
  }
}

export interface VerifiedReading {
  system: string;
  value: string;
  readerId: string;
}

const refused = (diagnostics: string, expression: string[]) => FhirError.of(422, 'security', diagnostics, expression);

/** Checks readings against the registered readers; each reading is accepted once. */
export class CardReadingVerifier {
  /** `kid jti` of readings accepted, with when they stop being fresh (ms). */
  private readonly used = new Map<string, number>();

  constructor(
    private readonly readers: CardReaders,
    private readonly clock: () => Date = () => new Date(),
  ) {}

  /**
   * The document a reading carries, once the reading verifies against a reader of the account's
   * HCP, is fresh and was not used before; it is then used up. Throws 400 for something that is
   * not a reading, 403 for another HCP's reader, 422 (security) for one that does not verify,
   * is stale or was used.
   */
  async verify(reading: string, organizationId: string, parameter: string): Promise<VerifiedReading> {
    const expression = [`Parameters.parameter('${parameter}')`];
    let header;
    try {
      header = decodeProtectedHeader(reading.trim());
    } catch {
      throw badRequest(`Parameter '${parameter}' must be a card reading: the compact JWS the card reader signed`, expression);
    }
    if (header.typ !== CARD_READING_TYPE) throw badRequest(`A card reading carries typ '${CARD_READING_TYPE}' in its header`, expression);
    const known = typeof header.kid === 'string' ? this.readers.keyOf(header.kid) : undefined;
    if (!known) throw refused('The card reading is not signed by a registered card reader', expression);

    let payload;
    try {
      ({ payload } = await jwtVerify(reading.trim(), createLocalJWKSet({ keys: [known.jwk] }), {
        algorithms: ACCEPTED_ALGORITHMS,
        typ: CARD_READING_TYPE,
        currentDate: this.clock(),
        clockTolerance: CARD_READING_SKEW_SECONDS,
      }));
    } catch {
      throw refused('The card reading does not verify against its card reader\'s key', expression);
    }
    if (known.reader.organizationId !== organizationId) throw forbidden("The card reader is not registered to this account's healthcare provider");

    const now = this.clock().getTime();
    const { iat, jti, identityDocument } = payload as { iat?: unknown; jti?: unknown; identityDocument?: { system?: unknown; value?: unknown } };
    if (typeof iat !== 'number' || typeof jti !== 'string' || !jti || jti.length > 200) throw badRequest('A card reading carries iat and jti', expression);
    if (iat * 1000 > now + CARD_READING_SKEW_SECONDS * 1000) throw refused('The card reading is dated in the future; check the card reader\'s clock', expression);
    const freshUntil = (iat + CARD_READING_MAX_AGE_SECONDS) * 1000;
    if (freshUntil < now) throw refused(`The card reading is more than ${CARD_READING_MAX_AGE_SECONDS} seconds old; read the card again`, expression);
    const system = identityDocument?.system;
    const value = identityDocument?.value;
    if (typeof system !== 'string' || typeof value !== 'string' || !value.trim()) throw badRequest('A card reading carries identityDocument with the system and value read from the card', expression);

    this.forgetStale(now);
    const key = `${header.kid} ${jti}`;
    if (this.used.has(key)) throw refused('The card reading has been used before; read the card again', expression);
    this.used.set(key, freshUntil);
    return { system, value, readerId: known.reader.readerId };
  }

  private forgetStale(now: number): void {
    // Kept until the reading could no longer pass the freshness check anyway.
    for (const [key, freshUntil] of this.used) if (freshUntil < now) this.used.delete(key);
  }
}

/**
 * What a card reader does (for development, tests and integrators): signs the document read
 * from the chip. `privateKey` is the reader's; `kid` the id of its registered public key.
 */
export async function signCardReading(
  key: { privateKey: CryptoKey | KeyObject | Uint8Array; kid: string; alg: string },
  identityDocument: { system: string; value: string },
  options: { iat?: number; jti?: string } = {},
): Promise<string> {
  return new SignJWT({ identityDocument })
    .setProtectedHeader({ alg: key.alg, kid: key.kid, typ: CARD_READING_TYPE })
    .setIssuedAt(options.iat ?? Math.floor(Date.now() / 1000))
    .setJti(options.jti ?? randomUUID())
    .sign(key.privateKey);
}
