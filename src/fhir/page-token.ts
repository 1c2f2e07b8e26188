import { createHmac, timingSafeEqual } from 'node:crypto';
import { badRequest } from './outcome.js';

/**
 * Opaque paging tokens: the position in a listing, bound to the query that produced it and
 * signed, so a token can neither be forged nor replayed against another query.
 */
export class PageTokens {
  constructor(private readonly secret: Buffer) {}

  private mac(payload: string): Buffer {
    return createHmac('sha256', this.secret).update(payload).digest();
  }

  issue<T>(queryKey: string, position: T): string {
    const payload = Buffer.from(JSON.stringify({ q: queryKey, p: position })).toString('base64url');
    return `${payload}.${this.mac(payload).subarray(0, 16).toString('base64url')}`;
  }

  /** The position a token carries; a 400 if it is malformed, forged or from another query. */
  open<T>(token: string, queryKey: string): T {
    const [payload, signature] = token.split('.');
    const invalid = () => badRequest('The paging token is not valid for this query', ['_page']);
    if (!payload || !signature) throw invalid();
    const expected = this.mac(payload).subarray(0, 16);
    const given = Buffer.from(signature, 'base64url');
    if (given.length !== expected.length || !timingSafeEqual(given, expected)) throw invalid();
    const decoded = JSON.parse(Buffer.from(payload, 'base64url').toString('utf8')) as { q: string; p: T };
    if (decoded.q !== queryKey) throw invalid();
    return decoded.p;
  }
}
