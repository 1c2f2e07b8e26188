import { Worker, type ResourceLimits } from 'node:worker_threads';

/**
 * A worker thread running the module `name` beside the module at `besideUrl` (its
 * import.meta.url): the compiled `.js` file, or, when running from the TypeScript sources
 * (tests), the `.ts` file through tsx, which a worker has to register for itself.
 */
export function newModuleThread(besideUrl: string, name: string, workerData: unknown, resourceLimits?: ResourceLimits): Worker {
  const options = { workerData, ...(resourceLimits && { resourceLimits }) };
  if (!besideUrl.endsWith('.ts')) return new Worker(new URL(`./${name}.js`, besideUrl), options);
  const thread = new URL(`./${name}.ts`, besideUrl).href;
  // Resolved from the working directory: the project's, where tests run.
  const bootstrap = `import('tsx/esm/api').then((tsx) => { tsx.register(); return import(${JSON.stringify(thread)}); })`;
  return new Worker(bootstrap, { eval: true, ...options });
}

/**
 * A thread started on first use: once, however many ask meanwhile, and anew once the one
 * `running` gives has gone.
 */
export class ThreadStarter {
  private starting: Promise<Worker> | undefined;

  constructor(
    private readonly start: () => Promise<Worker>,
    private readonly running: () => Worker | undefined,
  ) {}

  started(): Promise<Worker> {
    const worker = this.running();
    if (worker) return Promise.resolve(worker);
    this.starting ??= this.start().finally(() => {
      this.starting = undefined;
    });
    return this.starting;
  }

  /** The running thread, or the one starting (undefined if it fails to start). */
  async current(): Promise<Worker | undefined> {
    return this.running() ?? (await this.starting?.catch(() => undefined));
  }
}
