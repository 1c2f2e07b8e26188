import { vi } from 'vitest';
import type { IndexEntry, IndexValue, ResourceIndex, SearchCriterion, SortKey } from '../../src/store/port.js';

/** Small builders shared by the store suites. */

/** A body that records what the store told renderBody, so tests can check it. */
export function render(label: string) {
  return (versionId: number, lastUpdated: number) => JSON.stringify({ label, versionId, lastUpdated });
}

export function entry(param: string, ...values: IndexValue[]): IndexEntry {
  return { param, values: values as IndexEntry['values'] };
}

export const token = (param: string, system: string | null, code: string): IndexEntry =>
  entry(param, { system, value: code });

export function indexOf(...entries: IndexEntry[]): ResourceIndex {
  return { entries, sortKeys: {}, patients: [] };
}

export function indexWith(sortKeys: Record<string, SortKey>, ...entries: IndexEntry[]): ResourceIndex {
  return { entries, sortKeys, patients: [] };
}

/** The commonest criterion: some entry of `param` has this value. */
export const codeIs = (param: string, value: string): SearchCriterion => ({
  kind: 'entry',
  param,
  anyOf: [[{ slot: 0, field: 'value', op: 'eq', value }]],
});

/** Makes every write inside `fn` see the given clock, to create ties and clock steps on purpose. */
export async function atTime<T>(ms: number, fn: () => Promise<T>): Promise<T> {
  const clock = vi.spyOn(Date, 'now').mockReturnValue(ms);
  try {
    return await fn();
  } finally {
    clock.mockRestore();
  }
}

/** Waits until the clock has passed `ms`, so later writes are strictly newer. */
export async function clockPast(ms: number): Promise<void> {
  while (Date.now() <= ms) await new Promise((resolve) => setTimeout(resolve, 1));
}
