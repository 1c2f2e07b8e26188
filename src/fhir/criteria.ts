import type { Criterion, TokenMatch } from '../store/port.js';
import { badRequest } from './outcome.js';

/**
 * Parses the search criteria of conditional operations (If-None-Exist, conditional update
 * and delete). Until the full search lands only `_id` and `identifier` are understood; any
 * other parameter is refused rather than ignored, because ignoring a criterion of a
 * conditional delete would widen what it deletes.
 */

export const CONDITIONAL_PARAMETERS = ['_id', 'identifier'] as const;

/** Parameters that shape the response rather than select resources. */
const FORMAT_PARAMETERS = new Set(['_format', '_pretty']);

/** Splits on separators not escaped with a backslash; the parts keep their escapes. */
function splitUnescaped(value: string, separator: string): string[] {
  const parts: string[] = [];
  let current = '';
  for (let i = 0; i < value.length; i++) {
    const ch = value[i]!;
    if (ch === '\\' && i + 1 < value.length) {
      current += ch + value[++i]!;
    } else if (ch === separator) {
      parts.push(current);
      current = '';
    } else {
      current += ch;
    }
  }
  parts.push(current);
  return parts;
}

/** Removes the escaping backslash the specification puts before a backslash, comma, dollar or bar. */
function unescape(value: string): string {
  return value.replace(/\\([\\,$|])/g, '$1');
}

const splitOr = (value: string) => splitUnescaped(value, ',');

export function parseToken(value: string, param: string): TokenMatch {
  const bar = splitUnescaped(value, '|').map(unescape);
  if (bar.length === 1) {
    if (!bar[0]) throw badRequest(`Parameter '${param}' has an empty value`, [param]);
    return { code: bar[0] };
  }
  if (bar.length > 2) throw badRequest(`Parameter '${param}' has more than one unescaped '|'`, [param]);
  const [system, code] = bar as [string, string];
  if (!system && !code) throw badRequest(`Parameter '${param}' has an empty value`, [param]);
  const match: TokenMatch = { system: system === '' ? null : system };
  if (code !== '') match.code = code;
  return match;
}

/** Criteria from a query string such as `identifier=http://x|123&_id=a,b`. */
export function parseConditionalCriteria(query: string): Criterion[] {
  const params = new URLSearchParams(query.startsWith('?') ? query.slice(1) : query);
  const criteria: Criterion[] = [];
  for (const [name, value] of params) {
    if (FORMAT_PARAMETERS.has(name)) continue;
    if (name === '_id') {
      const ids = splitOr(value).map(unescape).filter(Boolean);
      if (ids.length === 0) throw badRequest("Parameter '_id' has an empty value", ['_id']);
      criteria.push({ kind: 'id', ids });
    } else if (name === 'identifier') {
      criteria.push({ kind: 'token', param: 'identifier', anyOf: splitOr(value).map((v) => parseToken(v, name)) });
    } else {
      throw badRequest(
        `Conditional operations support only the parameters ${CONDITIONAL_PARAMETERS.join(', ')}; '${name}' is not supported`,
        [name],
      );
    }
  }
  if (criteria.length === 0) throw badRequest('A conditional operation needs at least one search criterion');
  return criteria;
}
