import { FhirError } from './outcome.js';

/**
 * How deeply arrays and objects may nest in the JSON the server accepts. The walks over a
 * resource (validation, bundle reference rewriting, search indexing, the stores' codecs, JSON
 * Patch) recurse, so nesting without limit overflows the stack and answers 500. The deepest
 * official R4 example nests 22 levels (a Bundle of ValueSets); 100 leaves room for any real
 * resource inside a Bundle or a Parameters, and is far from what overflows.
 */
export const MAX_JSON_DEPTH = 100;

/**
 * True when `value` nests arrays and objects more than `limit` levels deep (a bare object is
 * one level). It walks level by level without recursion, so any depth is safe to ask about,
 * and stops at the first level past the limit.
 */
export function nestsDeeperThan(value: unknown, limit = MAX_JSON_DEPTH): boolean {
  let level: object[] = value !== null && typeof value === 'object' ? [value] : [];
  for (let depth = 1; level.length > 0; depth++) {
    if (depth > limit) return true;
    const next: object[] = [];
    for (const node of level) {
      if (Array.isArray(node)) {
        for (const item of node) if (item !== null && typeof item === 'object') next.push(item as object);
      } else {
        for (const key in node) {
          const child = (node as Record<string, unknown>)[key];
          if (child !== null && typeof child === 'object') next.push(child);
        }
      }
    }
    level = next;
  }
  return false;
}

export function tooDeeplyNested(what: string): FhirError {
  return FhirError.of(400, 'too-costly', `${what} nests arrays and objects more than ${MAX_JSON_DEPTH} levels deep; this server accepts at most ${MAX_JSON_DEPTH}`);
}

/** Throws a 400 when `value` (JSON just parsed from `what`) nests deeper than the server accepts. */
export function requireAcceptableDepth(value: unknown, what: string): void {
  if (nestsDeeperThan(value)) throw tooDeeplyNested(what);
}
