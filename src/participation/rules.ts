import { readFileSync } from 'node:fs';

/**
 * The participation rules kept as data in profiles/participation.json, and the code systems
 * and identifier systems this server uses for them.
 */

export const EHEALTH = 'https://ehealth.example.hk/fhir';
export const SYSTEMS = {
  ehrNumber: `${EHEALTH}/sid/ehr-number`,
  identityDocument: (code: string) => `${EHEALTH}/sid/${code}`,
  professionalRegistration: (group: string) => `${EHEALTH}/sid/registration/${group}`,
  supportingDocument: `${EHEALTH}/CodeSystem/hcp-supporting-document`,
  establishmentType: `${EHEALTH}/CodeSystem/hcp-establishment-type`,
  professionalGroup: `${EHEALTH}/CodeSystem/professional-group`,
  accountRole: `${EHEALTH}/CodeSystem/account-role`,
  sdmRelationship: `${EHEALTH}/CodeSystem/sdm-relationship`,
  sdmBasis: `${EHEALTH}/CodeSystem/sdm-basis`,
  participationStatus: `${EHEALTH}/StructureDefinition/participation-status`,
} as const;

export const USER_ADMINISTRATOR = 'user-administrator';

/**
 * Dates without a time (birth dates, validity ends, effective dates) are days in the
 * territory's time zone (Hong Kong: UTC+8, no daylight saving), not in UTC.
 */
export const TERRITORY_UTC_OFFSET = '+08:00';
const OFFSET_MS = 8 * 3_600_000;
export const startOfDay = (date: string) => Date.parse(`${date}T00:00:00.000${TERRITORY_UTC_OFFSET}`);
export const endOfDay = (date: string) => Date.parse(`${date}T23:59:59.999${TERRITORY_UTC_OFFSET}`);
/** The territory's calendar date at `now`, as YYYY-MM-DD. */
export const territoryDate = (now: Date) => new Date(now.getTime() + OFFSET_MS).toISOString().slice(0, 10);

interface Coded {
  code: string;
  display: string;
}
export interface IdentityDocumentType extends Coded {
  checkDigit?: 'hkic';
  newbornOnly?: boolean;
}
export interface EstablishmentType extends Coded {
  public?: boolean;
  supportingDocuments: string[];
}
export interface PublicProvider {
  id: string;
  name: string;
  type: string;
  phone: string;
  address: { line: string[]; city: string; country: string };
}

interface RulesFile {
  identityDocuments: IdentityDocumentType[];
  newbornMaxAgeDays: number;
  adultAge: number;
  establishmentTypes: EstablishmentType[];
  supportingDocuments: Coded[];
  professionalGroups: Coded[];
  sdmRelationships: Coded[];
  publicProviders: PublicProvider[];
}

export const RULES = JSON.parse(readFileSync(new URL('../../profiles/participation.json', import.meta.url), 'utf8')) as RulesFile;

const byCode = <T extends Coded>(list: T[]) => new Map(list.map((item) => [item.code, item]));
export const IDENTITY_DOCUMENTS = byCode(RULES.identityDocuments);
export const ESTABLISHMENT_TYPES = byCode(RULES.establishmentTypes);
export const SUPPORTING_DOCUMENTS = byCode(RULES.supportingDocuments);
export const PROFESSIONAL_GROUPS = byCode(RULES.professionalGroups);
export const SDM_RELATIONSHIPS = byCode(RULES.sdmRelationships);

/** The identity-document type an identifier system stands for, if any. */
export function identityDocumentOf(system: string | undefined): IdentityDocumentType | undefined {
  const prefix = `${EHEALTH}/sid/`;
  if (!system?.startsWith(prefix)) return undefined;
  return IDENTITY_DOCUMENTS.get(system.slice(prefix.length));
}
