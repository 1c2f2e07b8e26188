import { closeSync, createReadStream, ftruncateSync, openSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { Readable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import type { OperationOutcome } from 'fhir/r4.js';
import type { BodyCodec } from '../../store/codec.js';
import type { ResourceStore } from '../../store/port.js';
import { requireAcceptableDepth } from '../json-depth.js';
import { FhirError, issue, operationOutcome } from '../outcome.js';
import type { JsonResource } from '../resource-input.js';
import type { ResourceService, WriteGuard } from '../resource-service.js';
import { decodeUtf8 } from '../utf8.js';
import type { RunControl } from './export-runner.js';
import type { ImportInput, JobFiles, JobPlan, JobState } from './job-files.js';

/**
 * Runs an import: each input read line by line, each line a resource written with its own id
 * (an update that creates), validated and guarded as a PUT by the same caller would be. A
 * resource identical to the stored one gets no new version, so importing a file again changes
 * nothing. Bad lines go to an error file of OperationOutcomes naming the line. Progress is
 * checkpointed every few hundred lines; a resumed job skips the lines already done (writing
 * one again would change nothing anyway).
 */

export interface ImportWriter {
  /** Throws (a FhirError) when the caller may not write this type. */
  authorize(resourceType: string): void;
  guard?: WriteGuard;
}

export interface ImportDeps {
  store: ResourceStore;
  codec: BodyCodec;
  resources: ResourceService;
  /**
   * The rights of the principal that started the job, as they are now: asked for each line, so
   * a deactivated account, a suspended HCP or a revoked consent stops the lines that follow.
   */
  writerFor(plan: JobPlan): Promise<ImportWriter>;
}

export const IMPORT_ERRORS = 'errors.ndjson';
const CHECKPOINT_LINES = 250;
/** JSON's own whitespace only: String.trim would also take the byte 0xA0 read as latin1 for a space. */
const BLANK = /^[ \t\r\n]*$/;

/** A resource without what the server stamps on every version, keys in a fixed order: two equal ones are the same record. */
function comparable(resource: Record<string, unknown>): string {
  const { meta, ...rest } = resource;
  const { versionId: _v, lastUpdated: _l, ...kept } = (meta ?? {}) as Record<string, unknown>;
  const sorted = (value: unknown): unknown => {
    if (Array.isArray(value)) return value.map(sorted);
    if (value && typeof value === 'object') return Object.fromEntries(Object.keys(value).sort().map((k) => [k, sorted((value as Record<string, unknown>)[k])]));
    return value;
  };
  return JSON.stringify(sorted(Object.keys(kept).length ? { ...rest, meta: kept } : rest));
}

async function open(input: ImportInput, folder: string): Promise<Readable> {
  if (input.file) return createReadStream(join(folder, input.file));
  const url = new URL(input.url!);
  if (url.protocol === 'file:') return createReadStream(fileURLToPath(url));
  const res = await fetch(url, { headers: { accept: 'application/fhir+ndjson' }, redirect: 'error' });
  if (!res.ok || !res.body) throw FhirError.of(502, 'transient', `Fetching ${input.url} answered ${res.status}`);
  return Readable.fromWeb(res.body as import('node:stream/web').ReadableStream);
}

export async function runImport(id: string, plan: JobPlan, state: JobState, files: JobFiles, deps: ImportDeps, control: RunControl, log?: (error: unknown) => void): Promise<void> {
  const inputs = plan.inputs ?? [];
  const errorPath = files.file(id, IMPORT_ERRORS)!;
  const errors = openSync(errorPath, (state.errorBytes ?? 0) > 0 ? 'r+' : 'w');
  try {
    ftruncateSync(errors, state.errorBytes ?? 0);
    const fail = (input: number, line: number, outcome: OperationOutcome) => {
      const where = `Line ${line} of input ${input + 1}${inputs[input]!.url ? ` (${inputs[input]!.url})` : ''}`;
      const named = { ...outcome, issue: outcome.issue.map((i) => ({ ...i, diagnostics: `${where}: ${i.diagnostics ?? ''}` })) };
      const chunk = Buffer.from(`${JSON.stringify(named)}\n`);
      writeSync(errors, chunk, 0, chunk.length, state.errorBytes ?? 0);
      state.errorBytes = (state.errorBytes ?? 0) + chunk.length;
      state.errorCount = (state.errorCount ?? 0) + 1;
    };
    while (state.step < inputs.length) {
      const input = inputs[state.step]!;
      let stream: Readable;
      try {
        stream = await open(input, files.folder(id));
      } catch (error) {
        fail(state.step, 0, error instanceof FhirError ? error.outcome : operationOutcome([issue('error', 'exception', 'The input could not be read')]));
        state.step += 1;
        continue;
      }
      // Read byte for byte (latin1 maps each byte to one character) and decoded per line as
      // UTF-8, so a line that is not UTF-8 is refused on its own instead of stored with U+FFFD.
      stream.setEncoding('latin1');
      const lines = createInterface({ input: stream, crlfDelay: Infinity });
      let number = 0;
      for await (const bytes of lines) {
        number += 1;
        if (number <= (state.line ?? 0) || BLANK.test(bytes)) continue;
        await importLine(bytes, input, deps, plan, state).catch((error: unknown) => {
          if (!(error instanceof FhirError)) log?.(error);
          fail(state.step, number, error instanceof FhirError ? error.outcome : operationOutcome([issue('error', 'exception', 'The resource could not be stored')]));
        });
        if (number % CHECKPOINT_LINES === 0) {
          state.line = number;
          files.saveState(id, state);
          // Requests get their turn between slices of a large file.
          await new Promise((resolve) => setImmediate(resolve));
          if (control.stopped) {
            lines.close();
            stream.destroy();
            return;
          }
        }
      }
      state.step += 1;
      state.line = 0;
      files.saveState(id, state);
    }
    state.outputs = Object.entries(state.imported ?? {}).map(([type, count]) => ({ type, count }));
    state.errors = state.errorCount ? [{ type: 'OperationOutcome', file: IMPORT_ERRORS, count: state.errorCount }] : [];
  } finally {
    closeSync(errors);
  }
}

async function importLine(bytes: string, input: ImportInput, deps: ImportDeps, plan: JobPlan, state: JobState): Promise<void> {
  const text = decodeUtf8(Buffer.from(bytes, 'latin1'));
  if (text === undefined) throw FhirError.of(400, 'invalid', 'The line is not valid UTF-8, which FHIR NDJSON must be');
  let resource: JsonResource;
  try {
    resource = JSON.parse(text) as JsonResource;
  } catch {
    throw FhirError.of(400, 'structure', 'The line is not JSON');
  }
  // Before anything walks it: comparing with the stored version recurses, as validation does.
  requireAcceptableDepth(resource, 'The line');
  const type = typeof resource?.resourceType === 'string' ? resource.resourceType : '';
  if (input.type && type !== input.type) throw FhirError.of(400, 'invalid', `The input holds ${input.type}, not ${type || 'a resource without resourceType'}`);
  if (typeof resource.id !== 'string') throw FhirError.of(400, 'required', 'An imported resource needs its id (it is stored under that id, so importing again does not duplicate it)', [`${type}.id`]);
  const writer = await deps.writerFor(plan);
  writer.authorize(type);
  const current = await deps.store.readCurrent(type, resource.id);
  if (current && !current.deleted && current.body !== undefined && comparable(JSON.parse(deps.codec.decode(current.body)) as Record<string, unknown>) === comparable(resource)) {
    state.unchanged = (state.unchanged ?? 0) + 1;
    return;
  }
  await deps.resources.update(type, resource.id, resource, plan.baseUrl ?? '', undefined, writer.guard);
  state.imported = { ...state.imported, [type]: (state.imported?.[type] ?? 0) + 1 };
}
