import type { OperationOutcome, OperationOutcomeIssue, Parameters } from 'fhir/r4.js';
import type { BodyCodec } from '../store/codec.js';
import type { ResourceStore } from '../store/port.js';
import { badRequest, FhirError, issue, notFound, operationOutcome } from './outcome.js';
import { ID_PATTERN, requireKnownType, requireValidId, type JsonResource } from './resource-input.js';
import type { ReadCheck, WriteGuard } from './resource-service.js';
import { validateResource } from './validation.js';

/**
 * $validate (type and instance level): the checks a create, update or delete would make, with
 * nothing stored. Findings about the resource are issues of a 200 OperationOutcome; a request
 * that cannot be judged (no resource, another type than the URL's, an unknown mode, an instance
 * the caller cannot see) fails as that request would.
 */

export type ValidateMode = 'create' | 'update' | 'delete';
const MODES: readonly string[] = ['create', 'update', 'delete'];

export interface ValidateRequest {
  resourceType: string;
  /** Set at instance level. */
  id?: string;
  body: unknown;
  /** mode and profile from the URL, used when the body is the resource itself. */
  query: { mode?: string; profile?: string };
  /** The checks the caller's writes would get (participation rules, server records, the access view). */
  guard?: WriteGuard;
  /** Whether the caller may see a current version (update and delete judge it). */
  canSee?: ReadCheck;
}

interface Unpacked {
  resource?: unknown;
  mode?: string;
  profile?: string;
}

const baseProfile = (type: string) => `http://hl7.org/fhir/StructureDefinition/${type}`;
const OPERATION_PARAMS = new Set(['resource', 'mode', 'profile']);

/** The resource, mode and profile: from a Parameters body, or the body is the resource and the rest come from the URL. */
function unpack(request: ValidateRequest): Unpacked {
  const body = request.body as Parameters | undefined;
  const isParameters =
    typeof body === 'object' && body !== null && !Array.isArray(body) && body.resourceType === 'Parameters' && Array.isArray(body.parameter) &&
    // Validating a Parameters resource itself: only a body naming this operation's parameters is read as input.
    (request.resourceType !== 'Parameters' || body.parameter.some((p) => OPERATION_PARAMS.has(p.name)));
  if (!isParameters) return { ...(body !== undefined && body !== null && { resource: body }), ...request.query };
  const one = (name: string) => {
    const found = body.parameter!.filter((p) => p.name === name);
    if (found.length > 1) throw badRequest(`Parameter '${name}' may appear only once`, [`Parameters.parameter('${name}')`]);
    return found[0];
  };
  const mode = one('mode');
  const profile = one('profile');
  const unpacked: Unpacked = {};
  const resource = one('resource')?.resource;
  if (resource !== undefined) unpacked.resource = resource;
  const modeValue = mode?.valueCode ?? mode?.valueString ?? request.query.mode;
  if (modeValue !== undefined) unpacked.mode = modeValue;
  const profileValue = profile?.valueUri ?? profile?.valueCanonical ?? profile?.valueString ?? request.query.profile;
  if (profileValue !== undefined) unpacked.profile = profileValue;
  return unpacked;
}

/** The issues a FhirError from a guard carries, or the error itself when it is not a finding about the resource. */
function findings(error: unknown): OperationOutcomeIssue[] {
  if (error instanceof FhirError && error.status !== 404 && error.status < 500) return error.outcome.issue;
  throw error;
}

export class ValidateOperation {
  constructor(
    private readonly store: ResourceStore,
    private readonly codec: BodyCodec,
  ) {}

  /** The mode the request asks for (instance level defaults to update); a 400 for one this server does not know. */
  static modeOf(request: ValidateRequest): ValidateMode | undefined {
    const mode = unpack(request).mode;
    if (mode === undefined) return request.id !== undefined ? 'update' : undefined;
    if (!MODES.includes(mode)) throw badRequest(`mode must be create, update or delete, not '${mode.slice(0, 40)}'`, ['mode']);
    return mode as ValidateMode;
  }

  async validate(request: ValidateRequest): Promise<OperationOutcome> {
    const { resourceType, id } = request;
    requireKnownType(resourceType);
    if (id !== undefined) requireValidId(id);
    const input = unpack(request);
    const mode = ValidateOperation.modeOf(request);
    if (mode === 'create' && id !== undefined) throw badRequest('mode create validates a new resource: use POST /{type}/$validate', ['mode']);
    if (mode === 'delete' && id === undefined) throw badRequest('mode delete names the resource to delete: use POST /{type}/{id}/$validate', ['mode']);

    const issues: OperationOutcomeIssue[] = [];
    if (mode === 'delete') {
      const previous = await this.visibleCurrent(resourceType, id!, request.canSee);
      if (!previous) throw notFound(`${resourceType}/${id!} is not known`);
      if (request.guard?.appliesTo(resourceType)) {
        try {
          request.guard.checkDelete?.(previous);
        } catch (error) {
          issues.push(...findings(error));
        }
      }
      return this.outcome(issues, input.profile, resourceType);
    }

    const resource = this.resourceOf(input.resource, resourceType);
    issues.push(...this.idIssues(resource, mode, id));
    issues.push(...validateResource(resource));
    const targetId = id ?? (mode === 'update' && typeof resource.id === 'string' ? resource.id : undefined);
    const previous = mode === 'update' && targetId !== undefined && ID_PATTERN.test(targetId) ? await this.visibleCurrent(resourceType, targetId, request.canSee, true) : undefined;
    // The write rules read references and codes: judged only on a well-formed resource.
    if (!issues.some((i) => i.severity === 'error') && request.guard?.appliesTo(resourceType)) {
      try {
        const prepared = request.guard.prepare ? request.guard.prepare(resource) : resource;
        request.guard.check(prepared, previous);
      } catch (error) {
        issues.push(...findings(error));
      }
    }
    return this.outcome(issues, input.profile, resourceType);
  }

  private resourceOf(resource: unknown, resourceType: string): JsonResource {
    if (resource === undefined) throw badRequest('$validate needs the resource: the body, or a Parameters body with a resource parameter', ['resource']);
    if (typeof resource !== 'object' || resource === null || Array.isArray(resource)) throw badRequest('The resource to validate must be a JSON object');
    const type = (resource as { resourceType?: unknown }).resourceType;
    if (type !== resourceType) {
      throw badRequest(`The resource's resourceType (${JSON.stringify(type ?? null)}) does not match the URL's type '${resourceType}'`, [`${resourceType}.resourceType`]);
    }
    return resource as JsonResource;
  }

  private idIssues(resource: JsonResource, mode: ValidateMode | undefined, urlId: string | undefined): OperationOutcomeIssue[] {
    const type = resource.resourceType;
    const where = [`${type}.id`];
    if (resource.id !== undefined && (typeof resource.id !== 'string' || !ID_PATTERN.test(resource.id))) return [issue('error', 'value', 'id must be 1-64 characters of A-Z a-z 0-9 - .', where)];
    if (mode !== 'update') return [];
    if (resource.id === undefined) return [issue('error', 'required', 'An update must carry the resource id', where)];
    if (urlId !== undefined && resource.id !== urlId) return [issue('error', 'value', `The resource's id does not match the id in the URL ('${urlId}')`, where)];
    return [];
  }

  /**
   * The current version if the caller may see it; a 404 when it exists but may not be seen
   * (`absentIsFine`: an update may create), undefined when there is none.
   */
  private async visibleCurrent(resourceType: string, id: string, canSee: ReadCheck | undefined, absentIsFine = false): Promise<JsonResource | undefined> {
    const stored = await this.store.readCurrent(resourceType, id);
    if (!stored || stored.deleted || stored.body === undefined) {
      if (absentIsFine) return undefined;
      throw notFound(`${resourceType}/${id} is not known`);
    }
    const resource = JSON.parse(this.codec.decode(stored.body)) as JsonResource;
    if (canSee && !canSee(resource)) throw notFound(`${resourceType}/${id} is not known`);
    return resource;
  }

  private outcome(issues: OperationOutcomeIssue[], profile: string | undefined, resourceType: string): OperationOutcome {
    const all = [...issues];
    if (profile !== undefined && profile !== baseProfile(resourceType)) {
      all.push(issue('warning', 'not-supported', `Only the base definition (${baseProfile(resourceType)}) was checked; profile '${profile.slice(0, 200)}' was not`, ['profile']));
    }
    if (!all.some((i) => i.severity === 'error' || i.severity === 'fatal')) {
      const text = all.length ? 'No errors found' : 'No issues found';
      all.unshift(issue('information', 'informational', `${text}: valid against the base FHIR R4 definition and this server's rules for the caller`));
    }
    return operationOutcome(all);
  }
}
