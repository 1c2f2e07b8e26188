import type { Filter } from 'mongodb';
import type { HistoryQuery } from '../port.js';
import type { VersionDocument } from './documents.js';

/** Newest first; the same order as the cursor comparison below and the history index. */
export const HISTORY_ORDER = { lastUpdated: -1, resourceType: -1, id: -1, versionId: -1 } as const;

export function historyFilter(query: Omit<HistoryQuery, 'limit'>): Filter<VersionDocument> {
  const filter: Filter<VersionDocument> = {};
  if (query.resourceType !== undefined) filter.resourceType = query.resourceType;
  else if (query.withoutTypes?.length) filter.resourceType = { $nin: [...query.withoutTypes] };
  if (query.id !== undefined) filter.id = query.id;
  if (query.since !== undefined || query.notAfter !== undefined) {
    filter.lastUpdated = {
      ...(query.since !== undefined && { $gte: query.since }),
      ...(query.notAfter !== undefined && { $lte: query.notAfter }),
    };
  }
  if (query.after) {
    const { lastUpdated, resourceType, id, versionId } = query.after;
    // Expands the row-value comparison (lastUpdated, resourceType, id, versionId) < cursor.
    filter.$or = [
      { lastUpdated: { $lt: lastUpdated } },
      { lastUpdated, resourceType: { $lt: resourceType } },
      { lastUpdated, resourceType, id: { $lt: id } },
      { lastUpdated, resourceType, id, versionId: { $lt: versionId } },
    ];
  }
  return filter;
}
