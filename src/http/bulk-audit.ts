import type { AccessEvent, AccessRecorder } from '../access/events.js';
import { touched } from '../access/policy.js';
import type { Principal } from '../auth/principal.js';
import type { BulkJobOptions } from '../fhir/bulk/bulk-jobs.js';
import type { JsonResource } from '../fhir/resource-input.js';

/**
 * A completed bulk job is recorded like a request (the kick-off was recorded when it was
 * answered): the same principal, the operation, and for an HCProf account's export the
 * patients and sharable data types of what it exported, noted page by page with each
 * checkpoint so a job resumed after a restart still names them all. Backend clients' exports
 * are not parsed for this (it would halve their speed); their record names the request.
 */

interface KickOff {
  principal: Principal;
  clientAddress: string;
  method: string;
  url: string;
  resourceType?: string;
  id?: string;
}

export function bulkAuditing(recorders: AccessRecorder[], localBase: string): Pick<BulkJobOptions, 'controlFor' | 'onComplete'> {
  return {
    controlFor: (plan) => {
      const kickOff = plan.context as KickOff | undefined;
      if (kickOff?.principal.kind !== 'account') return { stopped: false };
      return {
        stopped: false,
        onPage: (_type, bodies, state) => {
          const found = touched(bodies.map((b) => JSON.parse(b) as JsonResource), localBase);
          const noted = state.noted ?? { patients: [], dataTypes: [], restricted: false };
          state.noted = {
            patients: [...new Set([...noted.patients, ...found.patients])],
            dataTypes: [...new Set([...noted.dataTypes, ...found.dataTypes])],
            restricted: noted.restricted || found.restricted,
          };
        },
      };
    },
    onComplete: async (plan, state) => {
      const kickOff = plan.context as KickOff | undefined;
      if (!kickOff) return;
      const event: AccessEvent = {
        at: new Date(state.completedAt ?? Date.now()),
        principal: kickOff.principal,
        interaction: 'operation',
        operation: plan.kind,
        method: kickOff.method,
        url: kickOff.url,
        ...(kickOff.resourceType && { resourceType: kickOff.resourceType }),
        ...(kickOff.id && { id: kickOff.id }),
        status: 200,
        patients: state.noted?.patients ?? [],
        dataTypes: (state.noted?.dataTypes ?? []) as AccessEvent['dataTypes'],
        ...(state.noted?.restricted && { restricted: true }),
        clientAddress: kickOff.clientAddress,
      };
      for (const recorder of recorders) await recorder.record(event);
    },
  };
}
