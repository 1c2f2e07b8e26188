import type { SearchCriterion } from '../../store/port.js';
import { FhirError } from '../outcome.js';

/**
 * What one search may ask of the store, so that a long list is a 400 naming the parameter
 * rather than seconds of work or a store's limit reached. Two costs differ by orders of
 * magnitude: a value looked up in a list (codes of one system, ids, references; a ValueSet's
 * codes for :in) is an index seek, where each other comparison (a date's bounds, a number's,
 * a string's prefix) is a term the store weighs one by one (SQLite's preparation of a
 * statement grows with the square of its bound terms: 2,000 dates took 2 s).
 */
export interface SearchCostLimits {
  /** Selection parameters, each repetition counting (on MongoDB each is a query of its own). */
  maxParameters: number;
  /** Comparisons of the index with a value of the search, a whole list counting one. */
  maxComparisons: number;
  /** Values of lists: codes, ids and references looked up, the codes of ValueSets among them. */
  maxListValues: number;
}

export const DEFAULT_SEARCH_COST_LIMITS: SearchCostLimits = { maxParameters: 100, maxComparisons: 500, maxListValues: 50_000 };

interface Cost {
  comparisons: number;
  listValues: number;
}

function add(a: Cost, b: Cost): Cost {
  return { comparisons: a.comparisons + b.comparisons, listValues: a.listValues + b.listValues };
}

const ONE: Cost = { comparisons: 1, listValues: 0 };

function costOfAll(criteria: SearchCriterion[]): Cost {
  return criteria.reduce((sum, c) => add(sum, costOf(c)), { comparisons: 0, listValues: 0 });
}

export function costOf(criterion: SearchCriterion): Cost {
  switch (criterion.kind) {
    case 'entry': {
      // Distinct values: a ValueSet's codes are listed twice, with their system and without (see inValueSet).
      const listed = new Set<string>();
      let comparisons = 0;
      for (const tests of criterion.anyOf) {
        for (const test of tests) {
          comparisons++;
          if (test.op === 'in') for (const value of test.value) listed.add(value);
        }
      }
      return { comparisons, listValues: listed.size };
    }
    case 'id':
      return { comparisons: 1, listValues: criterion.ids.length };
    case 'patient':
      return { comparisons: 1, listValues: criterion.ids.length };
    case 'lastUpdated':
      return { comparisons: Math.max(1, criterion.tests.length), listValues: 0 };
    case 'not':
      return costOf(criterion.criterion);
    case 'or':
      return criterion.anyOf.reduce((sum, all) => add(sum, costOfAll(all)), { comparisons: 0, listValues: 0 });
    case 'references':
    case 'referencedBy':
      return add(ONE, costOfAll(criterion.where));
    default:
      return ONE;
  }
}

const tooCostly = (diagnostics: string, name: string) => FhirError.of(400, 'too-costly', diagnostics, [name]);

/** The running cost of one search's parameters, checked against the limits as each is added. */
export class SearchBudget {
  private parameters = 0;
  private spent: Cost = { comparisons: 0, listValues: 0 };

  constructor(private readonly limits: SearchCostLimits) {}

  /** Throws a 400 too-costly naming `name` when its criterion takes the search over a limit. */
  add(name: string, criterion: SearchCriterion): void {
    const { maxParameters, maxComparisons, maxListValues } = this.limits;
    if (++this.parameters > maxParameters) {
      throw tooCostly(`Parameter '${name}': a search may have at most ${maxParameters} parameters (each repetition counting)`, name);
    }
    this.spent = add(this.spent, costOf(criterion));
    if (this.spent.comparisons > maxComparisons) {
      throw tooCostly(
        `Parameter '${name}': a search may compare at most ${maxComparisons} values one by one (dates, numbers, quantities and strings are; codes, ids and references are looked up as lists)`,
        name,
      );
    }
    if (this.spent.listValues > maxListValues) {
      throw tooCostly(`Parameter '${name}': a search may look up at most ${maxListValues} codes, ids and references (a ValueSet named by :in counting its codes)`, name);
    }
  }
}
