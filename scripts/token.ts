import { parseArgs } from 'node:util';
import { loadOrCreateDevKey } from '../src/auth/keys.js';
import type { PrincipalClaim } from '../src/auth/principal.js';
import { issueToken } from '../src/auth/tokens.js';
import { readConfig } from '../src/config.js';

/**
 * `npm run token -- <principal> [--lifetime SECONDS] [--scope "system/*.read ..."] [--sees-non-participating]` mints a
 * development token signed with the server's development key. Principals:
 *   practitioner-role/ID   an HCProf account or user administrator
 *   patient/ID             a patient
 *   related-person/ID      a substitute decision maker
 *   operator[/NAME]        the registration office
 *   client/ID              a backend client (default scope system/*.read); with --sees-non-participating,
 *                          an operator's tool that also sees patients pending activation or withdrawn
 */

function claimFrom(arg: string, scope: string, seesNonParticipating: boolean): PrincipalClaim {
  const [kind, id] = arg.split('/', 2) as [string, string | undefined];
  const need = () => {
    if (!id) throw new Error(`${kind} needs an id: ${kind}/ID`);
    return id;
  };
  switch (kind.toLowerCase()) {
    case 'practitioner-role':
    case 'practitionerrole':
      return { kind: 'account', practitionerRoleId: need() };
    case 'patient':
      return { kind: 'patient', patientId: need() };
    case 'related-person':
    case 'relatedperson':
      return { kind: 'sdm', relatedPersonId: need() };
    case 'operator':
    case 'registration-office':
      return { kind: 'registration-office', staffId: id ?? 'operator' };
    case 'auditor':
      return { kind: 'auditor', staffId: id ?? 'auditor' };
    case 'client':
    case 'system':
      return { kind: 'system', clientId: need(), scopes: scope.split(/\s+/).filter(Boolean), ...(seesNonParticipating && { seesNonParticipating: true as const }) };
    default:
      throw new Error(`unknown principal '${arg}': use practitioner-role/ID, patient/ID, related-person/ID, operator, auditor or client/ID`);
  }
}

try {
  const { values, positionals } = parseArgs({
    options: { lifetime: { type: 'string' }, scope: { type: 'string' }, 'sees-non-participating': { type: 'boolean' } },
    allowPositionals: true,
  });
  const lifetime = Number(values.lifetime ?? 3600);
  const scope = values.scope ?? 'system/*.read';
  const principal = positionals[0];
  if (!principal) throw new Error('usage: npm run token -- <practitioner-role/ID | patient/ID | related-person/ID | operator | client/ID> [--lifetime SECONDS] [--scope SCOPES] [--sees-non-participating]');
  const config = readConfig();
  if (config.mode === 'production') throw new Error('EHEALTH_MODE=production: development tokens are never accepted there, so none are made');
  if (!Number.isInteger(lifetime) || lifetime <= 0 || lifetime > 86_400) throw new Error('--lifetime is a number of seconds, at most a day');
  const key = await loadOrCreateDevKey(config.auth.devKeyFile);
  console.log(await issueToken(claimFrom(principal, scope, values['sees-non-participating'] === true), { key, issuer: config.auth.issuers[0]!, audience: config.auth.audience, lifetimeSeconds: lifetime }));
} catch (error) {
  console.error(`token: ${(error as Error).message}`);
  process.exit(2);
}
