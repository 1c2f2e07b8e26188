import { randomUUID } from 'node:crypto';
import type { JobFiles, JobPlan, JobState } from './job-files.js';
import type { RunControl } from './export-runner.js';

/**
 * The asynchronous side of Bulk Data: jobs wait in a queue and run one at a time in the
 * background (two cores are shared with the requests), each from its last checkpoint; on start
 * the jobs a stopped server left running are taken up again. Finished jobs and their files
 * are removed once their retention is over, cancelled ones at once.
 */

export type JobRunner = (id: string, plan: JobPlan, state: JobState, control: RunControl) => Promise<void>;

export interface JobLog {
  error(details: object, message: string): void;
}

export interface BulkJobOptions {
  runners: Partial<Record<JobPlan['kind'], JobRunner>>;
  retentionMs: number;
  log?: JobLog;
  /** Called once a job has completed (e.g. to record it in the audit trail); a failure is logged only. */
  onComplete?: (plan: JobPlan, state: JobState, control: RunControl) => Promise<void>;
  /** Gives each run its observer of pages, e.g. to note what an export held. */
  controlFor?: (plan: JobPlan) => RunControl;
}

export interface Job {
  id: string;
  plan: JobPlan;
  state: JobState;
}

const SWEEP_MS = 60_000;

export class BulkJobs {
  private readonly queue: string[] = [];
  private running: { id: string; control: RunControl; done: Promise<void> } | undefined;
  private sweeper: NodeJS.Timeout | undefined;
  private closed = false;

  constructor(
    private readonly files: JobFiles,
    private readonly options: BulkJobOptions,
  ) {}

  /** Removes what has expired and resumes what was running or waiting. */
  open(): void {
    for (const id of this.files.ids()) {
      const plan = this.files.plan(id);
      const state = this.files.state(id);
      // A folder without both files was being made or removed when the server stopped.
      if (!plan || !state || this.expired(state)) this.files.remove(id);
      else if (state.status === 'queued' || state.status === 'running') this.queue.push(id);
    }
    this.sweeper = setInterval(() => this.sweep(), Math.min(SWEEP_MS, this.options.retentionMs));
    this.sweeper.unref();
    this.pump();
  }

  submit(plan: JobPlan, prepare?: (folder: string) => void): string {
    const id = randomUUID();
    this.files.create(id, plan, { status: 'queued', step: 0, bytes: 0, count: 0, outputs: [], errors: [] }, prepare);
    this.queue.push(id);
    this.pump();
    return id;
  }

  /** The job, if it exists, has not expired, and belongs to `owner`. */
  find(id: string, owner: string): Job | undefined {
    const plan = this.files.plan(id);
    const state = this.files.state(id);
    if (!plan || !state || plan.owner !== owner) return undefined;
    if (this.expired(state)) {
      this.files.remove(id);
      return undefined;
    }
    return { id, plan, state };
  }

  /** Where one of a job's files is; undefined for a name that cannot be one. */
  filePath(id: string, name: string): string | undefined {
    return this.files.file(id, name);
  }

  /** Stops the job if it runs and removes it with its files; false when `owner` has no such job. */
  async cancel(id: string, owner: string): Promise<boolean> {
    if (!this.find(id, owner)) return false;
    const queued = this.queue.indexOf(id);
    if (queued >= 0) this.queue.splice(queued, 1);
    if (this.running?.id === id) {
      this.running.control.stopped = true;
      await this.running.done;
    }
    this.files.remove(id);
    return true;
  }

  /** Stops at the next page boundary; the running job resumes from its checkpoint on the next start. */
  async close(): Promise<void> {
    this.closed = true;
    if (this.sweeper) clearInterval(this.sweeper);
    if (this.running) {
      this.running.control.stopped = true;
      await this.running.done;
    }
  }

  private expired(state: JobState): boolean {
    return state.expiresAt !== undefined && state.expiresAt <= Date.now();
  }

  private sweep(): void {
    for (const id of this.files.ids()) {
      if (this.running?.id === id) continue;
      const state = this.files.state(id);
      if (state && this.expired(state)) this.files.remove(id);
    }
  }

  private pump(): void {
    if (this.running || this.closed) return;
    const id = this.queue.shift();
    if (id === undefined) return;
    const control: RunControl = { stopped: false };
    const done = this.run(id, control).finally(() => {
      this.running = undefined;
      this.pump();
    });
    this.running = { id, control, done };
  }

  private async run(id: string, control: RunControl): Promise<void> {
    const plan = this.files.plan(id);
    const state = this.files.state(id);
    const runner = plan && this.options.runners[plan.kind];
    if (!plan || !state || !runner) return;
    Object.assign(control, this.options.controlFor?.(plan) ?? {}, { stopped: control.stopped });
    try {
      state.status = 'running';
      this.files.saveState(id, state);
      await runner(id, plan, state, control);
      if (control.stopped) return;
      state.status = 'done';
    } catch (error) {
      if (control.stopped) return;
      this.options.log?.error({ err: error, job: id }, 'bulk job failed');
      state.status = 'failed';
      state.failure = `The ${plan.kind} failed on the server; it may be tried again`;
    }
    state.completedAt = Date.now();
    state.expiresAt = state.completedAt + this.options.retentionMs;
    this.files.saveState(id, state);
    if (state.status === 'done' && this.options.onComplete) {
      await this.options.onComplete(plan, state, control).catch((error: unknown) => this.options.log?.error({ err: error, job: id }, 'recording a completed bulk job failed'));
    }
  }
}
