import type { Identifier } from 'fhir/r4.js';
import type { ResourceIndex, TokenIndexEntry } from '../store/port.js';

/**
 * The search values stored beside a resource when it is written. For now the identifier
 * token, which conditional operations need; the search issue extends this to every
 * SearchParameter of the specification.
 */
export function indexResource(resource: Record<string, unknown>): ResourceIndex {
  const tokens: TokenIndexEntry[] = [];
  const raw = resource.identifier;
  const identifiers = (Array.isArray(raw) ? raw : raw ? [raw] : []) as Identifier[];
  for (const identifier of identifiers) {
    if (typeof identifier?.value !== 'string') continue;
    tokens.push({ param: 'identifier', system: identifier.system ?? null, code: identifier.value });
  }
  return { tokens };
}
