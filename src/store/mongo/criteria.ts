import type { Collection, Document, Filter } from 'mongodb';
import type { FieldTest, SearchCriterion } from '../port.js';
import { resourceKey, slotField, type CurrentDocument, type EntryDocument } from './documents.js';

/**
 * Translates search criteria to a filter on resource_current. Criteria on search entries are
 * joins, which FerretDB 1.x cannot do on the server (no $lookup, no multi-field $elemMatch),
 * so they are resolved first: the matching entries' owners (current version keys) or
 * resources, then a plain $in. Values only ever appear as operands, never as field names.
 */

/** Matches no document (an empty $or is an error, so "false" needs a spelling of its own). */
const NOTHING = { _id: { $in: [] as string[] } };

/** The greatest code point: every string starting with p sorts below p + this. */
const MAX_CHAR = String.fromCodePoint(0x10ffff);

const COMPARE = { eq: '$eq', ne: '$ne', lt: '$lt', le: '$lte', gt: '$gt', ge: '$gte' } as const;

const escapeRegExp = (text: string) => text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

/** One test on one entry, with SQL's meaning: a comparison with an absent value is false. */
function entryTest(test: FieldTest): Document {
  const field = slotField(test.field, test.slot);
  switch (test.op) {
    case 'isNull':
      return { [field]: null };
    case 'notNull':
      return { [field]: { $ne: null } };
    case 'startsWith':
      return { [field]: { $gte: test.value, $lt: test.value + MAX_CHAR } };
    case 'contains':
      return { [field]: { $regex: escapeRegExp(test.value) } };
    case 'in':
      return { [field]: { $in: test.value } };
    case 'ne':
      // $ne alone would also match entries without the field.
      return { [field]: { $nin: [test.value, null] } };
    default:
      return { [field]: { [COMPARE[test.op]]: test.value } };
  }
}

function entryMatch(anyOf: FieldTest[][]): Document {
  if (anyOf.length === 0) return NOTHING;
  return { $or: anyOf.map((tests) => (tests.length ? { $and: tests.map(entryTest) } : {})) };
}

export class CriteriaCompiler {
  constructor(
    private readonly current: Collection<CurrentDocument>,
    private readonly entries: Collection<EntryDocument>,
  ) {}

  /**
   * The AND of `criteria` for current resources of `types`; spreads safely into a filter. With a
   * patient list among them, the entries of their entry criteria are sought for those patients
   * only (or for resources with none or several, whose entries carry no patient): the patient
   * list itself is still tested on resource_current.
   */
  async all(criteria: SearchCriterion[], types: string[]): Promise<Filter<CurrentDocument>> {
    if (criteria.length === 0) return {};
    const patients = criteria.find((c): c is Extract<SearchCriterion, { kind: 'patient' }> => c.kind === 'patient')?.ids;
    return { $and: await Promise.all(criteria.map((criterion) => this.one(criterion, types, patients))) };
  }

  private async one(criterion: SearchCriterion, types: string[], patients?: string[]): Promise<Filter<CurrentDocument>> {
    switch (criterion.kind) {
      case 'id':
        return { id: { $in: criterion.ids } };
      case 'type':
        return { resourceType: { $in: criterion.types } };
      case 'lastUpdated':
        if (criterion.tests.length === 0) return {};
        return { $and: criterion.tests.map((t) => ({ lastUpdated: { [COMPARE[t.op]]: t.value } })) };
      case 'patient':
        return { patients: { $in: criterion.ids } };
      case 'entry': {
        const filter = {
          resourceType: { $in: types },
          param: criterion.param,
          ...(patients && { patient: { $in: [...patients, null] } }),
          ...entryMatch(criterion.anyOf),
        };
        return { versionKey: { $in: await this.owners(filter) } };
      }
      case 'missing': {
        const owners = await this.owners({ resourceType: { $in: types }, param: criterion.param });
        return { versionKey: criterion.missing ? { $nin: owners } : { $in: owners } };
      }
      case 'not':
        return { $nor: [await this.one(criterion.criterion, types)] };
      case 'or':
        if (criterion.anyOf.length === 0) return NOTHING;
        return { $or: await Promise.all(criterion.anyOf.map((all) => this.all(all, types))) };
      case 'references': {
        const targets = await this.current
          .find(await this.currentOf(criterion.targetType, criterion.where), { projection: { _id: 0, id: 1 } })
          .toArray();
        const owners = await this.owners({
          resourceType: { $in: types },
          param: criterion.param,
          s0: criterion.targetType,
          v0: { $in: targets.map((t) => t.id) },
        });
        return { versionKey: { $in: owners } };
      }
      case 'referencedBy': {
        const sources = await this.current
          .find(await this.currentOf(criterion.sourceType, criterion.where), { projection: { _id: 0, versionKey: 1 } })
          .toArray();
        const references = await this.entries
          .find(
            { owner: { $in: sources.map((s) => s.versionKey) }, param: criterion.param, s0: { $in: types } },
            { projection: { _id: 0, s0: 1, v0: 1 } },
          )
          .toArray();
        const targets = references.flatMap(({ s0, v0 }) =>
          typeof v0 === 'string' ? [resourceKey(String(s0), v0)] : [],
        );
        return { _id: { $in: [...new Set(targets)] } };
      }
    }
  }

  /** Current, non-deleted resources of one type matching `where`. */
  private async currentOf(resourceType: string, where: SearchCriterion[]): Promise<Filter<CurrentDocument>> {
    return { resourceType, deleted: false, ...(await this.all(where, [resourceType])) };
  }

  /** The owners of entries matching `filter`, whose slot fields are named at run time. */
  private async owners(filter: Document): Promise<string[]> {
    const found = await this.entries
      .find(filter as Filter<EntryDocument>, { projection: { _id: 0, owner: 1 } })
      .toArray();
    return [...new Set(found.map((entry) => entry.owner))];
  }
}
