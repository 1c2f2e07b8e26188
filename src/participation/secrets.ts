import { createHmac, randomBytes, randomInt, timingSafeEqual } from 'node:crypto';
import { FhirError } from '../fhir/outcome.js';

/**
 * Short numeric secrets a patient hands over in person or reads out (access keys, one-time
 * passwords), and the limit on wrong guesses at them.
 *
 * Both live in this process's memory only: a restart forgets every outstanding code and lock
 * (the patient makes a new one), and a server run as several processes would need a shared
 * store instead. Codes are kept as HMACs under a key made at start, never as the digits.
 */

/** Forgets what nobody can use any more, at most once a minute. */
const SWEEP_EVERY_MS = 60_000;

export interface CodePolicy {
  digits: number;
  ttlMs: number;
}

interface Outstanding<T> {
  hash: Buffer;
  expires: number;
  data: T;
}

/** One outstanding code per key (a patient, or a patient and an account): single use, short-lived. */
export class OneTimeCodes<T = undefined> {
  private readonly pepper = randomBytes(32);
  private readonly codes = new Map<string, Outstanding<T>>();
  private swept = 0;

  constructor(
    readonly policy: CodePolicy,
    private readonly clock: () => Date,
  ) {}

  private hash(key: string, code: string): Buffer {
    return createHmac('sha256', this.pepper).update(`${key}\n${code}`).digest();
  }

  /** A new code for the key, replacing any earlier one. */
  issue(key: string, data: T): { code: string; expires: Date } {
    const now = this.clock().getTime();
    this.sweep(now);
    const code = String(randomInt(0, 10 ** this.policy.digits)).padStart(this.policy.digits, '0');
    const expires = now + this.policy.ttlMs;
    this.codes.set(key, { hash: this.hash(key, code), expires, data });
    return { code, expires: new Date(expires) };
  }

  /** What was kept with the key's outstanding code, if one is still usable. */
  peek(key: string): T | undefined {
    const entry = this.codes.get(key);
    return entry && entry.expires > this.clock().getTime() ? entry.data : undefined;
  }

  /** True, and the code is used up, when it is the key's outstanding code and has not expired. */
  redeem(key: string, code: string): boolean {
    const entry = this.codes.get(key);
    if (!entry) return false;
    if (entry.expires <= this.clock().getTime()) {
      this.codes.delete(key);
      return false;
    }
    if (!timingSafeEqual(entry.hash, this.hash(key, code.trim()))) return false;
    this.codes.delete(key);
    return true;
  }

  forget(key: string): void {
    this.codes.delete(key);
  }

  private sweep(now: number): void {
    if (now - this.swept < SWEEP_EVERY_MS) return;
    this.swept = now;
    for (const [key, entry] of this.codes) if (entry.expires <= now) this.codes.delete(key);
  }
}

export interface LimitPolicy {
  /** This many events within `windowMs` lock the key… */
  max: number;
  windowMs: number;
  /** …for this long. */
  lockMs: number;
}

/** Counts events per key (wrong guesses, requests) and locks the key when there are too many. */
export class AttemptLimiter {
  private readonly events = new Map<string, { times: number[]; lockedUntil?: number }>();
  private swept = 0;

  constructor(
    readonly policy: LimitPolicy,
    private readonly clock: () => Date,
  ) {}

  /** Until when the key is locked, or undefined when it is not. */
  lockedUntil(key: string): Date | undefined {
    const until = this.events.get(key)?.lockedUntil;
    return until !== undefined && until > this.clock().getTime() ? new Date(until) : undefined;
  }

  /** Records one event; true when it locked the key. */
  record(key: string): boolean {
    const now = this.clock().getTime();
    this.sweep(now);
    const entry = this.events.get(key) ?? { times: [] };
    entry.times = entry.times.filter((t) => t > now - this.policy.windowMs);
    entry.times.push(now);
    let locked = false;
    if (entry.times.length >= this.policy.max) {
      entry.lockedUntil = now + this.policy.lockMs;
      entry.times = [];
      locked = true;
    }
    this.events.set(key, entry);
    return locked;
  }

  reset(key: string): void {
    this.events.delete(key);
  }

  private sweep(now: number): void {
    if (now - this.swept < SWEEP_EVERY_MS) return;
    this.swept = now;
    const horizon = now - Math.max(this.policy.windowMs, this.policy.lockMs);
    for (const [key, entry] of this.events) {
      if ((entry.lockedUntil ?? 0) <= now && entry.times.every((t) => t <= horizon)) this.events.delete(key);
    }
  }
}

export const tooManyAttempts = (what: string, until: Date) =>
  FhirError.of(429, 'throttled', `${what} is locked after too many wrong attempts until ${until.toISOString()}; try again later`);

export const minutes = (ms: number) => `${Math.round(ms / 60_000)} minutes`;
