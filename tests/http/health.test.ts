import { expect, it } from 'vitest';
import type { AccessEvent, AccessRecorder } from '../../src/access/events.js';
import type { ResourceStore } from '../../src/store/port.js';
import { describeEachStore } from '../store/stores.js';
import { useServer } from './harness.js';

/** GET /healthz: 200 while the store answers, 503 (with no detail) when it fails or hangs; public and not audited. */

describeEachStore('health check', (open) => {
  let mode: 'answers' | 'fails' | 'hangs' = 'answers';
  const events: AccessEvent[] = [];
  const capture: AccessRecorder = { record: async (event) => void events.push(event) };
  // The store as the server sees it: its reads fail or hang on demand.
  const flaky = async (): Promise<ResourceStore> => {
    const store = await open();
    return new Proxy(store, {
      get(target, property) {
        if (property === 'readCurrent' && mode === 'fails') return () => Promise.reject(new Error('SQLITE_IOERR: disk I/O error at /var/data/fhir.sqlite'));
        if (property === 'readCurrent' && mode === 'hangs') return () => new Promise(() => {});
        const value = Reflect.get(target, property, target) as unknown;
        return typeof value === 'function' ? value.bind(target) : value;
      },
    });
  };
  const server = useServer(flaky, { recorders: [capture] });
  const check = () => server.request({ method: 'GET', url: '/healthz', headers: { authorization: '' } });

  it('answers 200 without a token while the store answers, and leaves nothing in the audit trail', async () => {
    mode = 'answers';
    const before = events.length;
    const res = await check();
    expect(res.statusCode).toBe(200);
    expect(res.json()).toEqual({ status: 'ok' });
    expect(events.length).toBe(before);
  });

  it('answers 503 when the store fails, without its error', async () => {
    mode = 'fails';
    try {
      const res = await check();
      expect(res.statusCode).toBe(503);
      expect(res.json()).toEqual({ status: 'unavailable' });
      expect(res.body).not.toMatch(/SQLITE|disk|fhir\.sqlite/);
    } finally {
      mode = 'answers';
    }
  });

  it('answers 503 when the store does not answer within 2 s', async () => {
    mode = 'hangs';
    try {
      const res = await check();
      expect(res.statusCode).toBe(503);
    } finally {
      mode = 'answers';
    }
    expect((await check()).statusCode).toBe(200);
  });
});
