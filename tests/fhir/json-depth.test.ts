import { describe, expect, it } from 'vitest';
import { nestsDeeperThan } from '../../src/fhir/json-depth.js';

describe('nestsDeeperThan', () => {
  it('counts each array and object as a level, primitives as none', () => {
    expect(nestsDeeperThan('text', 0)).toBe(false);
    expect(nestsDeeperThan(null, 0)).toBe(false);
    expect(nestsDeeperThan({}, 0)).toBe(true);
    expect(nestsDeeperThan({ a: [{ b: 1 }] }, 3)).toBe(false);
    expect(nestsDeeperThan({ a: [{ b: [] }] }, 3)).toBe(true);
    expect(nestsDeeperThan([1, [2, [3]], { x: null }], 3)).toBe(false);
  });

  it('answers for any depth without recursing', () => {
    let deep: unknown = 'leaf';
    for (let i = 0; i < 200_000; i++) deep = [deep];
    expect(nestsDeeperThan(deep)).toBe(true);
    expect(nestsDeeperThan(deep, 200_000)).toBe(false);
  });
});
