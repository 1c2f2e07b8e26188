import type { HistoryQuery } from '../port.js';

/** History listings in SQL; values never enter the SQL text. */

export function compileHistoryFilter(query: Omit<HistoryQuery, 'limit'>): { where: string; params: unknown[] } {
  const where: string[] = [];
  const params: unknown[] = [];
  if (query.resourceType !== undefined) {
    where.push('resource_type = ?');
    params.push(query.resourceType);
  } else if (query.withoutTypes?.length) {
    where.push(`resource_type NOT IN (${query.withoutTypes.map(() => '?').join(', ')})`);
    params.push(...query.withoutTypes);
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
