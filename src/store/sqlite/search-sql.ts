import type { FieldTest, OwnershipRule, SearchCriterion, SearchCursor, SearchQuery, SortSpec } from '../port.js';
import { MAX_COMPOUND_ARMS, boundList, compoundOf, joinTerms } from './sql-limits.js';

/**
 * Translates the search IR to parameterised SQL over resource_current (alias per level) and
 * search_index. Values never enter the SQL text, nor do the codes of (type, parameter) pairs:
 * they are bound, so a shape's statement is prepared once whatever it names.
 */

/** The code of a (resource type, parameter) pair in search_param; one matching nothing when it has none. */
export type CodeOf = (resourceType: string, param: string) => number;

interface Fragment {
  sql: string;
  params: unknown[];
  /**
   * When the fragment selects the resources of a single type by a list of their docs (see
   * `Compiler.owners`): that list, a subquery whose rows are the docs of the matching resources
   * (with repeats). search_index holds the entries of current, non-deleted resources only, so
   * counting its distinct docs needs no look at the resources.
   */
  ids?: Fragment;
  /** The fragment is `c.doc IN (…)`: the rows of `c` can be read by doc (see `Compiler.owners`). */
  byDoc?: boolean;
  /**
   * When the fragment is "not one of a list" for a single type: that list (the docs to leave
   * out, as `ids` above).
   */
  excludes?: Fragment;
}

const COLUMN: Record<FieldTest['field'], string> = { system: 's', value: 'v', text: 't', low: 'l', high: 'h' };
const COMPARE: Record<string, string> = { eq: '=', ne: '<>', lt: '<', le: '<=', gt: '>', ge: '>=' };
/** The greatest code point: every string starting with p sorts below p + this. */
const MAX_CHAR = String.fromCodePoint(0x10ffff);

class Compiler {
  private aliases = 0;

  /**
   * `exhaustive`: every match will be visited (a count, or a page in an order other than the
   * ids'), so a list built once beats a check on each row; otherwise the first rows in id
   * order fill the page and few rows are ever checked.
   */
  constructor(
    private readonly exhaustive: boolean,
    private readonly ownership: OwnershipRule | undefined,
    private readonly codeOf: CodeOf,
    /**
     * The alias whose rows must come in (type, id) order, the page's (a search that stops at
     * its first rows): found by id. Every other level is found by doc (see `owners`).
     */
    private readonly ordered?: string,
  ) {}

  /**
   * `c` is one of the resources of `types` with one of the ids `ids` lists (ids of `c`'s own,
   * or pointers to it). By doc where `c` is found by doc (see `owners`).
   */
  withIds(c: string, ids: Fragment, types: string[]): Fragment {
    if (c === this.ordered) return { sql: `${c}.id IN (${ids.sql})`, params: ids.params };
    const r = this.alias('r');
    return {
      sql: `${c}.doc IN (SELECT ${r}.doc FROM resource_current ${r} WHERE ${r}.resource_type IN (${types.map(() => '?').join(', ')}) AND ${r}.id IN (${ids.sql}))`,
      params: [...types, ...ids.params],
      byDoc: true,
    };
  }

  /**
   * `c` is one of the resources (of `types`) whose docs `docs` lists.
   *
   * Mostly by doc: a look at each listed row by its doc (`typeTest` keeps SQLite from walking
   * every row of the type instead, checking each against the list: without statistics, it takes
   * "of this type" for a few rows). For the rows of a page in (type, id) order (`ordered`), by
   * id, through the docs' rows: SQLite then has the choices it had when entries held ids, the
   * ones that make such a page fast: the ids of a list sorted once and sought in the page's
   * order, so that it stops after its first rows (`c.doc IN (docs)` there: a reference search
   * 90 us -> 2.9 ms on 40,000 Observations). The ids cost a seek per listed doc in
   * resource_current_ids, which entries holding ids did not: about 1.5 us a doc on the busy
   * bench machine (a token page of 2,900 matches 4 -> 9 ms; counts, by doc, got faster).
   */
  owners(c: string, docs: Fragment, types: string[]): Fragment {
    if (c !== this.ordered) return { sql: `${c}.doc IN (${docs.sql})`, params: docs.params, byDoc: true, ...(types.length === 1 && { ids: docs }) };
    const r = this.alias('r');
    const d = this.alias('d');
    const rows = `FROM (${docs.sql}) ${d} CROSS JOIN resource_current ${r} INDEXED BY resource_current_ids WHERE ${r}.doc = ${d}.doc`;
    if (types.length === 1) return { sql: `${c}.id IN (SELECT ${r}.id ${rows})`, params: docs.params, ids: docs };
    return { sql: `(${c}.resource_type, ${c}.id) IN (SELECT ${r}.resource_type, ${r}.id ${rows})`, params: docs.params };
  }

  /**
   * `e`'s entry is of `param` on a resource of one of `types`: its code, or one of the codes of
   * the pair for each type (a doc is of one type, so only its own type's code can match).
   */
  code(param: string, types: string[], e: string, own = false): Fragment {
    const col = `${own ? '+' : ''}${e}.code`;
    if (types.length === 1) return { sql: `${col} = ?`, params: [this.codeOf(types[0]!, param)] };
    if (types.length === 0) return { sql: '0', params: [] };
    return { sql: `${col} IN (${types.map(() => '?').join(', ')})`, params: types.map((type) => this.codeOf(type, param)) };
  }

  /**
   * `c` is not what `inner` selects. A list of docs to leave out is probed by the row's own doc,
   * even on a page in id order: it never drives the search, and the ids behind it cost a seek
   * per listed doc (a doctor's page of one patient's Observations 248 -> 226 us).
   */
  private excluded(c: string, inner: Fragment): Fragment {
    if (!inner.ids) return { sql: `NOT (${inner.sql})`, params: inner.params };
    return { sql: `NOT (${c}.doc IN (${inner.ids.sql}))`, params: inner.ids.params, excludes: inner.ids };
  }

  alias(prefix: string): string {
    return `${prefix}${this.aliases++}`;
  }

  /** `own`: a test on one resource's own entries, found by its key (see `ownEntries`). */
  test(t: FieldTest, e: string, own = false): Fragment {
    const col = `${own ? '+' : ''}${e}.${COLUMN[t.field]}${t.slot}`;
    switch (t.op) {
      case 'isNull':
        return { sql: `${col} IS NULL`, params: [] };
      case 'notNull':
        return { sql: `${col} IS NOT NULL`, params: [] };
      case 'startsWith':
        return { sql: `(${col} >= ? AND ${col} < ?)`, params: [t.value, t.value + MAX_CHAR] };
      case 'contains':
        return { sql: `instr(${col}, ?) > 0`, params: [t.value] };
      case 'in': {
        if (t.value.length === 0) return { sql: '0', params: [] };
        const list = boundList(t.value, INLINE_VALUES);
        return { sql: `${col} IN (${list.sql})`, params: list.params };
      }
      default:
        return { sql: `${col} ${COMPARE[t.op]} ?`, params: [t.value] };
    }
  }

  private entryMatch(param: string, types: string[], anyOf: FieldTest[][], e: string, own = false): Fragment {
    // Tests every alternative shares are hoisted out of the OR, where an index can use them.
    const key = (t: FieldTest) => JSON.stringify(t);
    const shared = anyOf.length > 1 ? sharedTests(anyOf) : [];
    const sharedKeys = new Set(shared.map(key));
    const common = shared.map((t) => this.test(t, e, own));
    // Keyed only when something was hoisted: the keys cost about 25 us of an HCProf's search
    // (its patient and restricted-record criteria are compiled twice each).
    const unshared = sharedKeys.size === 0 ? (tests: FieldTest[]) => tests : (tests: FieldTest[]) => tests.filter((t) => !sharedKeys.has(key(t)));
    const alternatives = anyOf.map((tests) => {
      const parts = unshared(tests).map((t) => this.test(t, e, own));
      return { sql: parts.length ? parts.map((p) => p.sql).join(' AND ') : '1', params: parts.flatMap((p) => p.params) };
    });
    const or = alternatives.length ? joinTerms(alternatives.map((a) => a.sql), 'OR') : '0';
    const code = this.code(param, types, e, own);
    return {
      sql: `${code.sql}${common.map((c) => ` AND ${c.sql}`).join('')} AND (${or})`,
      params: [...code.params, ...common.flatMap((c) => c.params), ...alternatives.flatMap((a) => a.params)],
    };
  }

  /**
   * `c` is the alias of the resource_current row being filtered, and `types` the resource types
   * it can have. Subqueries name those types as values rather than referring to `c`, so they
   * are not correlated: SQLite evaluates each once, through its index, instead of per row.
   */
  criterion(criterion: SearchCriterion, c: string, types: string[]): Fragment {
    switch (criterion.kind) {
      case 'id':
        if (criterion.ids.length === 0) return { sql: '0', params: [] };
        return this.withIds(c, boundList(criterion.ids, INLINE_VALUES), types);
      case 'type':
        if (criterion.types.length === 0) return { sql: '0', params: [] };
        return { sql: `${c}.resource_type IN (${criterion.types.map(() => '?').join(', ')})`, params: [...criterion.types] };
      case 'lastUpdated':
        if (criterion.tests.length === 0) return { sql: '1', params: [] };
        return {
          sql: criterion.tests.map((t) => `${c}.last_updated ${COMPARE[t.op]} ?`).join(' AND '),
          params: criterion.tests.map((t) => t.value),
        };
      case 'entry': {
        const e = this.alias('e');
        if (criterion.filter) {
          // Correlated: a look at this row's own entries (the primary key), no list to build.
          const own = this.entryMatch(criterion.param, types, criterion.anyOf, e, true);
          return { sql: `EXISTS (SELECT 1 FROM search_index ${e} WHERE ${e}.doc = ${c}.doc AND ${own.sql})`, params: own.params };
        }
        if (rangeBounds(criterion.anyOf)) return this.rangeGroup([criterion], c, types);
        if (seeksByValue(criterion.anyOf)) {
          const match = this.entryMatch(criterion.param, types, criterion.anyOf, e);
          return this.owners(c, { sql: `SELECT ${e}.doc FROM search_index ${e} WHERE ${match.sql}`, params: match.params }, types);
        }
        // No value to seek (a system alone, :contains, :text): every index is partial, and the
        // key starts with the doc, so without a branch per index (each read from its code on)
        // SQLite scans every entry of every type (the notification dispatcher's "category
        // system|" search: 400 ms on 100,000 resources).
        const indexed = [(b: string) => `${b}.v0 IS NOT NULL`, (b: string) => `${b}.v0 IS NULL AND ${b}.wc IS NULL`, (b: string) => `${b}.v0 IS NULL AND ${b}.wc IS NOT NULL`];
        const branches = indexed.map((rows, i) => {
          const b = i === 0 ? e : this.alias('e');
          const match = this.entryMatch(criterion.param, types, criterion.anyOf, b);
          return { sql: `SELECT ${b}.doc FROM search_index ${b} WHERE ${match.sql} AND ${rows(b)}`, params: match.params };
        });
        return this.owners(c, { sql: branches.map((f) => f.sql).join(' UNION ALL '), params: branches.flatMap((f) => f.params) }, types);
      }
      case 'missing': {
        const e = this.alias('e');
        const code = this.code(criterion.param, types, e, true);
        const exists = `EXISTS (SELECT 1 FROM search_index ${e} WHERE ${e}.doc = ${c}.doc AND ${code.sql})`;
        return { sql: criterion.missing ? `NOT ${exists}` : exists, params: code.params };
      }
      case 'not':
        return this.excluded(c, this.criterion(criterion.criterion, c, types));
      case 'or': {
        const alternatives = criterion.anyOf.map((all) => this.all(all, c, types));
        if (alternatives.length === 0) return { sql: '0', params: [] };
        if (alternatives.every((a) => a.ids)) {
          // Each alternative selects by its entries (a patient's references through any of
          // several parameters): one list of their owners, one probe per row.
          // A range list starts with its own WITH, which only a subquery may have in a compound.
          const member = (sql: string) => (sql.startsWith('WITH') ? `SELECT doc FROM (${sql})` : sql);
          const ids = { sql: compoundOf(alternatives.map((a) => member(a.ids!.sql)), 'UNION ALL'), params: alternatives.flatMap((a) => a.ids!.params) };
          return this.owners(c, ids, types);
        }
        return { sql: joinTerms(alternatives.map((a) => a.sql), 'OR'), params: alternatives.flatMap((a) => a.params) };
      }
      case 'references': {
        const e = this.alias('e');
        const t = this.alias('t');
        const inner = this.all(criterion.where, t, [criterion.targetType]);
        const code = this.code(criterion.param, types, e);
        // The pointers are the targets' ids (v0), so the targets are listed by id.
        const match = {
          sql: `${code.sql} AND ${e}.s0 = ?
                AND ${e}.v0 IN (SELECT ${t}.id FROM resource_current ${t} WHERE ${typeTest(t, inner)} = ? AND ${t}.deleted = 0 AND ${inner.sql})`,
          params: [...code.params, criterion.targetType, criterion.targetType, ...inner.params],
        };
        const owners = this.owners(c, { sql: `SELECT ${e}.doc FROM search_index ${e} WHERE ${match.sql}`, params: match.params }, types);
        // Listed by the pointers' index: counted on its own, SQLite would scan every entry.
        if (owners.ids) owners.ids = { sql: `SELECT ${e}.doc FROM search_index ${e} INDEXED BY search_index_value WHERE ${match.sql}`, params: match.params };
        return owners;
      }
      case 'patient':
        return this.patientIn(criterion.ids, c, types);
      case 'referencedBy': {
        const e = this.alias('e');
        const s = this.alias('s');
        const inner = this.all(criterion.where, s, [criterion.sourceType]);
        const code = this.code(criterion.param, [criterion.sourceType], e);
        // The pointers (v0) are ids of the resources they point at.
        const pointers = `SELECT ${e}.v0 FROM search_index ${e} WHERE ${code.sql} AND ${e}.s0 = ?
                AND ${e}.doc IN (SELECT ${s}.doc FROM resource_current ${s} WHERE ${typeTest(s, inner)} = ? AND ${s}.deleted = 0 AND ${inner.sql})`;
        // One uncorrelated pointer list per possible type of `c`.
        const perType = types.map((type) => this.withIds(c, { sql: pointers, params: [...code.params, type, criterion.sourceType, ...inner.params] }, [type]));
        if (perType.length === 1) return perType[0]!;
        return {
          sql: perType.length ? `(${perType.map((f) => `(${c}.resource_type = ? AND ${f.sql})`).join(' OR ')})` : '0',
          params: perType.flatMap((f, i) => [types[i], ...f.params]),
        };
      }
    }
  }

  /**
   * Range criteria (dates, numbers, quantities) ANDed on one parameter, e.g. date=ge…&date=lt…:
   * the resources with one entry meeting all of them are found with the bounds of all of them
   * together (a narrow window costs what it finds); those with several range entries of the
   * parameter (m = 1) may meet each criterion with a different entry, and are intersected
   * criterion by criterion.
   */
  private rangeGroup(group: Extract<SearchCriterion, { kind: 'entry' }>[], c: string, types: string[]): Fragment {
    const param = group[0]!.param;
    const perType = types.map((type) => {
      const k = this.alias('k');
      const e = this.alias('e');
      const params: unknown[] = [];
      const code = this.codeOf(type, param);
      // The width classes present for the parameter, one index seek each.
      const classes = `${k}(w) AS (SELECT MIN(wc) FROM search_index WHERE code = ? AND wc IS NOT NULL
          UNION ALL SELECT (SELECT MIN(wc) FROM search_index WHERE code = ? AND wc > ${k}.w) FROM ${k} WHERE ${k}.w IS NOT NULL)`;
      params.push(code, code);
      let sql = `WITH RECURSIVE ${classes} `;
      if (group.length > 1) {
        // Several entries of a resource: each criterion on its own, then the owners of all.
        const each = group.map((criterion) => {
          const x = this.alias('e');
          const bounds = rangeBounds(criterion.anyOf)!;
          const limits = lowLimits(bounds, x, null);
          const match = this.entryMatch(criterion.param, [type], criterion.anyOf, x);
          return {
            sql: `SELECT ${x}.doc FROM search_index ${x} INDEXED BY search_index_multi WHERE ${x}.code = ? AND ${x}.m = 1${limits.sql} AND ${match.sql}`,
            params: [code, ...limits.params, ...match.params],
          };
        });
        sql += `${compoundOf(each.map((f) => f.sql), 'INTERSECT')} UNION ALL `;
        params.push(...each.flatMap((f) => f.params));
      }
      const bounds = group.map((criterion) => rangeBounds(criterion.anyOf)!).reduce(intersectBounds);
      const limits = lowLimits(bounds, e, `${k}.w`);
      const matches = group.map((criterion) => this.entryMatch(criterion.param, [type], criterion.anyOf, e));
      sql += `SELECT ${e}.doc FROM ${k} CROSS JOIN search_index ${e}
          WHERE ${e}.code = ? AND ${e}.wc = ${k}.w${limits.sql} AND ${matches.length === 1 ? matches[0]!.sql : joinTerms(matches.map((f) => f.sql), 'AND')}`;
      params.push(code, ...limits.params, ...matches.flatMap((f) => f.params));
      return { ...this.owners(c, { sql, params }, [type]), type };
    });
    if (perType.length === 1) return perType[0]!;
    if (perType.length === 0) return { sql: '0', params: [] };
    return {
      sql: `(${perType.map((f) => `(${c}.resource_type = ? AND ${f.sql})`).join(' OR ')})`,
      params: perType.flatMap((f) => [f.type, ...f.params]),
    };
  }

  /**
   * The resources of `types` that belong to one of `patients`: those of one patient by the
   * entry of their compartment reference, which names it and carries it (v0 = patient, one
   * seek per parameter and patient in the value index); those of several from resource_patient.
   */
  private patientIn(patients: string[], c: string, types: string[]): Fragment {
    if (patients.length === 0 || types.length === 0) return { sql: '0', params: [] };
    const rule = this.ownership;
    if (!rule) throw new Error('a search by patient needs the rule that says whose record a resource is (SqliteStoreOptions.ownership)');
    const list = idList(patients);
    // The owners themselves are a list of ids (not of current resources: no `ids` to count);
    // the others are listed by doc.
    const perType = types.map((type) => {
      if (type === rule.ownerType) return { type, column: 'id', sql: list.sql, params: list.params };
      const params = rule.params(type);
      if (params.length === 0) return { type, column: 'doc', sql: 'SELECT NULL AS doc WHERE 0', params: [] };
      const e = this.alias('e');
      const o = this.alias('o');
      const codes = params.map((param) => this.codeOf(type, param));
      return {
        type,
        column: 'doc',
        sql: `SELECT ${e}.doc FROM search_index ${e} INDEXED BY search_index_value
              WHERE ${e}.code IN (${codes.map(() => '?').join(', ')}) AND ${e}.v0 IN (${list.sql}) AND ${e}.patient = ${e}.v0 AND ${e}.s0 = ?
              UNION ALL SELECT ${o}.doc FROM resource_patient ${o} WHERE ${o}.resource_type = ? AND ${o}.patient IN (${list.sql})`,
        params: [...codes, ...list.params, rule.ownerType, type, ...list.params],
      };
    });
    const each = perType.map((f) => (f.column === 'id' ? this.withIds(c, f, [f.type]) : this.owners(c, f, [f.type])));
    if (each.length === 1) return each[0]!;
    return {
      sql: `(${each.map((f) => `(${c}.resource_type = ? AND ${f.sql})`).join(' OR ')})`,
      params: perType.flatMap((f, i) => [f.type, ...each[i]!.params]),
    };
  }

  /**
   * An entry criterion and "belongs to one of `patients`" together: the entries of resources
   * with one patient are sought by value then patient in the value index; those with none or
   * several (their entries carry no patient, rare) are checked against resource_patient.
   */
  private entryOfPatients(criterion: Extract<SearchCriterion, { kind: 'entry' }>, patients: string[], c: string, types: string[]): Fragment {
    if (patients.length === 0) return { sql: '0', params: [] };
    const list = idList(patients);
    const branch = (single: boolean) => {
      const e = this.alias('e');
      const o = this.alias('o');
      const match = this.entryMatch(criterion.param, types, criterion.anyOf, e);
      const owner = single
        ? { sql: `${e}.patient IN (${list.sql})`, params: list.params }
        : {
            sql: `${e}.patient IS NULL AND EXISTS (SELECT 1 FROM resource_patient ${o} WHERE ${o}.doc = ${e}.doc AND ${o}.patient IN (${list.sql}))`,
            params: list.params,
          };
      return {
        sql: `SELECT ${e}.doc FROM search_index ${e} INDEXED BY search_index_value WHERE ${match.sql} AND ${owner.sql}`,
        params: [...match.params, ...owner.params],
      };
    };
    const single = branch(true);
    const several = branch(false);
    const ids = { sql: `${single.sql} UNION ALL ${several.sql}`, params: [...single.params, ...several.params] };
    return this.owners(c, ids, types);
  }

  all(criteria: SearchCriterion[], c: string, types: string[]): Fragment {
    const parts = this.parts(criteria, c, types);
    if (parts.length === 1) return { ...parts[0]!, sql: `(${parts[0]!.sql})` };
    return {
      sql: parts.length ? joinTerms(parts.map((p) => p.sql), 'AND') : '1',
      params: parts.flatMap((p) => p.params),
      ...(parts.some((p) => p.byDoc) && { byDoc: true }),
    };
  }

  /**
   * The criteria as fragments to AND, range criteria on one parameter merged into one, and a
   * patient list joined to an entry criterion that seeks by value where there is one.
   */
  parts(criteria: SearchCriterion[], c: string, types: string[]): Fragment[] {
    const parts: Fragment[] = [];
    const found = criteria.find((x): x is Extract<SearchCriterion, { kind: 'patient' }> => x.kind === 'patient');
    // Not for the owners themselves (Patients), whose entries carry no patient: their ids are the list.
    const patients = found && this.ownership && !types.includes(this.ownership.ownerType) ? found : undefined;
    const joined = patients && criteria.find((x): x is Extract<SearchCriterion, { kind: 'entry' }> => x.kind === 'entry' && !x.filter && seeksByValue(x.anyOf));
    if (patients && joined) {
      parts.push(this.entryOfPatients(joined, patients.ids, c, types));
      criteria = criteria.filter((x) => x !== patients && x !== joined);
    }
    const groups = new Map<string, Extract<SearchCriterion, { kind: 'entry' }>[]>();
    for (const x of criteria) {
      if (x.kind === 'entry' && !x.filter && rangeBounds(x.anyOf)) {
        const group = groups.get(x.param);
        if (group) group.push(x);
        else groups.set(x.param, [x]);
      }
    }
    const negated: { at: number; entry: Extract<SearchCriterion, { kind: 'entry' }> }[] = [];
    for (const x of criteria) {
      const group = x.kind === 'entry' ? groups.get(x.param) : undefined;
      const listFirst = patients && (this.exhaustive || patients.ids.length <= FEW_PATIENTS);
      if (listFirst && x.kind === 'not' && x.criterion.kind === 'entry' && seeksByValue(x.criterion.anyOf)) {
        // Beside a patient list, NOT "an entry of these patients" means NOT "an entry": the
        // list to exclude is those patients' (their restricted records: a few, found once),
        // cheaper than a look at the entries of every row (two seeks a row; a count of 600
        // rows 1.3 -> 0.9 ms) when every row is visited, or when the patients are so few that
        // their list costs less than the rows of one page.
        parts.push(this.excluded(c, this.entryOfPatients(x.criterion, patients!.ids, c, types)));
      } else if (!group?.includes(x as Extract<SearchCriterion, { kind: 'entry' }>)) {
        if (x.kind === 'not' && x.criterion.kind === 'entry' && !x.criterion.filter) negated.push({ at: parts.length, entry: x.criterion });
        parts.push(this.criterion(x, c, types));
      } else if (group[0] === x) parts.push(this.rangeGroup(group, c, types));
    }
    // A negated entry test never selects: it is checked on each row the others select. When
    // one of them selects by its entries, a look at the row's own entries costs what those
    // rows are, where a list of every entry to exclude costs what that list is (every
    // restricted record, to show a patient's 70 Observations).
    if (negated.length && parts.some((p) => p.ids)) {
      for (const { at, entry } of negated) parts[at] = this.criterion({ kind: 'not', criterion: { ...entry, filter: true } }, c, types);
    }
    return parts;
  }
}

/**
 * Patient lists this short are sought outright for what to exclude even for one page: a seek
 * per patient and value, against a look at the entries of each of the page's rows.
 */
const FEW_PATIENTS = 4;

/** Whether the criterion tests a column of the resource's own row (other than its type, id and doc). */
function readsResourceRow(criterion: SearchCriterion): boolean {
  switch (criterion.kind) {
    case 'lastUpdated':
      return true;
    case 'not':
      return readsResourceRow(criterion.criterion);
    case 'or':
      return criterion.anyOf.some((all) => all.some(readsResourceRow));
    default:
      return false;
  }
}

/**
 * A list of ids, to write inside `IN (…)`. A long list is one bound JSON parameter:
 * the SQL text (so the statement prepared once and cached by it) is the same however many ids,
 * and no text of hundreds of placeholders is built and hashed per query. A short one (the
 * patient a doctor names) is written out: a table-valued function costs more to set up than
 * those few values (a doctor's count of one patient's Observations 397 -> 236 us).
 */
function idList(ids: string[]): Fragment {
  return boundList(ids, INLINE_IDS);
}

const INLINE_IDS = 4;

/**
 * Values of an `in` test or an id list written out up to this many (the readable sharable
 * types of an account, a page's ids for _revinclude); longer lists, a ValueSet's codes, are one
 * bound JSON value (see boundList).
 */
const INLINE_VALUES = 16;

/** Whether every alternative names the entry's value (first component) outright: an index seek, not a scan. */
function seeksByValue(anyOf: FieldTest[][]): boolean {
  return anyOf.length > 0 && anyOf.every((tests) => tests.some((t) => t.slot === 0 && t.field === 'value' && (t.op === 'eq' || t.op === 'in')));
}

/** The tests every alternative has. */
function sharedTests(anyOf: FieldTest[][]): FieldTest[] {
  if (anyOf.length <= 1) return anyOf[0] ?? [];
  const others = anyOf.slice(1).map((alt) => new Set(alt.map((t) => JSON.stringify(t))));
  return anyOf[0]!.filter((t) => {
    const key = JSON.stringify(t);
    return others.every((alt) => alt.has(key));
  });
}

/**
 * What every matching entry's first component must have, as limits on its low and high ends
 * (lower and upper limits, each list to be met in full; `strict` limits are not
 * distinguished, they only narrow a scan). Undefined when nothing limits them: then the
 * criterion is not a range criterion.
 */
interface Bounds {
  lowAtLeast: number[];
  lowAtMost: number[];
  highAtLeast: number[];
  highAtMost: number[];
}

function rangeBounds(anyOf: FieldTest[][]): Bounds | undefined {
  const b: Bounds = { lowAtLeast: [], lowAtMost: [], highAtLeast: [], highAtMost: [] };
  let any = false;
  for (const t of sharedTests(anyOf)) {
    if (t.slot !== 0 || (t.field !== 'low' && t.field !== 'high')) continue;
    if (t.op !== 'eq' && t.op !== 'lt' && t.op !== 'le' && t.op !== 'gt' && t.op !== 'ge') continue;
    if (typeof t.value !== 'number' || !Number.isFinite(t.value)) continue;
    any = true;
    const low = t.field === 'low';
    if (t.op === 'eq' || t.op === 'gt' || t.op === 'ge') (low ? b.lowAtLeast : b.highAtLeast).push(t.value);
    if (t.op === 'eq' || t.op === 'lt' || t.op === 'le') (low ? b.lowAtMost : b.highAtMost).push(t.value);
  }
  return any ? b : undefined;
}

function intersectBounds(a: Bounds, b: Bounds): Bounds {
  return {
    lowAtLeast: [...a.lowAtLeast, ...b.lowAtLeast],
    lowAtMost: [...a.lowAtMost, ...b.lowAtMost],
    highAtLeast: [...a.highAtLeast, ...b.highAtLeast],
    highAtMost: [...a.highAtMost, ...b.highAtMost],
  };
}

/**
 * The bounds as a range of `e.l0`, the indexed column. With the entry's width class `width`
 * (an SQL expression), high >= A gives low >= A - width and high <= B gives low <= B + width;
 * without it (null) only the limits on low itself are used.
 */
function lowLimits(b: Bounds, e: string, width: string | null): Fragment {
  const lower: Fragment[] = [];
  const upper: Fragment[] = [];
  if (b.lowAtLeast.length) lower.push({ sql: '?', params: [Math.max(...b.lowAtLeast)] });
  if (b.lowAtMost.length) upper.push({ sql: '?', params: [Math.min(...b.lowAtMost)] });
  if (width !== null && b.highAtLeast.length) lower.push({ sql: `? - ${width}`, params: [Math.max(...b.highAtLeast)] });
  if (width !== null && b.highAtMost.length) upper.push({ sql: `? + ${width}`, params: [Math.min(...b.highAtMost)] });
  const side = (parts: Fragment[], op: string, fn: string): Fragment => {
    if (parts.length === 0) return { sql: '', params: [] };
    const value = parts.length === 1 ? parts[0]!.sql : `${fn}(${parts.map((p) => p.sql).join(', ')})`;
    return { sql: ` AND ${e}.l0 ${op} ${value}`, params: parts.flatMap((p) => p.params) };
  };
  const lo = side(lower, '>=', 'max');
  const hi = side(upper, '<=', 'min');
  return { sql: lo.sql + hi.sql, params: [...lo.params, ...hi.params] };
}

/**
 * The column `c.resource_type` to test, unusable for an index when `criteria` list the rows by
 * doc: they are read by doc then, as "of this type" would otherwise look to SQLite like the
 * narrower choice (see Compiler.owners).
 */
function typeTest(c: string, criteria: Fragment): string {
  return `${criteria.byDoc ? '+' : ''}${c}.resource_type`;
}

function sortKey(spec: SortSpec, c: string): Fragment {
  if (spec.param === '_id') return { sql: `${c}.id`, params: [] };
  if (spec.param === '_lastUpdated') return { sql: `${c}.last_updated`, params: [] };
  // sort_keys is {"param": [min, max]}: ascending sorts by the lowest value, descending by the highest.
  return { sql: `json_extract(${c}.sort_keys, ?)`, params: [`$."${spec.param}"[${spec.descending ? 1 : 0}]`] };
}

/**
 * Rows strictly after (or before) the cursor in the order: sort keys with missing values
 * last in either direction, then resource type and id ascending.
 */
function cursorCondition(keys: Fragment[], sort: SortSpec[], cursor: SearchCursor, forward: boolean): Fragment {
  const alternatives: Fragment[] = [];
  const equalSoFar: Fragment[] = [];
  keys.forEach((key, i) => {
    const value = cursor.keys[i] ?? null;
    const descending = sort[i]!.descending;
    const beyond = forward !== descending ? '>' : '<';
    let step: Fragment;
    if (forward) {
      step = value === null ? { sql: '0', params: [] } : { sql: `(${key.sql} ${beyond} ? OR ${key.sql} IS NULL)`, params: [...key.params, value, ...key.params] };
    } else {
      step = value === null ? { sql: `${key.sql} IS NOT NULL`, params: [...key.params] } : { sql: `${key.sql} ${beyond} ?`, params: [...key.params, value] };
    }
    alternatives.push({ sql: [...equalSoFar.map((f) => f.sql), step.sql].join(' AND '), params: [...equalSoFar.flatMap((f) => f.params), ...step.params] });
    equalSoFar.push(value === null ? { sql: `${key.sql} IS NULL`, params: [...key.params] } : { sql: `${key.sql} = ?`, params: [...key.params, value] });
  });
  const tie = forward ? '>' : '<';
  alternatives.push({
    sql: [...equalSoFar.map((f) => f.sql), `(c.resource_type, c.id) ${tie} (?, ?)`].join(' AND '),
    params: [...equalSoFar.flatMap((f) => f.params), cursor.resourceType, cursor.id],
  });
  return { sql: alternatives.map((a) => `(${a.sql})`).join(' OR '), params: alternatives.flatMap((a) => a.params) };
}

function baseWhere(query: Pick<SearchQuery, 'resourceTypes' | 'where'>, compiler: Compiler): Fragment {
  const types = query.resourceTypes;
  const criteria = compiler.all(query.where, 'c', types);
  return {
    sql: `${typeTest('c', criteria)} IN (${types.map(() => '?').join(', ')}) AND c.deleted = 0 AND ${criteria.sql}`,
    params: [...types, ...criteria.params],
  };
}

export function compileSearch(query: SearchQuery, ownership: OwnershipRule | undefined, codeOf: CodeOf): Fragment & { keyCount: number } {
  const exhaustive = query.sort.length > 0;
  const compiler = new Compiler(exhaustive, ownership, codeOf, exhaustive ? undefined : 'c');
  const where = baseWhere(query, compiler);
  const keys = query.sort.map((s) => sortKey(s, 'c'));
  const conditions = [where];
  const forward = query.before === undefined;
  const cursor = query.before ?? query.after;
  if (cursor) conditions.push(cursorCondition(keys, query.sort, cursor, forward));
  // Going backwards: read in reverse order; the caller restores the query's order.
  const order = (key: (i: number) => string, type: string, id: string) => {
    const terms = keys.map((_, i) => {
      const descending = query.sort[i]!.descending !== !forward;
      return `(${key(i)}) IS NULL ${forward ? 'ASC' : 'DESC'}, ${key(i)} ${descending ? 'DESC' : 'ASC'}`;
    });
    terms.push(`${type} ${forward ? 'ASC' : 'DESC'}`, `${id} ${forward ? 'ASC' : 'DESC'}`);
    return terms.join(', ');
  };
  const orderParams = keys.flatMap((k) => [...k.params, ...k.params]);
  const selectKeys = keys.map((k, i) => `, ${k.sql} AS k${i}`).join('');
  // The page's rows are chosen first and their bodies read after: joined before the LIMIT,
  // SQLite may read (and sort) the body of every match (a doctor's Condition page, 463 matches
  // for 21 rows: 524 -> 389 us).
  return {
    sql: `SELECT v.*${keys.map((_, i) => `, c.k${i}`).join('')}
          FROM (SELECT c.resource_type, c.id, c.version_id${selectKeys}
                FROM resource_current c
                WHERE ${conditions.map((f) => `(${f.sql})`).join(' AND ')}
                ORDER BY ${order((i) => keys[i]!.sql, 'c.resource_type', 'c.id')} LIMIT ?) c
          JOIN resource_version v ON v.resource_type = c.resource_type AND v.id = c.id AND v.version_id = c.version_id
          ORDER BY ${order((i) => `c.k${i}`, 'c.resource_type', 'c.id')}`,
    params: [...keys.flatMap((k) => k.params), ...conditions.flatMap((f) => f.params), ...orderParams, query.limit],
    keyCount: keys.length,
  };
}

export function compileCount(query: Pick<SearchQuery, 'resourceTypes' | 'where'>, ownership: OwnershipRule | undefined, codeOf: CodeOf): Fragment {
  const types = query.resourceTypes;
  if (types.length === 1 && !query.where.some(readsResourceRow)) {
    // A criterion selecting by its entries: count the distinct owners of those entries that
    // pass the others, without a look at resource_current (search_index holds entries of
    // current, non-deleted resources only; the others find it by doc too).
    const parts = new Compiler(true, ownership, codeOf).parts(query.where, 'c', types);
    const first = parts.findIndex((p) => p.ids);
    if (first >= 0 && parts.some((p) => p.excludes) && parts.every((p) => p.ids || p.excludes)) {
      // Lists in and lists out (a doctor's patients' records, less their restricted ones): one
      // set expression, whose EXCEPT also makes the owners distinct (463 Conditions of 99
      // patients: 1,005 -> 422 us, against a DISTINCT then a probe of the list out per owner).
      const member = (f: Fragment) => `SELECT doc FROM (${f.sql})`;
      const kept = parts.filter((p) => p.ids).map((p) => p.ids!);
      const left = parts.filter((p) => p.excludes).map((p) => p.excludes!);
      const params = [...kept.flatMap((f) => f.params), ...left.flatMap((f) => f.params)];
      if (kept.length + left.length <= MAX_COMPOUND_ARMS) {
        return { sql: `SELECT COUNT(*) AS n FROM (${kept.map(member).join(' INTERSECT ')} EXCEPT ${left.map(member).join(' EXCEPT ')})`, params };
      }
      // Too many arms for one compound: the lists in, less the union of the lists out.
      const within = `SELECT doc FROM (${compoundOf(kept.map(member), 'INTERSECT')})`;
      return { sql: `SELECT COUNT(*) AS n FROM (${within} EXCEPT SELECT doc FROM (${compoundOf(left.map(member), 'UNION ALL')}))`, params };
    }
    if (first >= 0) {
      const ids = parts[first]!.ids!;
      // Materialised: planned on its own, the entry lookup takes its index; planned with the
      // DISTINCT, SQLite may prefer to walk every entry in doc order instead.
      const entries = `WITH m AS MATERIALIZED (${ids.sql})`;
      if (parts.length === 1) return { sql: `${entries} SELECT COUNT(DISTINCT doc) AS n FROM m`, params: ids.params };
      const rest = parts.filter((_, i) => i !== first);
      const where = joinTerms(rest.map((p) => p.sql), 'AND');
      return {
        sql: `${entries} SELECT COUNT(*) AS n FROM (SELECT DISTINCT ? AS resource_type, doc FROM m) c WHERE ${where}`,
        params: [...ids.params, types[0], ...rest.flatMap((p) => p.params)],
      };
    }
  }
  const where = baseWhere(query, new Compiler(true, ownership, codeOf));
  return { sql: `SELECT COUNT(*) AS n FROM resource_current c WHERE ${where.sql}`, params: where.params };
}
