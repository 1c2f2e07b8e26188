import type { Filter, Sort } from 'mongodb';
import type { SearchCursor, SortSpec } from '../port.js';
import { sortKeyField, type CurrentDocument } from './documents.js';

/**
 * The search order, as the embedded store defines it: each sort key in its direction with
 * absent values last, then resource type and id ascending. Mongo sorts absent values first
 * when ascending, so a search runs once per pattern of present and absent keys (within one,
 * Mongo's order is right) and the pages are merged here. A backward page (before a cursor)
 * reads the order in reverse.
 */

interface SortField {
  path: string;
  descending: boolean;
  /** Only sort keys of parameters can be absent; id and lastUpdated never are. */
  optional: boolean;
}

export function sortFields(sort: SortSpec[]): SortField[] {
  return sort.map(({ param, descending }) => {
    if (param === '_id') return { path: 'id', descending, optional: false };
    if (param === '_lastUpdated') return { path: 'lastUpdated', descending, optional: false };
    return { path: `sortKeys.${sortKeyField(param)}.${descending ? 'max' : 'min'}`, descending, optional: true };
  });
}

export type SortValue = string | number | null;

export function valueAt(doc: CurrentDocument, path: string): SortValue {
  let value: unknown = doc;
  for (const part of path.split('.')) value = (value as Record<string, unknown> | undefined)?.[part];
  return typeof value === 'string' || typeof value === 'number' ? value : null;
}

/** Numbers before strings, strings by code point (UTF-8 byte order), as MongoDB and SQLite. */
function compareValues(a: string | number, b: string | number): number {
  if (typeof a === 'number' && typeof b === 'number') return a - b;
  if (typeof a === 'number') return -1;
  if (typeof b === 'number') return 1;
  return Buffer.compare(Buffer.from(a, 'utf8'), Buffer.from(b, 'utf8'));
}

export function compareInOrder(fields: SortField[], forward: boolean) {
  return (a: CurrentDocument, b: CurrentDocument): number => {
    let result = 0;
    for (const { path, descending } of fields) {
      const [va, vb] = [valueAt(a, path), valueAt(b, path)];
      if (va === null || vb === null) result = va === vb ? 0 : va === null ? 1 : -1;
      else result = descending ? compareValues(vb, va) : compareValues(va, vb);
      if (result !== 0) break;
    }
    if (result === 0) result = compareValues(a.resourceType, b.resourceType) || compareValues(a.id, b.id);
    return forward ? result : -result;
  };
}

/**
 * Rows strictly after (forward) or before the cursor: at the first key that differs the row
 * lies beyond the cursor's value (absent values lie beyond every present one), or all keys are
 * equal and resource type and id decide.
 */
export function cursorFilter(fields: SortField[], cursor: SearchCursor, forward: boolean): Filter<CurrentDocument> {
  const alternatives: Filter<CurrentDocument>[] = [];
  const equalSoFar: Filter<CurrentDocument>[] = [];
  fields.forEach(({ path, descending }, i) => {
    const value = cursor.keys[i] ?? null;
    const beyond = forward !== descending ? '$gt' : '$lt';
    let step: Filter<CurrentDocument> | undefined;
    if (value === null) step = forward ? undefined : { [path]: { $ne: null } };
    else step = forward ? { $or: [{ [path]: { [beyond]: value } }, { [path]: null }] } : { [path]: { [beyond]: value } };
    if (step) alternatives.push({ $and: [...equalSoFar, step] });
    equalSoFar.push({ [path]: value });
  });
  const tie = forward ? '$gt' : '$lt';
  alternatives.push({
    $and: [
      ...equalSoFar,
      {
        $or: [
          { resourceType: { [tie]: cursor.resourceType } },
          { resourceType: cursor.resourceType, id: { [tie]: cursor.id } },
        ],
      },
    ],
  });
  return { $or: alternatives };
}

/** One query per pattern of present and absent optional keys: its filter and Mongo sort. */
export function segments(fields: SortField[], forward: boolean): { filter: Filter<CurrentDocument>; sort: Sort }[] {
  const optional = [...new Set(fields.filter((f) => f.optional).map((f) => f.path))];
  return Array.from({ length: 2 ** optional.length }, (_, pattern) => {
    const present = new Set(optional.filter((_, bit) => pattern & (1 << bit)));
    const filter: Filter<CurrentDocument> = optional.length
      ? { $and: optional.map((path) => ({ [path]: present.has(path) ? { $ne: null } : null })) }
      : {};
    const sort: Record<string, 1 | -1> = {};
    for (const { path, descending, optional: canBeAbsent } of fields) {
      // A repeated key adds nothing: rows it could order are already tied on it.
      if ((!canBeAbsent || present.has(path)) && !(path in sort)) sort[path] = descending === forward ? -1 : 1;
    }
    for (const path of ['resourceType', 'id']) if (!(path in sort)) sort[path] = forward ? 1 : -1;
    return { filter, sort };
  });
}
