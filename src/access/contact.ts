import type { Address, Patient } from 'fhir/r4.js';
import { EHEALTH } from '../participation/rules.js';
import type { PatientMessage } from './events.js';

/**
 * Where a patient wants to hear from eHealth: the channel named by the notification-channel
 * extension (sms, email or post) when the patient has that kind of contact, otherwise the
 * first of: a mobile or other phone (SMS), an email address, a postal address.
 */

export const NOTIFICATION_CHANNEL = `${EHEALTH}/StructureDefinition/notification-channel`;

export type Contact = Pick<PatientMessage, 'channel' | 'to'>;

const formatAddress = (a: Address) => [...(a.line ?? []), a.district, a.city, a.country].filter(Boolean).join(', ') || a.text || '';

export function contactOf(patient: Patient): Contact | undefined {
  const telecom = (patient.telecom ?? []).filter((t) => t.value && !t.period?.end);
  const byRank = [...telecom].sort((a, b) => (a.rank ?? Infinity) - (b.rank ?? Infinity));
  const phone = byRank.find((t) => t.system === 'sms' || (t.system === 'phone' && t.use === 'mobile')) ?? byRank.find((t) => t.system === 'phone');
  const email = byRank.find((t) => t.system === 'email');
  const address = (patient.address ?? []).find((a) => !a.period?.end && formatAddress(a));
  const options: Record<Contact['channel'], Contact | undefined> = {
    sms: phone && { channel: 'sms', to: phone.value! },
    email: email && { channel: 'email', to: email.value! },
    post: address && { channel: 'post', to: formatAddress(address) },
  };
  const chosen = patient.extension?.find((e) => e.url === NOTIFICATION_CHANNEL)?.valueCode;
  if (chosen === 'sms' || chosen === 'email' || chosen === 'post') {
    const contact = options[chosen];
    if (contact) return contact;
  }
  return options.sms ?? options.email ?? options.post;
}
