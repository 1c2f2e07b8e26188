import { closeSync, ftruncateSync, openSync, rmSync, writeSync } from 'node:fs';
import type { BodyCodec } from '../../store/codec.js';
import type { ResourceStore } from '../../store/port.js';
import type { JobFiles, JobPlan, JobState } from './job-files.js';

/**
 * Runs an export plan: each step's matches as of the transaction time, page by page in the store's (type, id) order,
 * appended to that step's NDJSON file; after each page the file length and the cursor are
 * checkpointed, so a job interrupted anywhere resumes by cutting the file back to the last
 * checkpoint and asking the store for the rows after it.
 */

export interface RunControl {
  /** Set to stop at the next page boundary. */
  stopped: boolean;
  /** Called with each page's resource bodies (JSON text), e.g. to note what was exported. */
  onPage?: (type: string, bodies: string[], state: JobState) => void;
}

const PAGE = 1000;

export const exportFileName = (step: number, type: string) => `${type}-${step + 1}.ndjson`;

/** One resource per line: stored bodies are single-line JSON, but a body that is not stays valid NDJSON. */
function line(json: string): string {
  return json.includes('\n') ? JSON.stringify(JSON.parse(json)) : json;
}

export async function runExport(id: string, plan: JobPlan, state: JobState, files: JobFiles, store: ResourceStore, codec: BodyCodec, control: RunControl): Promise<void> {
  while (state.step < plan.steps.length) {
    const { type, where } = plan.steps[state.step]!;
    const name = exportFileName(state.step, type);
    const path = files.file(id, name)!;
    // Whatever was written after the last checkpoint is cut off and written again.
    const fd = openSync(path, state.bytes > 0 ? 'r+' : 'w');
    try {
      ftruncateSync(fd, state.bytes);
      let position = state.bytes;
      for (;;) {
        // The embedded store answers synchronously: without a turn of the event loop per page, requests would wait for the whole export.
        await new Promise((resolve) => setImmediate(resolve));
        if (control.stopped) return;
        const hits = await store.search({ resourceTypes: [type], where, sort: [], limit: PAGE, ...(state.after && { after: state.after }) });
        if (control.stopped) return;
        // Only an empty page ends the type: a store may leave out a row it is rewriting at that moment, so a short page is no proof.
        if (hits.length === 0) break;
        // What changed after the transaction time is for the next export (_since), not this one.
        const bodies = hits.filter((h) => h.version.lastUpdated <= plan.transactionTime).map((h) => line(codec.decode(h.version.body!)));
        control.onPage?.(type, bodies, state);
        if (bodies.length) {
          const chunk = Buffer.from(`${bodies.join('\n')}\n`, 'utf8');
          writeSync(fd, chunk, 0, chunk.length, position);
          position += chunk.length;
        }
        state.bytes = position;
        state.count += bodies.length;
        state.after = hits[hits.length - 1]!.cursor;
        files.saveState(id, state);
      }
    } finally {
      closeSync(fd);
    }
    if (state.count > 0) state.outputs.push({ type, file: name, count: state.count });
    else rmSync(path, { force: true });
    state.step += 1;
    state.bytes = 0;
    state.count = 0;
    delete state.after;
    files.saveState(id, state);
  }
}
