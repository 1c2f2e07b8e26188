import type { Parameters } from 'fhir/r4.js';
import type { Principal } from '../auth/principal.js';
import { forbidden } from '../access/rights.js';
import { notFound } from '../fhir/outcome.js';
import { conflict, rule } from './checks.js';
import type { OperationResult } from './patients.js';
import type { Inputs } from './parameters.js';
import { registeredPatient } from './reach.js';
import type { Records } from './records.js';
import { AttemptLimiter, minutes, OneTimeCodes, tooManyAttempts } from './secrets.js';
import { readStatus } from './status.js';

/**
 * A patient's access key: 8 digits the patient generates (eHealth App or website) and gives to
 * an HCP, whose account then records the patient's sharing consent to that HCP. Short-lived,
 * single use; a new key replaces the previous one. Five wrong keys lock the patient's key for
 * a quarter of an hour. Kept hashed in this process's memory (see secrets.ts).
 */

export const ACCESS_KEY = { digits: 8, ttlMs: 10 * 60_000 } as const;
export const ACCESS_KEY_LIMIT = { max: 5, windowMs: 15 * 60_000, lockMs: 15 * 60_000 } as const;

export class AccessKeyRegistry {
  private readonly keys: OneTimeCodes;
  private readonly wrong: AttemptLimiter;

  constructor(
    private readonly records: Records,
    private readonly clock: () => Date = () => new Date(),
  ) {
    this.keys = new OneTimeCodes(ACCESS_KEY, clock);
    this.wrong = new AttemptLimiter(ACCESS_KEY_LIMIT, clock);
  }

  async generate(principal: Principal, id: string, _inputs: Inputs, _baseUrl: string): Promise<OperationResult> {
    const own = (principal.kind === 'patient' || principal.kind === 'sdm') && principal.patientId === id;
    if (!own) throw forbidden('Only the patient or their substitute decision maker generates an access key');
    const patient = await registeredPatient(this.records, id);
    if (!patient) throw notFound(`Patient/${id} is not a registered eHealth participant`);
    const status = readStatus(patient.resource)!.status;
    if (status !== 'active') throw conflict(`Patient/${id} is ${status}; an access key is for giving sharing consent, which needs an active record`);
    const { code, expires } = this.keys.issue(id, undefined);
    const body: Parameters = {
      resourceType: 'Parameters',
      parameter: [
        { name: 'accessKey', valueString: code },
        { name: 'expires', valueInstant: expires.toISOString() },
      ],
    };
    return { status: 200, body };
  }

  /**
   * Uses up the patient's access key when `key` is it; otherwise counts a wrong attempt.
   * Throws 422 (naming the parameter) for a wrong, expired or used key, 429 while locked.
   */
  redeem(patientId: string, key: string, parameter = 'accessKey'): void {
    const expression = [`Parameters.parameter('${parameter}')`];
    const lockedUntil = this.wrong.lockedUntil(patientId);
    if (lockedUntil) throw tooManyAttempts("This patient's access key", lockedUntil);
    if (this.keys.redeem(patientId, key)) {
      this.wrong.reset(patientId);
      return;
    }
    if (this.wrong.record(patientId)) {
      this.keys.forget(patientId);
      throw rule(`The access key is wrong, expired or already used. After ${ACCESS_KEY_LIMIT.max} wrong keys the patient's access key is locked for ${minutes(ACCESS_KEY_LIMIT.lockMs)}; the patient generates a new one after that`, expression);
    }
    throw rule('The access key is wrong, expired or already used; the patient can generate a new one', expression);
  }
}
