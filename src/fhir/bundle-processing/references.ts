import { isResourceType } from '../definitions.js';

/** The references inside a bundle's resources: placeholders (urn:uuid:, urn:oid:) and conditional ones (Patient?identifier=…). */

export const isPlaceholder = (reference: string): boolean => reference.startsWith('urn:uuid:') || reference.startsWith('urn:oid:');

/** `Type?criteria` with a known type: resolved by search to its one match. */
export function conditionalReference(reference: string): { type: string; query: string } | undefined {
  const at = reference.indexOf('?');
  if (at <= 0) return undefined;
  const type = reference.slice(0, at);
  return isResourceType(type) ? { type, query: reference.slice(at + 1) } : undefined;
}

/** Every `reference` string of a resource (Reference.reference, wherever it is nested). */
export function referencesIn(value: unknown, found: string[] = []): string[] {
  if (Array.isArray(value)) {
    for (const item of value) referencesIn(item, found);
  } else if (typeof value === 'object' && value !== null) {
    // for...in, not Object.entries: every element of every entry passes here, and a pair array per property added up.
    for (const name in value) {
      const child = (value as Record<string, unknown>)[name];
      if (name === 'reference' && typeof child === 'string') found.push(child);
      else if (typeof child === 'object') referencesIn(child, found);
    }
  }
  return found;
}

/** Replaces `reference` strings in place where `replacement` has one. */
export function rewriteReferences(value: unknown, replacement: (reference: string) => string | undefined): void {
  if (Array.isArray(value)) {
    for (const item of value) rewriteReferences(item, replacement);
  } else if (typeof value === 'object' && value !== null) {
    const object = value as Record<string, unknown>;
    for (const name in object) {
      const child = object[name];
      if (name === 'reference' && typeof child === 'string') {
        const replaced = replacement(child);
        if (replaced !== undefined) object[name] = replaced;
      } else if (typeof child === 'object') rewriteReferences(child, replacement);
    }
  }
}
