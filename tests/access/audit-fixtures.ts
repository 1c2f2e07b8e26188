import type { AccessEvent, AccessRecorder } from '../../src/access/events.js';
import type { AccountPrincipal } from '../../src/auth/principal.js';
import { parseSearch } from '../../src/fhir/search/request.js';
import type { ResourceStore, StoredVersion } from '../../src/store/port.js';
import { patientWrite } from '../store/sharing-fixtures.js';

/** Shared by the audit and notification suites: principals, access events, a store wrapper, FHIR searches. */

export const BASE = 'http://fhir.test/fhir';

export const account = (n = 1, overrides: Partial<AccountPrincipal> = {}): AccountPrincipal => ({
  kind: 'account',
  accountId: `ac${n}`,
  practitionerId: `pr${n}`,
  organizationId: 'org1',
  group: 'medical-practitioner',
  userAdministrator: false,
  unusable: undefined,
  noClinicalAccess: undefined,
  ...overrides,
});

export function accessEvent(overrides: Partial<AccessEvent> = {}): AccessEvent {
  return {
    at: new Date('2025-03-04T05:06:07.000Z'),
    principal: account(),
    interaction: 'read',
    method: 'GET',
    url: '/fhir/Observation/o1',
    resourceType: 'Observation',
    id: 'o1',
    status: 200,
    patients: ['p1'],
    dataTypes: ['lab-radiology'],
    clientAddress: '10.0.0.7',
    ...overrides,
  };
}

/** The store with some methods replaced (to fail, count or hold writes). */
export function wrapStore(store: ResourceStore, overrides: Partial<ResourceStore>): ResourceStore {
  return new Proxy(store, {
    get(target, property, receiver) {
      if (property in overrides) return overrides[property as keyof ResourceStore];
      const value = Reflect.get(target, property, receiver) as unknown;
      return typeof value === 'function' ? (value as (...args: unknown[]) => unknown).bind(target) : value;
    },
  });
}

/** Ids of the current resources a FHIR search query finds, in _id order. */
export async function searchIds(store: ResourceStore, resourceType: string, query: string): Promise<string[]> {
  const parsed = await parseSearch([resourceType], [...new URLSearchParams(query)], { baseUrl: BASE, valueSetCodes: async () => undefined }, { defaultPageSize: 100, maxPageSize: 1000, strict: true });
  const hits = await store.search({ resourceTypes: [resourceType], where: parsed.where, sort: [{ param: '_id', descending: false }], limit: 1000 });
  return hits.map((hit) => hit.version.id);
}

export const bodyOf = <T = Record<string, any>>(version: StoredVersion | undefined): T => JSON.parse(version!.body!) as T;

export function deferred(): { promise: Promise<void>; resolve: () => void } {
  let resolve!: () => void;
  const promise = new Promise<void>((r) => (resolve = r));
  return { promise, resolve };
}

export const settledState = async (promise: Promise<unknown>): Promise<'pending' | 'fulfilled' | 'rejected'> => {
  let state: 'pending' | 'fulfilled' | 'rejected' = 'pending';
  promise.then(
    () => (state = 'fulfilled'),
    () => (state = 'rejected'),
  );
  for (let i = 0; i < 5; i++) await new Promise((r) => setImmediate(r));
  return state;
};

/**
 * Records `count` events of round `round` (patients r{round}p0..4, in turn) while the store
 * takes a write every tenth, yielding now and then so the recorder batches them; resolves once
 * all are answered.
 */
export async function recordWhileWriting(recorder: AccessRecorder, store: ResourceStore, round: number, count: number): Promise<void> {
  const recorded: Promise<void>[] = [];
  for (let n = 0; n < count; n++) {
    recorded.push(recorder.record(accessEvent({ patients: [`r${round}p${n % 5}`] })));
    if (n % 10 === 0) void store.write(patientWrite(`pt${round}-${n}`));
    if (n % 25 === 0) await new Promise((resolve) => setImmediate(resolve));
  }
  await Promise.all(recorded);
}
