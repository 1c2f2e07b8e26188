import type { Resource } from 'fhir/r4.js';
import { FhirError } from '../fhir/outcome.js';
import type { ResourceService, WriteResult } from '../fhir/resource-service.js';
import type { SearchService } from '../fhir/search/search-service.js';
import type { BodyCodec } from '../store/codec.js';

/** The participation services' view of the FHIR services: whole resources in and out. */

export interface Current<T extends Resource> {
  resource: T & { id: string };
  versionId: number;
}

export class Records {
  constructor(
    private readonly resources: ResourceService,
    private readonly searches: SearchService,
    private readonly codec: BodyCodec,
  ) {}

  /** The current version, or undefined when the resource does not exist or was deleted. */
  async current<T extends Resource>(type: T['resourceType'], id: string): Promise<Current<T> | undefined> {
    if (!/^[A-Za-z0-9\-.]{1,64}$/.test(id)) return undefined;
    try {
      const { stored, json } = await this.resources.read(type, id);
      return { resource: JSON.parse(json!) as T & { id: string }, versionId: stored.versionId };
    } catch (error) {
      // Only "not there" means not there: a store failure must not read as an unknown principal.
      if (error instanceof FhirError && (error.status === 404 || error.status === 410)) return undefined;
      throw error;
    }
  }

  async create<T extends Resource>(resource: T, baseUrl: string): Promise<T & { id: string }> {
    return parse<T>(await this.resources.create(resource.resourceType, resource, baseUrl));
  }

  /** Creates a resource under an id of the server's choosing (update-as-create). */
  async createWithId<T extends Resource>(resource: T & { id: string }, baseUrl: string): Promise<T & { id: string }> {
    return parse<T>(await this.resources.update(resource.resourceType, resource.id, resource, baseUrl));
  }

  /** Writes a new version of a resource read earlier; fails if anyone wrote in between. */
  async replace<T extends Resource>(resource: T & { id: string }, versionId: number, baseUrl: string): Promise<T & { id: string }> {
    return parse<T>(await this.resources.update(resource.resourceType, resource.id, resource, baseUrl, versionId));
  }

  /** Current resources matching a search query string (e.g. `identifier=sys|val`). */
  async find<T extends Resource>(type: T['resourceType'], query: string, baseUrl: string, limit = 2): Promise<(T & { id: string })[]> {
    const where = await this.searches.criteriaFor(type, query, baseUrl);
    const found = await this.searches.find(type, where, limit);
    return found.filter((v) => v.body !== undefined).map((v) => JSON.parse(this.codec.decode(v.body!)) as T & { id: string });
  }
}

function parse<T extends Resource>(result: WriteResult): T & { id: string } {
  return JSON.parse(result.json!) as T & { id: string };
}
