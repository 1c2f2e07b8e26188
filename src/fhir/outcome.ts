import type { OperationOutcome, OperationOutcomeIssue } from 'fhir/r4.js';

export type IssueCode = OperationOutcomeIssue['code'];
export type IssueSeverity = OperationOutcomeIssue['severity'];

export function issue(
  severity: IssueSeverity,
  code: IssueCode,
  diagnostics: string,
  expression?: string[],
): OperationOutcomeIssue {
  const result: OperationOutcomeIssue = { severity, code, diagnostics };
  if (expression?.length) result.expression = expression;
  return result;
}

export function operationOutcome(issues: OperationOutcomeIssue[]): OperationOutcome {
  return { resourceType: 'OperationOutcome', issue: issues };
}

/**
 * A failure the client should see: an HTTP status and the OperationOutcome that explains it.
 * Every message here is written for the client; nothing from a database or a stack goes in.
 */
export class FhirError extends Error {
  readonly outcome: OperationOutcome;
  constructor(
    readonly status: number,
    issues: OperationOutcomeIssue[],
  ) {
    super(issues.map((i) => i.diagnostics).join('; '));
    this.name = 'FhirError';
    this.outcome = operationOutcome(issues);
  }

  static of(status: number, code: IssueCode, diagnostics: string, expression?: string[]): FhirError {
    return new FhirError(status, [issue('error', code, diagnostics, expression)]);
  }
}

export const badRequest = (diagnostics: string, expression?: string[]) =>
  FhirError.of(400, 'invalid', diagnostics, expression);
export const notFound = (diagnostics: string) => FhirError.of(404, 'not-found', diagnostics);
export const gone = (diagnostics: string) => FhirError.of(410, 'deleted', diagnostics);
export const preconditionFailed = (diagnostics: string) => FhirError.of(412, 'conflict', diagnostics);
export const unprocessable = (diagnostics: string, expression?: string[]) =>
  FhirError.of(422, 'processing', diagnostics, expression);
