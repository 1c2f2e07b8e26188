import type { Principal } from '../auth/principal.js';
import type { Inputs } from './parameters.js';
import type { OperationResult } from './patients.js';
import { PatientRegistry } from './patients.js';
import { ProfessionalRegistry } from './professionals.js';
import { ProviderRegistry } from './providers.js';
import type { Records } from './records.js';

/** The participation services behind one door, by OperationDefinition id. */

export type Invoke = (principal: Principal, id: string | undefined, inputs: Inputs, baseUrl: string) => Promise<OperationResult>;

export class Participation {
  readonly patients: PatientRegistry;
  readonly providers: ProviderRegistry;
  readonly professionals: ProfessionalRegistry;
  readonly handlers: Record<string, Invoke>;

  constructor(records: Records, clock: () => Date = () => new Date()) {
    this.patients = new PatientRegistry(records, clock);
    this.providers = new ProviderRegistry(records, clock);
    this.professionals = new ProfessionalRegistry(records, clock);
    const instance = (fn: (p: Principal, id: string, i: Inputs, b: string) => Promise<OperationResult>): Invoke => (p, id, i, b) => fn(p, id!, i, b);
    this.handlers = {
      'Patient-register': (p, _id, i, b) => this.patients.register(p, i, b),
      'Patient-activate': instance((p, id, i, b) => this.patients.activate(p, id, i, b)),
      'Patient-complete-newborn-registration': instance((p, id, i, b) => this.patients.completeNewborn(p, id, i, b)),
      'Patient-withdraw': instance((p, id, i, b) => this.patients.withdraw(p, id, i, b)),
      'Organization-register': (p, _id, i, b) => this.providers.register(p, i, b),
      'Organization-approve': instance((p, id, i, b) => this.providers.transition(p, 'approve', id, i, b)),
      'Organization-suspend': instance((p, id, i, b) => this.providers.transition(p, 'suspend', id, i, b)),
      'Organization-reinstate': instance((p, id, i, b) => this.providers.transition(p, 'reinstate', id, i, b)),
      'Organization-cancel': instance((p, id, i, b) => this.providers.transition(p, 'cancel', id, i, b)),
      'Organization-withdraw': instance((p, id, i, b) => this.providers.transition(p, 'withdraw', id, i, b)),
      'Organization-create-account': instance((p, id, i, b) => this.professionals.createAccount(p, id, i, b)),
      'PractitionerRole-deactivate': instance((p, id, i, b) => this.professionals.deactivate(p, id, i, b)),
      'Practitioner-register': (p, _id, i, b) => this.professionals.register(p, i, b),
    };
  }
}
