/**
 * SQL shapes that stay within SQLite's limits however long the lists a search names: an
 * expression at most 1,000 deep, at most 500 arms in one compound SELECT, at most 32,766 bound
 * variables. Short lists are written exactly as before, so their statements and plans are
 * unchanged; only long ones take another shape.
 */

/** Terms written out flat up to this many: SQLite parses `a OR b OR c …` as a chain as deep as it is long. */
const FLAT_TERMS = 64;

const flat = (terms: string[], op: 'AND' | 'OR') => terms.map((t) => `(${t})`).join(` ${op} `);

function balanced(terms: string[], op: 'AND' | 'OR'): string {
  if (terms.length <= FLAT_TERMS) return flat(terms, op);
  const half = Math.ceil(terms.length / 2);
  return `(${balanced(terms.slice(0, half), op)}) ${op} (${balanced(terms.slice(half), op)})`;
}

/**
 * `terms` joined by AND or OR, each in parentheses, in their order (so their bound values keep
 * theirs). A long list is a balanced tree of shorter ones: 999 codes as a flat OR were
 * "Expression tree is too large". A long AND keeps its first terms as they are (the planner may
 * seek by any of them) and puts the rest in one term behind a unary `+`, which SQLite does not
 * split: it splits a WHERE into its ANDed terms and, pushing them down into a subquery or
 * beside each arm of an OR, chains them back one by one, as deep as they are many.
 */
export function joinTerms(terms: string[], op: 'AND' | 'OR'): string {
  if (terms.length <= FLAT_TERMS || op === 'OR') return balanced(terms, op);
  return `${flat(terms.slice(0, FLAT_TERMS - 1), 'AND')} AND +(${balanced(terms.slice(FLAT_TERMS - 1), 'AND')})`;
}

/** Arms of one compound SELECT at most; SQLite refuses more than 500. */
export const MAX_COMPOUND_ARMS = 250;

/**
 * SELECTs of one column `doc` combined by UNION ALL or INTERSECT (both associative): a long
 * list as compounds of at most MAX_COMPOUND_ARMS arms, nested as subqueries.
 */
export function compoundOf(arms: string[], op: 'UNION ALL' | 'INTERSECT'): string {
  if (arms.length <= MAX_COMPOUND_ARMS) return arms.join(` ${op} `);
  const chunks: string[] = [];
  for (let i = 0; i < arms.length; i += MAX_COMPOUND_ARMS) chunks.push(`SELECT doc FROM (${compoundOf(arms.slice(i, i + MAX_COMPOUND_ARMS), op)})`);
  return compoundOf(chunks, op);
}

const jsonLists = new WeakMap<string[], string>();

/**
 * A list of values to write inside `IN (…)`: up to `inlineAtMost` as placeholders, a longer one
 * as one bound JSON array read by json_each. Its SQL text (so the statement prepared once and
 * cached by it) is then the same however many values, and a list of 30,000 codes takes one
 * variable rather than more than SQLite allows.
 */
export function boundList(values: string[], inlineAtMost: number): { sql: string; params: unknown[] } {
  if (values.length <= inlineAtMost) return { sql: values.map(() => '?').join(', '), params: [...values] };
  let json = jsonLists.get(values);
  if (json === undefined) {
    json = JSON.stringify(values);
    jsonLists.set(values, json);
  }
  return { sql: 'SELECT value FROM json_each(?)', params: [json] };
}

/**
 * Whether `error` is SQLite refusing a statement for its size (too many variables, too deep, too
 * many compound arms, too long) rather than failing to run it: the query asked too much.
 */
export function isStatementTooLarge(error: unknown): boolean {
  if (!(error instanceof Error) || (error as { code?: unknown }).code === undefined) return false;
  return /too many SQL variables|Expression tree is too large|too many terms in compound SELECT|string or blob too big|parser stack overflow|too many arguments on function|at most \d+ tables in a join/.test(error.message);
}
