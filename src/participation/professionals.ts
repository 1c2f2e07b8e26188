import type { Organization, Practitioner, PractitionerRole } from 'fhir/r4.js';
import type { Principal } from '../auth/principal.js';
import { forbidden } from '../access/rights.js';
import { notFound } from '../fhir/outcome.js';
import { checkResource } from '../fhir/resource-input.js';
import { conflict, nowIso, refId, requireActor, rule } from './checks.js';
import type { OperationResult } from './patients.js';
import type { Inputs } from './parameters.js';
import { validRegistration } from './principals.js';
import type { Records } from './records.js';
import { PROFESSIONAL_GROUPS, RULES, SYSTEMS, USER_ADMINISTRATOR } from './rules.js';
import { readStatus } from './status.js';

/**
 * Healthcare professionals (one of the 13 groups, with a registration number and its validity)
 * and their accounts: one PractitionerRole per HCP they work for, created and deactivated by
 * that HCP's user administrator. The registration office only appoints user administrators.
 */

export class ProfessionalRegistry {
  constructor(
    private readonly records: Records,
    private readonly clock: () => Date = () => new Date(),
  ) {}

  async register(principal: Principal, inputs: Inputs, baseUrl: string): Promise<OperationResult> {
    requireActor(principal, ['registration-office', 'user-administrator'], "the registration office or an HCP's user administrator records a healthcare professional");
    const now = this.clock();
    const practitioner = checkResource(inputs.resource<Practitioner>('practitioner', 'Practitioner', true), 'Practitioner') as unknown as Practitioner;
    if (!practitioner.name?.some((n) => n.family || n.text || n.given?.length)) throw rule('A professional is recorded with a name', ['Practitioner.name']);
    const qualifications = (practitioner.qualification ?? []).filter((q) => q.code.coding?.some((c) => c.system === SYSTEMS.professionalGroup));
    if (qualifications.length === 0) {
      throw rule(`Practitioner.qualification needs a professional group from ${SYSTEMS.professionalGroup}: ${RULES.professionalGroups.map((g) => g.code).join(', ')}`, ['Practitioner.qualification']);
    }
    for (const [i, q] of qualifications.entries()) {
      const group = q.code.coding!.find((c) => c.system === SYSTEMS.professionalGroup)!.code ?? '';
      if (!PROFESSIONAL_GROUPS.has(group)) throw rule(`'${group}' is not one of the 13 healthcare professional groups`, [`Practitioner.qualification[${i}].code`]);
      const number = q.identifier?.find((id) => id.value)?.value;
      if (!number) throw rule('Each qualification carries the professional registration number (qualification.identifier)', [`Practitioner.qualification[${i}].identifier`]);
      if (!q.period?.end) throw rule("Each qualification carries its registration's validity (qualification.period.end)", [`Practitioner.qualification[${i}].period`]);
      const system = SYSTEMS.professionalRegistration(group);
      q.identifier = [{ system, value: number }];
      const existing = await this.records.find<Practitioner>('Practitioner', `identifier=${encodeURIComponent(`${system}|${number}`)}`, baseUrl, 1);
      if (existing.length) throw conflict(`A ${PROFESSIONAL_GROUPS.get(group)!.display.toLowerCase()} with registration number ${number} is already recorded: use Practitioner/${existing[0]!.id}`);
    }
    if (!validRegistration(practitioner, now) || validRegistration(practitioner, now)?.problem) throw rule('The professional registration is not valid today', ['Practitioner.qualification']);
    // Registration numbers are also identifiers, so the professional can be found by them.
    const identifier = [...(practitioner.identifier ?? []), ...qualifications.flatMap((q) => q.identifier ?? [])];
    const stored = await this.records.create<Practitioner>({ ...practitioner, id: undefined, active: true, identifier } as Practitioner, baseUrl);
    return { status: 201, body: stored, location: `Practitioner/${stored.id}` };
  }

  async createAccount(principal: Principal, organizationId: string, inputs: Inputs, baseUrl: string): Promise<OperationResult> {
    const userAdministrator = inputs.boolean('userAdministrator') ?? false;
    const ownAdmin = principal.kind === 'account' && principal.userAdministrator && principal.organizationId === organizationId;
    if (principal.kind === 'registration-office') {
      if (!userAdministrator) throw forbidden("The registration office appoints user administrators only; other accounts are created by the HCP's user administrator");
    } else if (!ownAdmin) {
      if (principal.kind === 'account' && principal.userAdministrator) throw forbidden("A user administrator manages its own HCP's accounts only");
      throw forbidden("Only the HCP's user administrator creates its accounts");
    } else if (principal.unusable) throw forbidden(principal.unusable);

    const now = this.clock();
    const org = await this.records.current<Organization>('Organization', organizationId);
    if (!org || !readStatus(org.resource)) throw notFound(`Organization/${organizationId} is not a registered healthcare provider`);
    const orgStatus = readStatus(org.resource)!.status;
    if (orgStatus !== 'active' && orgStatus !== 'applied') throw conflict(`Organization/${organizationId} is ${orgStatus}; accounts cannot be created`);
    const practitionerId = refId(inputs.string('practitioner', true), 'Practitioner');
    const practitioner = practitionerId ? await this.records.current<Practitioner>('Practitioner', practitionerId) : undefined;
    if (!practitioner) throw rule("'practitioner' must reference a recorded Practitioner (Practitioner/id)", ["Parameters.parameter('practitioner')"]);
    const registration = validRegistration(practitioner.resource, now);
    if (!userAdministrator && (!registration || registration.problem)) throw rule('An account is created only for a professional whose registration is valid', ["Parameters.parameter('practitioner')"]);

    const existing = await this.records.find<PractitionerRole>('PractitionerRole', `practitioner=Practitioner/${practitioner.resource.id}&organization=Organization/${organizationId}&active=true`, baseUrl, 1);
    if (existing.length) throw conflict(`Practitioner/${practitioner.resource.id} already has an active account at this HCP: PractitionerRole/${existing[0]!.id}`);

    const code = [];
    if (registration && !registration.problem) code.push({ coding: [{ system: SYSTEMS.professionalGroup, code: registration.group, display: PROFESSIONAL_GROUPS.get(registration.group)!.display }] });
    if (userAdministrator) code.push({ coding: [{ system: SYSTEMS.accountRole, code: USER_ADMINISTRATOR, display: 'User administrator' }] });
    const role: PractitionerRole = {
      resourceType: 'PractitionerRole',
      active: true,
      period: { start: nowIso(now) },
      practitioner: { reference: `Practitioner/${practitioner.resource.id}` },
      organization: { reference: `Organization/${organizationId}` },
      code,
    };
    const stored = await this.records.create(role, baseUrl);
    return { status: 201, body: stored, location: `PractitionerRole/${stored.id}` };
  }

  async deactivate(principal: Principal, id: string, inputs: Inputs, baseUrl: string): Promise<OperationResult> {
    const current = await this.records.current<PractitionerRole>('PractitionerRole', id);
    if (!current) throw notFound(`PractitionerRole/${id} is not known`);
    const organizationId = refId(current.resource.organization?.reference, 'Organization');
    const ownAdmin = principal.kind === 'account' && principal.userAdministrator && principal.organizationId === organizationId;
    if (!ownAdmin) {
      if (principal.kind === 'account' && principal.userAdministrator) throw forbidden("A user administrator manages its own HCP's accounts only");
      throw forbidden("Only the HCP's user administrator deactivates its accounts");
    }
    if (principal.unusable) throw forbidden(principal.unusable);
    if (current.resource.active !== true) throw conflict(`PractitionerRole/${id} is already inactive`);
    const reason = inputs.string('reason');
    const next: PractitionerRole & { id: string } = {
      ...current.resource,
      active: false,
      period: { ...current.resource.period, end: nowIso(this.clock()) },
      ...(reason && { extension: [...(current.resource.extension ?? []), { url: `${SYSTEMS.participationStatus}-reason`, valueString: reason }] }),
    };
    return { status: 200, body: await this.records.replace(next, current.versionId, baseUrl) };
  }
}
