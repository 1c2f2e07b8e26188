import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { SearchCriterion, SearchCursor } from '../../store/port.js';

/**
 * Bulk jobs on disk, one folder each under the bulk data directory: `plan.json` (what to do,
 * written once), `state.json` (how far it got, replaced atomically at every checkpoint) and the
 * NDJSON files. A job is whatever its folder says, so a restarted server resumes from the last
 * checkpoint and nothing else needs to be kept in memory.
 */

/** One output file of an export: a type and the queries whose matches go into it. */
export interface ExportStep {
  type: string;
  where: SearchCriterion[];
}

/** One NDJSON input of an import: a file uploaded with the kick-off (in the job's folder), or an allowed URL. */
export interface ImportInput {
  /** The type the manifest says the file holds; any type when absent (an upload). */
  type?: string;
  url?: string;
  file?: string;
}

export interface JobPlan {
  kind: 'export' | 'import';
  /** The `sub` of the principal that started the job: the only one who may see it. */
  owner: string;
  /** The kick-off request as the client made it. */
  request: string;
  /** ms; the export holds nothing changed after it. */
  transactionTime: number;
  /** Export: one query per output file. */
  steps: ExportStep[];
  /** Import: the inputs, in order, and the base their relative references are read against. */
  inputs?: ImportInput[];
  baseUrl?: string;
  /** Opaque to this room: what the layer that started the job wants back when it completes (its audit record). */
  context?: Record<string, unknown>;
}

export interface JobOutput {
  type: string;
  /** A file of the job (export output, import errors). */
  file?: string;
  /** Where an import input came from. */
  url?: string;
  count: number;
}

export interface JobState {
  status: 'queued' | 'running' | 'done' | 'failed';
  /** The step being worked on, where it stands in the store's order, and how much of its file is good. */
  step: number;
  after?: SearchCursor;
  bytes: number;
  count: number;
  outputs: JobOutput[];
  errors: JobOutput[];
  /** Why the job failed, for the client. */
  failure?: string;
  completedAt?: number;
  /** What the exported records concern, kept with each checkpoint for the audit record of the completed job. */
  noted?: { patients: string[]; dataTypes: string[]; restricted: boolean };
  /** ms; the job and its files are removed after this. */
  expiresAt?: number;
  /** Import: lines of the current input done, resources written per type, identical ones left alone, the error file's good length and lines. */
  line?: number;
  imported?: Record<string, number>;
  unchanged?: number;
  errorBytes?: number;
  errorCount?: number;
}

export const JOB_ID = /^[a-f0-9-]{36}$/;
const FILE_NAME = /^[A-Za-z0-9.-]{1,80}\.ndjson$/;

export class JobFiles {
  /** The directory is made with the first job. */
  constructor(readonly dir: string) {}

  folder(id: string): string {
    return join(this.dir, id);
  }

  /** The path of a job's file, or undefined when the name is not one of ours. */
  file(id: string, name: string): string | undefined {
    if (!JOB_ID.test(id) || !FILE_NAME.test(name)) return undefined;
    return join(this.dir, id, name);
  }

  ids(): string[] {
    if (!existsSync(this.dir)) return [];
    return readdirSync(this.dir).filter((name) => JOB_ID.test(name));
  }

  /** `prepare` puts what the job needs into its folder before the job exists (plan and state are its last files). */
  create(id: string, plan: JobPlan, state: JobState, prepare?: (folder: string) => void): void {
    mkdirSync(this.folder(id), { recursive: true });
    prepare?.(this.folder(id));
    this.writeAtomically(join(this.folder(id), 'plan.json'), JSON.stringify(plan));
    this.saveState(id, state);
  }

  plan(id: string): JobPlan | undefined {
    return this.read<JobPlan>(id, 'plan.json');
  }

  state(id: string): JobState | undefined {
    return this.read<JobState>(id, 'state.json');
  }

  saveState(id: string, state: JobState): void {
    this.writeAtomically(join(this.folder(id), 'state.json'), JSON.stringify(state));
  }

  remove(id: string): void {
    if (JOB_ID.test(id)) rmSync(this.folder(id), { recursive: true, force: true });
  }

  private read<T>(id: string, name: string): T | undefined {
    if (!JOB_ID.test(id)) return undefined;
    const path = join(this.folder(id), name);
    if (!existsSync(path)) return undefined;
    try {
      return JSON.parse(readFileSync(path, 'utf8')) as T;
    } catch {
      // A folder being removed, or one a crash left half made: not a job.
      return undefined;
    }
  }

  /** A crash leaves the old file or the new one, never half of one. */
  private writeAtomically(path: string, text: string): void {
    const temporary = `${path}.tmp`;
    writeFileSync(temporary, text);
    renameSync(temporary, path);
  }
}
