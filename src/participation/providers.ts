import type { Bundle, Location, Organization, Parameters } from 'fhir/r4.js';
import type { Principal } from '../auth/principal.js';
import { forbidden } from '../access/rights.js';
import { notFound } from '../fhir/outcome.js';
import { checkResource } from '../fhir/resource-input.js';
import { conflict, effectiveDate, nowIso, requireActor, rule } from './checks.js';
import type { OperationResult } from './patients.js';
import type { Inputs } from './parameters.js';
import type { Records } from './records.js';
import { ESTABLISHMENT_TYPES, RULES, SUPPORTING_DOCUMENTS, SYSTEMS } from './rules.js';
import { readStatus, withStatus, type ProviderStatus } from './status.js';

/**
 * Healthcare providers (HCPs) and their service locations: registration by the registration
 * office, the life of a registration (applied → active → suspended / cancelled / withdrawn),
 * the two public providers that exist from the start, and the public HCP register.
 */

/** Which transitions each operation makes, and who may make them. */
const TRANSITIONS: Record<string, { from: ProviderStatus[]; to: ProviderStatus; reasonRequired: boolean }> = {
  approve: { from: ['applied'], to: 'active', reasonRequired: false },
  suspend: { from: ['active'], to: 'suspended', reasonRequired: true },
  reinstate: { from: ['suspended'], to: 'active', reasonRequired: false },
  cancel: { from: ['applied', 'active', 'suspended'], to: 'cancelled', reasonRequired: true },
  withdraw: { from: ['applied', 'active', 'suspended'], to: 'withdrawn', reasonRequired: false },
};
export type ProviderTransition = keyof typeof TRANSITIONS;

function establishmentType(org: Organization): string | undefined {
  return org.type?.flatMap((t) => t.coding ?? []).find((c) => c.system === SYSTEMS.establishmentType)?.code;
}

const isPublicProvider = (org: Organization) => ESTABLISHMENT_TYPES.get(establishmentType(org) ?? '')?.public === true;

export class ProviderRegistry {
  constructor(
    private readonly records: Records,
    private readonly clock: () => Date = () => new Date(),
  ) {}

  /** HA and DH take part from the start: created (active) when missing. */
  async ensurePublicProviders(baseUrl: string): Promise<void> {
    const now = nowIso(this.clock());
    for (const p of RULES.publicProviders) {
      if (await this.records.current<Organization>('Organization', p.id)) continue;
      const type = ESTABLISHMENT_TYPES.get(p.type)!;
      const org = withStatus<Organization & { id: string }>(
        { resourceType: 'Organization', id: p.id, name: p.name, type: [{ coding: [{ system: SYSTEMS.establishmentType, code: type.code, display: type.display }] }], telecom: [{ system: 'phone', value: p.phone }], address: [p.address] },
        { status: 'active', effective: now },
      );
      const location: Location & { id: string } = { resourceType: 'Location', id: `${p.id}-main`, status: 'active', name: p.name, address: p.address, telecom: [{ system: 'phone', value: p.phone }], managingOrganization: { reference: `Organization/${p.id}` } };
      await this.records.createWithId(org, baseUrl);
      await this.records.createWithId(location, baseUrl);
    }
  }

  async register(principal: Principal, inputs: Inputs, baseUrl: string): Promise<OperationResult> {
    requireActor(principal, ['registration-office'], 'the registration office registers healthcare providers');
    const now = this.clock();
    const org = checkResource(inputs.resource<Organization>('organization', 'Organization', true), 'Organization') as unknown as Organization;
    const locations = inputs.resources<Location>('location', 'Location');
    if (!org.name?.trim()) throw rule('An HCP registers with its name', ['Organization.name']);
    const typeCode = establishmentType(org);
    const type = typeCode ? ESTABLISHMENT_TYPES.get(typeCode) : undefined;
    if (!type) throw rule(`Organization.type needs a code from ${SYSTEMS.establishmentType}: ${RULES.establishmentTypes.filter((t) => !t.public).map((t) => t.code).join(', ')}`, ['Organization.type']);
    if (type.public) throw rule(`${type.display} takes part from the start and is not registered again`, ['Organization.type']);
    const supporting = (org.identifier ?? []).filter((i) => i.type?.coding?.some((c) => c.system === SYSTEMS.supportingDocument));
    const accepted = supporting.filter((i) => i.type!.coding!.some((c) => c.system === SYSTEMS.supportingDocument && type.supportingDocuments.includes(c.code ?? '')) && i.value);
    if (accepted.length === 0) {
      const names = type.supportingDocuments.map((d) => SUPPORTING_DOCUMENTS.get(d)?.display ?? d).join('; or ');
      throw rule(`A ${type.display.toLowerCase()} registers with one of: ${names} (Organization.identifier with type from ${SYSTEMS.supportingDocument} and the document's number)`, ['Organization.identifier']);
    }
    if (locations.length === 0) throw rule('An HCP registers at least one service location (parameter \'location\')', ["Parameters.parameter('location')"]);
    locations.forEach((l, i) => {
      checkResource({ ...l, managingOrganization: { reference: 'Organization/pending' } }, 'Location');
      if (!l.name?.trim() || !l.address) throw rule(`Service location ${i + 1} needs a name and an address`, [`Parameters.parameter('location')[${i}]`]);
    });
    const numbers = accepted.map((i) => `${i.system ?? ''}|${i.value}`);
    for (const n of numbers) {
      if ((await this.records.find<Organization>('Organization', `identifier=${encodeURIComponent(n)}`, baseUrl, 1)).length) throw conflict('An HCP with this supporting document is already registered');
    }

    const stored = await this.records.create(withStatus<Organization>({ ...org, id: undefined } as Organization, { status: 'applied', effective: nowIso(now) }), baseUrl);
    const output: Parameters = { resourceType: 'Parameters', parameter: [{ name: 'organization', resource: stored }] };
    for (const l of locations) {
      const location = await this.records.create<Location>({ ...l, id: undefined, status: l.status ?? 'active', managingOrganization: { reference: `Organization/${stored.id}` } } as Location, baseUrl);
      output.parameter!.push({ name: 'location', resource: location });
    }
    return { status: 201, body: output, location: `Organization/${stored.id}` };
  }

  async transition(principal: Principal, action: ProviderTransition, id: string, inputs: Inputs, baseUrl: string): Promise<OperationResult> {
    const ownAdministrator = principal.kind === 'account' && principal.userAdministrator && principal.organizationId === id;
    if (action === 'withdraw' && ownAdministrator && principal.unusable) {
      throw forbidden(`${principal.unusable}; the registration office can withdraw it`);
    }
    const own = ownAdministrator && !principal.unusable;
    if (!(action === 'withdraw' && own)) {
      requireActor(principal, ['registration-office'], action === 'withdraw' ? "the registration office or the HCP's own user administrator withdraws an HCP" : `the registration office may ${action} an HCP`);
    }
    const now = this.clock();
    const { from, to, reasonRequired } = TRANSITIONS[action]!;
    const reason = inputs.string('reason', reasonRequired as true);
    const effective = effectiveDate(inputs.string('effectiveDate'), now);
    const current = await this.records.current<Organization>('Organization', id);
    const status = current && readStatus(current.resource);
    if (!current || !status) throw notFound(`Organization/${id} is not a registered healthcare provider`);
    if (isPublicProvider(current.resource) && to !== 'active') throw conflict(`${current.resource.name ?? id} is a public provider and takes part in eHealth by law`);
    if (!from.includes(status.status as ProviderStatus)) throw conflict(`Organization/${id} is ${status.status}; ${action} applies to a provider that is ${from.join(' or ')}`);
    const next = withStatus(current.resource, { status: to, effective, previous: status.status, ...(reason && { reason }) });
    return { status: 200, body: await this.records.replace(next, current.versionId, baseUrl) };
  }

  /**
   * The public HCP register: active HCPs' service locations, with name, address and phone only.
   * Nothing that identifies records (ids, versions) leaves this function.
   */
  async publicRegister(query: { name?: string; address?: string; count: number }, baseUrl: string): Promise<Bundle> {
    const params = ['status=active', 'organization:Organization.active=true'];
    if (query.name) params.push(`organization:Organization.name=${encodeURIComponent(query.name)}`);
    // "Part of the address" (the OperationDefinition): a street name matches "1 Nathan Road".
    if (query.address) params.push(`address:contains=${encodeURIComponent(query.address)}`);
    const locations = await this.records.find<Location>('Location', params.join('&'), baseUrl, query.count);
    const entries = [];
    for (const location of locations) {
      const orgId = location.managingOrganization?.reference?.replace(/^Organization\//, '');
      const org = orgId ? await this.records.current<Organization>('Organization', orgId) : undefined;
      if (!org || readStatus(org.resource)?.status !== 'active') continue;
      const phones = [...(location.telecom ?? []), ...(org.resource.telecom ?? [])].filter((t) => t.system === 'phone' && t.value).slice(0, 1);
      const entry: Location = { resourceType: 'Location', name: location.name!, managingOrganization: { display: org.resource.name! } };
      if (location.address) entry.address = { ...(location.address.text && { text: location.address.text }), ...(location.address.line && { line: location.address.line }), ...(location.address.city && { city: location.address.city }), ...(location.address.district && { district: location.address.district }), ...(location.address.country && { country: location.address.country }) };
      if (phones.length) entry.telecom = phones.map((t) => ({ system: 'phone' as const, value: t.value! }));
      entries.push({ resource: entry, search: { mode: 'match' as const } });
    }
    // The total is known only when the page holds everything that matched.
    return { resourceType: 'Bundle', type: 'searchset', ...(locations.length < query.count && { total: entries.length }), entry: entries };
  }
}
