import type { Criterion, CurrentQuery, HistoryQuery, TokenMatch } from '../port.js';

/** Translates the store-neutral IR to parameterised SQL; values never enter the SQL text. */

interface Fragment {
  sql: string;
  params: unknown[];
}

function tokenMatch(match: TokenMatch): Fragment {
  const parts: string[] = [];
  const params: unknown[] = [];
  if (match.code !== undefined) {
    parts.push('t.code = ?');
    params.push(match.code);
  }
  if (match.system === null) {
    parts.push('t.system IS NULL');
  } else if (match.system !== undefined) {
    parts.push('t.system = ?');
    params.push(match.system);
  }
  return { sql: parts.length ? parts.join(' AND ') : '1', params };
}

function criterion(c: Criterion): Fragment {
  switch (c.kind) {
    case 'id':
      if (c.ids.length === 0) return { sql: '0', params: [] };
      return { sql: `c.id IN (${c.ids.map(() => '?').join(', ')})`, params: [...c.ids] };
    case 'token': {
      if (c.anyOf.length === 0) return { sql: '0', params: [] };
      const alternatives = c.anyOf.map(tokenMatch);
      return {
        sql: `EXISTS (SELECT 1 FROM token_index t
                WHERE t.resource_type = c.resource_type AND t.id = c.id AND t.param = ?
                AND (${alternatives.map((a) => `(${a.sql})`).join(' OR ')}))`,
        params: [c.param, ...alternatives.flatMap((a) => a.params)],
      };
    }
  }
}

export function compileCurrentQuery(query: CurrentQuery): Fragment {
  const where = ['c.resource_type = ?', 'c.deleted = 0'];
  const params: unknown[] = [query.resourceType];
  for (const c of query.where) {
    const f = criterion(c);
    where.push(f.sql);
    params.push(...f.params);
  }
  params.push(query.limit);
  return {
    sql: `SELECT v.* FROM resource_current c
          JOIN resource_version v
            ON v.resource_type = c.resource_type AND v.id = c.id AND v.version_id = c.version_id
          WHERE ${where.join(' AND ')}
          ORDER BY c.id LIMIT ?`,
    params,
  };
}

export function compileHistoryFilter(query: Omit<HistoryQuery, 'limit'>): { where: string; params: unknown[] } {
  const where: string[] = [];
  const params: unknown[] = [];
  if (query.resourceType !== undefined) {
    where.push('resource_type = ?');
    params.push(query.resourceType);
  }
  if (query.id !== undefined) {
    where.push('id = ?');
    params.push(query.id);
  }
  if (query.since !== undefined) {
    where.push('last_updated >= ?');
    params.push(query.since);
  }
  if (query.notAfter !== undefined) {
    where.push('last_updated <= ?');
    params.push(query.notAfter);
  }
  if (query.after) {
    const a = query.after;
    // Row-value comparison: strictly after the cursor in the descending listing order.
    where.push('(last_updated, resource_type, id, version_id) < (?, ?, ?, ?)');
    params.push(a.lastUpdated, a.resourceType, a.id, a.versionId);
  }
  return { where: where.length ? `WHERE ${where.join(' AND ')}` : '', params };
}
