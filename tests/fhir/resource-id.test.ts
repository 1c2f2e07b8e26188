import { setTimeout as sleep } from 'node:timers/promises';
import { describe, expect, it } from 'vitest';
import { newResourceId } from '../../src/fhir/resource-id.js';

describe('newResourceId', () => {
  it('is a version 7 UUID that carries the time of its creation', () => {
    const before = Date.now();
    const id = newResourceId();
    const after = Date.now();
    expect(id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    const ms = parseInt(id.replaceAll('-', '').slice(0, 12), 16);
    expect(ms).toBeGreaterThanOrEqual(before);
    expect(ms).toBeLessThanOrEqual(after);
  });

  it('sorts ids of later milliseconds after earlier ones, and never repeats', async () => {
    const first = Array.from({ length: 1000 }, () => newResourceId());
    await sleep(2);
    const later = newResourceId();
    expect(new Set(first).size).toBe(1000);
    for (const id of first) expect(id < later).toBe(true);
  });
});
