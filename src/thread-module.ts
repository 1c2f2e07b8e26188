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
