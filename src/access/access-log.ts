import type { AuditEvent, Organization, Parameters, ParametersParameter, Practitioner } from 'fhir/r4.js';
import type { Principal } from '../auth/principal.js';
import { FhirError, notFound } from '../fhir/outcome.js';
import type { SearchService } from '../fhir/search/search-service.js';
import type { BodyCodec } from '../store/codec.js';
import { SHARABLE_TYPES } from './classification.js';
import { SHARABLE_TYPE_SYSTEM } from './records-of.js';

/**
 * A patient's access log: who (which healthcare professional, at which HCP) reached their
 * record, when, which data types, and whether restricted records were opened (with the reason).
 * Read from the audit trail; shows HCProfs' accesses only, without network addresses or queries.
 */

const MAX_ENTRIES = 1000;
const TYPE_DISPLAY = new Map(SHARABLE_TYPES.map((t) => [t.code as string, t.display]));

const refId = (reference: string | undefined, type: string) => (reference?.startsWith(`${type}/`) ? reference.slice(type.length + 1) : undefined);

export class AccessLog {
  constructor(
    private readonly searches: SearchService,
    private readonly codec: BodyCodec,
    private readonly baseUrl: string,
  ) {}

  private async names<T extends Practitioner | Organization>(type: T['resourceType'], ids: Set<string>): Promise<Map<string, string>> {
    if (ids.size === 0) return new Map();
    const found = await this.searches.find(type, [{ kind: 'id', ids: [...ids] }], ids.size);
    const names = new Map<string, string>();
    for (const v of found) {
      const resource = JSON.parse(this.codec.decode(v.body!)) as T;
      const name = resource.resourceType === 'Organization' ? resource.name : resource.name?.map((n) => n.text ?? [n.prefix?.join(' '), n.given?.join(' '), n.family].filter(Boolean).join(' '))[0];
      if (name) names.set(v.id, name);
    }
    return names;
  }

  async forPatient(principal: Principal, patientId: string): Promise<{ status: number; body: Parameters }> {
    const own = principal.kind === 'patient' || principal.kind === 'sdm' ? principal.patientId : undefined;
    if (own === undefined && principal.kind !== 'auditor') throw FhirError.of(403, 'forbidden', 'The access log is read by the patient, their substitute decision maker, or an auditor');
    if (own !== undefined && own !== patientId) throw notFound(`Patient/${patientId} is not known`);

    const where = await this.searches.criteriaFor('AuditEvent', `patient=Patient/${patientId}`, this.baseUrl);
    const events = (await this.searches.find('AuditEvent', where, MAX_ENTRIES * 4))
      .map((v) => JSON.parse(this.codec.decode(v.body!)) as AuditEvent)
      .filter((e) => e.agent.some((a) => a.requestor && refId(a.who?.reference, 'PractitionerRole')))
      .sort((a, b) => (b.recorded ?? '').localeCompare(a.recorded ?? ''))
      .slice(0, MAX_ENTRIES);

    const practitioners = new Set<string>();
    const organizations = new Set<string>();
    for (const e of events) {
      for (const a of e.agent) {
        const p = refId(a.who?.reference, 'Practitioner');
        const o = refId(a.who?.reference, 'Organization');
        if (p) practitioners.add(p);
        if (o) organizations.add(o);
      }
    }
    const [professionalNames, hcpNames] = await Promise.all([this.names<Practitioner>('Practitioner', practitioners), this.names<Organization>('Organization', organizations)]);

    const parameter: ParametersParameter[] = events.map((e) => {
      const practitioner = e.agent.map((a) => refId(a.who?.reference, 'Practitioner')).find(Boolean);
      const organization = e.agent.map((a) => refId(a.who?.reference, 'Organization')).find(Boolean);
      const group = e.agent.flatMap((a) => a.role ?? []).flatMap((r) => r.coding ?? [])[0];
      const types = (e.entity ?? []).filter((x) => x.type?.system === SHARABLE_TYPE_SYSTEM && x.type.code).map((x) => x.type!.code!);
      const part: ParametersParameter[] = [
        { name: 'when', valueDateTime: e.period?.start ?? e.recorded },
        ...(practitioner ? [{ name: 'professional', valueReference: { reference: `Practitioner/${practitioner}`, ...(professionalNames.has(practitioner) && { display: professionalNames.get(practitioner)! }) } }] : []),
        ...(group?.code ? [{ name: 'professionalGroup', valueCode: group.code }] : []),
        ...(organization ? [{ name: 'healthcareProvider', valueReference: { reference: `Organization/${organization}`, ...(hcpNames.has(organization) && { display: hcpNames.get(organization)! }) } }] : []),
        { name: 'action', valueCode: e.subtype?.find((s) => s.system?.endsWith('/operation'))?.code ?? e.subtype?.[0]?.code ?? 'unknown' },
        { name: 'outcome', valueCode: e.outcome === '0' ? 'success' : 'refused' },
        ...types.map((code) => ({ name: 'dataType', valueCoding: { system: SHARABLE_TYPE_SYSTEM, code, ...(TYPE_DISPLAY.has(code) && { display: TYPE_DISPLAY.get(code)! }) } })),
        ...(e.purposeOfEvent?.length ? [{ name: 'restrictedAccessReason', valueString: e.purposeOfEvent[0]!.text ?? '' }] : []),
      ];
      return { name: 'access', part };
    });
    return { status: 200, body: { resourceType: 'Parameters', ...(parameter.length > 0 && { parameter }) } };
  }
}
