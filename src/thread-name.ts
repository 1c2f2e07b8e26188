import { writeFileSync } from 'node:fs';

/**
 * Names the calling thread as the operating system shows it (`top -H`, `ps -L`, `perf`), so that
 * an operator sees which of the server's threads is busy: every Node.js thread is "node"
 * otherwise. Linux only (the thread's own `comm`, at most 15 characters); elsewhere, or where
 * /proc is not writable, the thread keeps its name, which changes nothing else.
 */
export function nameThisThread(name: string): void {
  try {
    writeFileSync('/proc/thread-self/comm', name.slice(0, 15));
  } catch {
    // Not Linux, or no /proc: the name is only a convenience.
  }
}

/** The names this server gives its threads. */
export const THREAD_NAMES = {
  writer: 'fhir-writer',
  audit: 'fhir-audit',
  checkpointer: 'fhir-checkpoint',
} as const;
