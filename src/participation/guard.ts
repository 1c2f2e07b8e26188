import type { Identifier } from 'fhir/r4.js';
import type { JsonResource } from '../fhir/resource-input.js';
import type { WriteGuard } from '../fhir/resource-service.js';
import { FhirError, unprocessable } from '../fhir/outcome.js';
import { hkicProblem } from './hkic.js';
import { identityDocumentOf, SYSTEMS } from './rules.js';
import { readStatus, sameStatus } from './status.js';

/**
 * Rules every plain REST write must keep (the participation operations write around them):
 * a participant's status and eHR number change only through the operations, and identity
 * document numbers are checked wherever they appear.
 */

type Json = Record<string, unknown>;

const ehrNumbers = (r: Json) =>
  ((r.identifier as Identifier[] | undefined) ?? []).filter((i) => i.system === SYSTEMS.ehrNumber).map((i) => i.value).sort().join(',');

export function identityDocumentProblems(resource: Json): string[] {
  const problems: string[] = [];
  ((resource.identifier as Identifier[] | undefined) ?? []).forEach((identifier, index) => {
    const doc = identityDocumentOf(identifier.system);
    if (doc?.checkDigit !== 'hkic' || identifier.value === undefined) return;
    const problem = hkicProblem(identifier.value);
    if (problem) problems.push(`${String(resource.resourceType)}.identifier[${index}]: the ${doc.display} number ${problem}`);
  });
  return problems;
}

const GUARDED: ReadonlySet<string> = new Set(['Patient', 'Organization', 'RelatedPerson', 'Practitioner']);

function check(next: JsonResource, previous: JsonResource | undefined): void {
  const type = next.resourceType as string;
  const problems = identityDocumentProblems(next);
  if (problems.length) throw new FhirError(422, problems.map((d) => ({ severity: 'error', code: 'invariant', diagnostics: d })));
  if (type !== 'Patient' && type !== 'Organization') return;

  const before = previous ?? { resourceType: type };
  if (!sameStatus(next, before)) {
    throw unprocessable(`The participation status of a ${type} changes only through its operations ($register, $activate, $withdraw, $suspend, …)`, [`${type}.extension`]);
  }
  if (readStatus(next) && next.active !== before.active) {
    throw unprocessable(`${type}.active mirrors the participation status and changes only through the operations`, [`${type}.active`]);
  }
  if (ehrNumbers(next) !== ehrNumbers(before)) {
    throw unprocessable('The eHR number is assigned at registration and cannot be changed', [`${type}.identifier`]);
  }
  // A registered HCP's establishment type decides its supporting documents and whether it is
  // a public provider (which cannot be suspended): it is fixed at registration.
  if (type === 'Organization' && readStatus(next) && establishmentTypes(next) !== establishmentTypes(before)) {
    throw unprocessable("A registered HCP's establishment type is fixed at registration", ['Organization.type']);
  }
}

const establishmentTypes = (r: Json) =>
  ((r.type as { coding?: { system?: string; code?: string }[] }[] | undefined) ?? [])
    .flatMap((t) => t.coding ?? [])
    .filter((c) => c.system === SYSTEMS.establishmentType)
    .map((c) => c.code)
    .sort()
    .join(',');

export const participationGuard: WriteGuard = { appliesTo: (type) => GUARDED.has(type), check };
