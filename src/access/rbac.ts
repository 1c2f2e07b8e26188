import { readFileSync } from 'node:fs';
import { RULES } from '../participation/rules.js';
import { SHARABLE_TYPE_CODES, type SharableTypeCode } from './classification.js';

/**
 * Role-based access control: which healthcare professional group may read, and separately
 * upload, each sharable data type. The matrix is data (profiles/rbac-matrix.json), loaded and
 * checked once: every group of profiles/participation.json and every sharable type must be
 * there, with booleans, and upload implies read. A group whose access is not switched on
 * (`enabled: false`, eHealth enables groups in phases) may do nothing.
 */

export interface Rights {
  read: boolean;
  upload: boolean;
}

export interface GroupAccess {
  enabled: boolean;
  access: Readonly<Record<SharableTypeCode, Readonly<Rights>>>;
}

export interface RbacMatrix {
  isEnabled(group: string): boolean;
  mayRead(group: string, type: SharableTypeCode): boolean;
  mayUpload(group: string, type: SharableTypeCode): boolean;
  /** The sharable types a group may read (none when it is not enabled). */
  readableTypes(group: string): SharableTypeCode[];
  /** Types holding no patient's data that every account with clinical access may read. */
  readonly referenceTypes: ReadonlySet<string>;
  /** HCPs (Organization ids) whose accounts are not under restricted control. */
  readonly restrictedControlExempt: ReadonlySet<string>;
}

class MatrixError extends Error {
  constructor(message: string) {
    super(`profiles/rbac-matrix.json: ${message}`);
  }
}

const isRecord = (value: unknown): value is Record<string, unknown> => typeof value === 'object' && value !== null && !Array.isArray(value);

function validate(raw: unknown, groupCodes: readonly string[]): Map<string, GroupAccess> {
  if (!isRecord(raw) || !isRecord(raw.groups)) throw new MatrixError('needs a "groups" object');
  const groups = raw.groups;
  const unknown = Object.keys(groups).filter((code) => !groupCodes.includes(code));
  if (unknown.length > 0) throw new MatrixError(`unknown professional groups: ${unknown.join(', ')}`);
  const types: readonly string[] = SHARABLE_TYPE_CODES;
  const result = new Map<string, GroupAccess>();
  for (const code of groupCodes) {
    const entry = groups[code];
    if (entry === undefined) throw new MatrixError(`professional group "${code}" is missing`);
    if (!isRecord(entry) || typeof entry.enabled !== 'boolean' || !isRecord(entry.access)) {
      throw new MatrixError(`"${code}" needs a boolean "enabled" and an "access" object`);
    }
    const access = entry.access;
    const extra = Object.keys(access).filter((type) => !types.includes(type));
    if (extra.length > 0) throw new MatrixError(`"${code}": unknown sharable types ${extra.join(', ')}`);
    const rights = {} as Record<SharableTypeCode, Readonly<Rights>>;
    for (const type of SHARABLE_TYPE_CODES) {
      const cell = access[type];
      if (cell === undefined) throw new MatrixError(`"${code}": sharable type "${type}" is missing`);
      if (!isRecord(cell) || typeof cell.read !== 'boolean' || typeof cell.upload !== 'boolean') {
        throw new MatrixError(`"${code}" / "${type}": "read" and "upload" must be booleans`);
      }
      if (cell.upload && !cell.read) throw new MatrixError(`"${code}" / "${type}": upload without read`);
      rights[type] = Object.freeze({ read: cell.read, upload: cell.upload });
    }
    result.set(code, Object.freeze({ enabled: entry.enabled, access: Object.freeze(rights) }));
  }
  return result;
}

/** Builds the matrix from its file's content (exported for tests of the validation). */
const stringSet = (raw: Record<string, unknown>, key: string): ReadonlySet<string> => {
  const value = raw[key];
  if (value === undefined) return new Set();
  if (!Array.isArray(value) || !value.every((v) => typeof v === 'string')) throw new MatrixError(`"${key}" must be a list of strings`);
  return new Set(value as string[]);
};

export function createRbacMatrix(raw: unknown, groupCodes: readonly string[] = RULES.professionalGroups.map((group) => group.code)): RbacMatrix {
  const matrix = validate(raw, groupCodes);
  const file = raw as Record<string, unknown>;
  const rights = (group: string, type: SharableTypeCode): Rights | undefined => {
    const entry = matrix.get(group);
    return entry?.enabled ? entry.access[type] : undefined;
  };
  return {
    isEnabled: (group) => matrix.get(group)?.enabled === true,
    mayRead: (group, type) => rights(group, type)?.read === true,
    mayUpload: (group, type) => rights(group, type)?.upload === true,
    readableTypes: (group) => SHARABLE_TYPE_CODES.filter((type) => rights(group, type)?.read === true),
    referenceTypes: stringSet(file, 'referenceTypes'),
    restrictedControlExempt: stringSet(file, 'restrictedControlExempt'),
  };
}

const MATRIX_URL = new URL('../../profiles/rbac-matrix.json', import.meta.url);

/** profiles/rbac-matrix.json, loaded and checked once. */
export const RBAC: RbacMatrix = createRbacMatrix(JSON.parse(readFileSync(MATRIX_URL, 'utf8')));

export const isEnabled = (group: string): boolean => RBAC.isEnabled(group);
export const mayRead = (group: string, type: SharableTypeCode): boolean => RBAC.mayRead(group, type);
export const mayUpload = (group: string, type: SharableTypeCode): boolean => RBAC.mayUpload(group, type);
