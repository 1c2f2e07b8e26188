import type { Principal } from '../auth/principal.js';
import type { NotificationSender } from '../access/events.js';
import { AccessKeyRegistry } from './access-keys.js';
import { CardReaders, CardReadingVerifier } from './card-readings.js';
import { CareRegistry } from './care.js';
import { ConsentRegistry } from './consents.js';
import type { Inputs } from './parameters.js';
import type { OperationResult } from './patients.js';
import { PatientRegistry } from './patients.js';
import { ProfessionalRegistry } from './professionals.js';
import { ProviderRegistry } from './providers.js';
import type { Records } from './records.js';
import { discardingSender, RestrictedAccessRegistry } from './restricted-access.js';

/** The participation services behind one door, by OperationDefinition id. */

export type Invoke = (principal: Principal, id: string | undefined, inputs: Inputs, baseUrl: string) => Promise<OperationResult>;

export class Participation {
  readonly patients: PatientRegistry;
  readonly providers: ProviderRegistry;
  readonly professionals: ProfessionalRegistry;
  readonly accessKeys: AccessKeyRegistry;
  readonly consents: ConsentRegistry;
  readonly care: CareRegistry;
  readonly restrictedAccess: RestrictedAccessRegistry;
  readonly handlers: Record<string, Invoke>;

  /**
   * `sender` delivers the one-time passwords of restricted access to patients; without one they
   * go nowhere (the composition root passes the real sender). `cardReaders` are the card readers
   * whose smart HKIC readings are evidence for consent and restricted access (none: no reading is).
   */
  constructor(records: Records, clock: () => Date = () => new Date(), sender: NotificationSender = discardingSender, cardReaders: CardReaders = new CardReaders()) {
    const cardReadings = new CardReadingVerifier(cardReaders, clock);
    this.patients = new PatientRegistry(records, clock);
    this.providers = new ProviderRegistry(records, clock);
    this.professionals = new ProfessionalRegistry(records, clock);
    this.accessKeys = new AccessKeyRegistry(records, clock);
    this.consents = new ConsentRegistry(records, this.accessKeys, cardReadings, clock);
    this.care = new CareRegistry(records, clock);
    this.restrictedAccess = new RestrictedAccessRegistry(records, cardReadings, sender, clock);
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
      'Patient-generate-access-key': instance((p, id, i, b) => this.accessKeys.generate(p, id, i, b)),
      'Patient-give-consent': instance((p, id, i, b) => this.consents.give(p, id, i, b)),
      'Patient-revoke-consent': instance((p, id, i, b) => this.consents.revoke(p, id, i, b)),
      'Patient-consents': instance((p, id, i, b) => this.consents.list(p, id, i, b)),
      'Patient-establish-care': (p, _id, i, b) => this.care.establish(p, i, b),
      'EpisodeOfCare-end-care': instance((p, id, i, b) => this.care.end(p, id, i, b)),
      'Patient-request-restricted-access': instance((p, id, i, b) => this.restrictedAccess.request(p, id, i, b)),
      'Patient-grant-restricted-access': instance((p, id, i, b) => this.restrictedAccess.grant(p, id, i, b)),
    };
  }
}
