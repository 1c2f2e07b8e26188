import { isResourceType } from '../definitions.js';
import { resourceShape, type LinkShape, type LinkSlot } from './link-elements.js';

/**
 * The links inside a bundle's resources that the server resolves: placeholders (urn:uuid:,
 * urn:oid:) and conditional references (Patient?identifier=…).
 */

export const isPlaceholder = (reference: string): boolean => reference.startsWith('urn:uuid:') || reference.startsWith('urn:oid:');

/** `Type?criteria` with a known type: resolved by search to its one match. */
export function conditionalReference(reference: string): { type: string; query: string } | undefined {
  const at = reference.indexOf('?');
  if (at <= 0) return undefined;
  const type = reference.slice(0, at);
  return isResourceType(type) ? { type, query: reference.slice(at + 1) } : undefined;
}

/**
 * A string in a resource that may need replacing, and where it is (so it is replaced without
 * walking the resource again): a Reference.reference that is a placeholder or conditional, a
 * uri or url that is a placeholder, or a narrative that may link to one.
 */
export interface Link {
  kind: 'reference' | 'uri' | 'narrative';
  holder: Record<string, unknown> | unknown[];
  key: string | number;
  value: string;
}

/** Whether a string in this kind of element could be something to resolve. */
function worthResolving(kind: Link['kind'], value: string): boolean {
  if (kind === 'narrative') return value.includes('urn:');
  return isPlaceholder(value) || (kind === 'reference' && value.includes('?'));
}

function visit(holder: Link['holder'], key: string | number, value: unknown, slot: LinkSlot, found: Link[]): void {
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) visit(value, i, value[i], slot, found);
  } else if (typeof value === 'string') {
    if (typeof slot === 'string' && slot !== 'resource' && worthResolving(slot, value)) found.push({ kind: slot, holder, key, value });
  } else if (typeof value === 'object' && value !== null) {
    const shape = slot === 'resource' ? resourceShape(String((value as { resourceType?: unknown }).resourceType)) : typeof slot === 'string' ? undefined : slot;
    if (shape) walk(value as Record<string, unknown>, shape, found);
  }
}

function walk(object: Record<string, unknown>, shape: LinkShape, found: Link[]): void {
  // for...in, not Object.entries: every element of every entry passes here, and a pair array per property added up.
  for (const name in object) {
    const slot = shape.get(name);
    if (slot !== undefined) visit(object, name, object[name], slot, found);
  }
}

/**
 * The links of a resource, by the type of each element (contained and nested resources
 * included). A resource of no known type has none: it fails validation anyway.
 */
export function linksIn(resource: Record<string, unknown>): Link[] {
  const found: Link[] = [];
  const shape = resourceShape(String(resource.resourceType));
  if (shape) walk(resource, shape, found);
  return found;
}

/** Replaces a link's string where it is. */
export function replaceLink(link: Link, value: string): void {
  (link.holder as Record<string | number, unknown>)[link.key] = value;
}

const NARRATIVE_LINK_TAG = /<(a|img)\b[^>]*>/gi;
const LINK_ATTRIBUTE = /(\s(href|src)\s*=\s*)(["'])([^"']*)\3/gi;

/** The narrative with `<a href>` and `<img src>` values replaced where `replacement` has one. */
export function replaceNarrativeLinks(div: string, replacement: (link: string) => string | undefined): string {
  return div.replace(NARRATIVE_LINK_TAG, (tag, element: string) => {
    const attribute = element.toLowerCase() === 'a' ? 'href' : 'src';
    return tag.replace(LINK_ATTRIBUTE, (whole, before: string, name: string, quote: string, link: string) => {
      const replaced = name.toLowerCase() === attribute ? replacement(link) : undefined;
      return replaced === undefined ? whole : `${before}${quote}${replaced}${quote}`;
    });
  });
}
