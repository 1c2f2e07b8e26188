import type { Parameters, ParametersParameter, Resource } from 'fhir/r4.js';
import { badRequest } from '../fhir/outcome.js';

/** Reading an operation's input `Parameters` (absent body = no parameters). */

export class Inputs {
  private readonly parameters: ParametersParameter[];

  constructor(body: unknown) {
    if (body === undefined || body === null || body === '') {
      this.parameters = [];
      return;
    }
    const p = body as Parameters;
    if (typeof body !== 'object' || p.resourceType !== 'Parameters') throw badRequest('The operation expects a Parameters resource as its body');
    if (p.parameter !== undefined && !Array.isArray(p.parameter)) throw badRequest('Parameters.parameter must be an array', ['Parameters.parameter']);
    this.parameters = p.parameter ?? [];
  }

  private all(name: string): ParametersParameter[] {
    return this.parameters.filter((p) => p.name === name);
  }

  private one(name: string): ParametersParameter | undefined {
    const found = this.all(name);
    if (found.length > 1) throw badRequest(`Parameter '${name}' may appear only once`, [`Parameters.parameter('${name}')`]);
    return found[0];
  }

  resource<T extends Resource>(name: string, type: T['resourceType'], required: true): T;
  resource<T extends Resource>(name: string, type: T['resourceType'], required?: false): T | undefined;
  resource<T extends Resource>(name: string, type: T['resourceType'], required = false): T | undefined {
    const found = this.one(name)?.resource;
    if (!found) {
      if (required) throw badRequest(`Parameter '${name}' (a ${type}) is required`, [`Parameters.parameter('${name}')`]);
      return undefined;
    }
    if (found.resourceType !== type) throw badRequest(`Parameter '${name}' must be a ${type}`, [`Parameters.parameter('${name}').resource`]);
    return found as T;
  }

  resources<T extends Resource>(name: string, type: T['resourceType']): T[] {
    return this.all(name).map((p) => {
      if (p.resource?.resourceType !== type) throw badRequest(`Each '${name}' parameter must be a ${type}`, [`Parameters.parameter('${name}').resource`]);
      return p.resource as T;
    });
  }

  /** A primitive value (valueString, valueCode, valueDate, valueDateTime, valueBoolean, valueReference). */
  string(name: string, required: true): string;
  string(name: string, required?: false): string | undefined;
  string(name: string, required = false): string | undefined {
    const p = this.one(name);
    const value = p?.valueString ?? p?.valueCode ?? p?.valueDate ?? p?.valueDateTime ?? p?.valueId ?? p?.valueReference?.reference;
    if (value === undefined || value === '') {
      if (required) throw badRequest(`Parameter '${name}' is required`, [`Parameters.parameter('${name}')`]);
      return undefined;
    }
    if (typeof value !== 'string') throw badRequest(`Parameter '${name}' must be a string`, [`Parameters.parameter('${name}')`]);
    return value;
  }

  boolean(name: string): boolean | undefined {
    const p = this.one(name);
    if (p === undefined) return undefined;
    if (typeof p.valueBoolean !== 'boolean') throw badRequest(`Parameter '${name}' must be a valueBoolean`, [`Parameters.parameter('${name}')`]);
    return p.valueBoolean;
  }
}
