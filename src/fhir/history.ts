import type { HistoryCursor, HistoryQuery, ResourceStore } from '../store/port.js';
import type { BodyCodec } from '../store/codec.js';
import { parseInstantLowerBound } from './instant.js';
import { badRequest } from './outcome.js';
import type { PageTokens } from './page-token.js';
import { requireKnownType, requireValidId, type JsonResource } from './resource-input.js';
import type { ReadCheck, VersionedResource } from './resource-service.js';

/** History listings (instance, type, system): newest first, paged by signed cursors. */

export interface HistoryRequest {
  resourceType?: string;
  id?: string;
  /** Query parameters as received. */
  params: Record<string, string | undefined>;
  /**
   * For a caller whose view is checked record by record: the versions it may see. A record's
   * earlier versions may have been another patient's, or readable before it was restricted.
   */
  canSee?: ReadCheck;
  /** Types the caller may not read at all: left out of a system history. */
  hiddenTypes?: readonly string[];
}

export interface HistoryPage {
  entries: VersionedResource[];
  /** Left out when versions are filtered for the caller: the store's count would include the hidden. */
  total?: number;
  /** Parameters that reproduce this listing, for the self and first links. */
  queryParams: Record<string, string>;
  /** The _page token of the next page, if there is one. */
  next?: string;
}

interface Position {
  /** The listing is pinned to what existed when its first page was read. */
  notAfter: number;
  after?: HistoryCursor;
}

export interface HistoryOptions {
  defaultPageSize: number;
  maxPageSize: number;
}

export class HistoryService {
  constructor(
    private readonly store: ResourceStore,
    private readonly codec: BodyCodec,
    private readonly tokens: PageTokens,
    private readonly options: HistoryOptions,
  ) {}

  private pageSize(raw: string | undefined): number {
    if (raw === undefined) return this.options.defaultPageSize;
    if (!/^\d+$/.test(raw)) throw badRequest("Parameter '_count' must be a non-negative integer", ['_count']);
    return Math.min(Number(raw), this.options.maxPageSize);
  }

  async list(request: HistoryRequest): Promise<HistoryPage> {
    const { resourceType, id, params } = request;
    if (resourceType !== undefined) requireKnownType(resourceType);
    if (id !== undefined) requireValidId(id);
    const count = this.pageSize(params._count);
    const queryParams: Record<string, string> = { _count: String(count) };
    const filter: Omit<HistoryQuery, 'limit' | 'after'> = {};
    if (resourceType !== undefined) filter.resourceType = resourceType;
    if (id !== undefined) filter.id = id;
    if (resourceType === undefined && request.hiddenTypes?.length) filter.withoutTypes = request.hiddenTypes;
    if (params._since !== undefined) {
      filter.since = parseInstantLowerBound(params._since, '_since');
      queryParams._since = params._since;
    }
    const queryKey = JSON.stringify([resourceType ?? '', id ?? '', queryParams]);
    const position: Position = params._page
      ? this.tokens.open<Position>(params._page, queryKey)
      : { notAfter: Date.now() };
    filter.notAfter = position.notAfter;

    const rows = await this.store.history({ ...filter, ...(position.after && { after: position.after }), limit: count + 1 });
    const pageRows = rows.slice(0, count);
    const entries: VersionedResource[] = pageRows.map((stored) => ({ stored, ...(stored.body !== undefined && { json: this.codec.decode(stored.body) }) }));
    const { canSee } = request;
    // A deletion shows no content; it stays, as the record's own history the caller may see.
    const visible = canSee ? entries.filter((e) => e.json === undefined || canSee(JSON.parse(e.json) as JsonResource)) : entries;
    const page: HistoryPage = { entries: visible, queryParams };
    if (!canSee) page.total = await this.store.countHistory(filter);
    const last = pageRows[pageRows.length - 1];
    if (rows.length > count && last) {
      const after: HistoryCursor = { lastUpdated: last.lastUpdated, resourceType: last.resourceType, id: last.id, versionId: last.versionId };
      page.next = this.tokens.issue<Position>(queryKey, { notAfter: position.notAfter, after });
    }
    return page;
  }
}
