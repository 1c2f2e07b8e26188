import { closeSync, existsSync, fsyncSync, mkdirSync, openSync, readdirSync, readFileSync, rmSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import type { AccessEvent } from './events.js';

/**
 * The audit journal: where an access event becomes durable before the request's answer leaves,
 * on the embedded store, so that answers do not wait for the audit trail's database commit.
 *
 * Storing an AuditEvent (sealing it into the hash chain, its version, its search index, the
 * commit) costs about 150 us, on the audit thread (see audit-worker.ts), and every request
 * waited for its event's commit there, behind whatever that thread was doing: on the core
 * bench's reads the request thread sat half idle. Now the request thread appends its events to
 * this file (one write of a few events, as durable as a commit of the store, which does not
 * sync each commit either unless told to: `sync`) and answers; the audit thread stores them
 * behind, many in one commit, and whoever may see AuditEvents waits for it to catch up (see
 * seeingRecordedAudits in audit-index.ts).
 *
 * Files: `<generation>.ndjson`, one event a line (`{"recorded":ms,"event":{...}}`), numbered from
 * 1 in each file; a new generation each time an audit thread starts and whenever the file has
 * grown past `rotateBytes`. `state.json` says how far the audit thread has stored: before each
 * commit it writes which lines the commit holds and the id and hash of its last AuditEvent, so
 * the next start can tell whether that commit happened (the AuditEvent is there with that
 * hash) and stores only the lines after it. A file is removed once all its lines are stored.
 * One server process writes a journal (its own database file's).
 */

export interface JournalLine {
  generation: number;
  line: number;
}

/** An event as the journal holds it: when it was recorded (durable), and the event. */
export interface JournaledEvent {
  recorded: Date;
  event: AccessEvent;
  at: JournalLine;
}

/** What the audit thread wrote before its last commit (see the class comment). */
export interface JournalState {
  /** Lines up to here (inclusive) are stored. */
  stored?: JournalLine;
  /** The commit written after `stored`, if it happened: its last line and its last AuditEvent. */
  storing?: { through: JournalLine; id: string; hash: string };
}

const FILE = /^([0-9]+)\.ndjson$/;
const STATE = 'state.json';
/** The state is written over itself in place, one write, padded to this size. */
const STATE_BYTES = 512;

export const isBefore = (a: JournalLine, b: JournalLine): boolean => a.generation < b.generation || (a.generation === b.generation && a.line < b.line);

/** The generations of the journal files in `dir`, oldest first. */
export function journalGenerations(dir: string): number[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir)
    .flatMap((name) => {
      const match = FILE.exec(name);
      return match ? [Number(match[1])] : [];
    })
    .sort((a, b) => a - b);
}

const fileOf = (dir: string, generation: number) => join(dir, `${generation}.ndjson`);

/**
 * The generation a new writer starts: after every file there is and every line the state
 * names, so positions only grow (the state's may outlive the files).
 */
export function nextGeneration(dir: string): number {
  const state = new JournalReader(dir).readState();
  return Math.max(0, ...journalGenerations(dir), state.stored?.generation ?? 0, state.storing?.through.generation ?? 0) + 1;
}

/** The request thread's side: appends events, a batch a write. */
export class JournalWriter {
  private fd: number | undefined;
  private bytes = 0;
  private lines = 0;

  constructor(
    private readonly dir: string,
    private generation: number,
    private readonly options: { sync: boolean; rotateBytes: number },
  ) {}

  /** Makes the events durable (throws when it cannot); returns the journal line of the first. */
  append(events: AccessEvent[], recorded: Date): JournalLine {
    if (this.fd !== undefined && this.bytes >= this.options.rotateBytes) this.rotate();
    if (this.fd === undefined) {
      mkdirSync(this.dir, { recursive: true });
      this.fd = openSync(fileOf(this.dir, this.generation), 'a');
    }
    const ms = recorded.getTime();
    let text = '';
    for (const event of events) text += `{"recorded":${ms},"event":${JSON.stringify(event)}}\n`;
    const buffer = Buffer.from(text);
    try {
      let written = 0;
      while (written < buffer.length) written += writeSync(this.fd, buffer, written);
      if (this.options.sync) fsyncSync(this.fd);
    } catch (error) {
      // Part of the batch may be in the file: later lines go to a new file, numbered afresh.
      this.rotate();
      throw error;
    }
    this.bytes += buffer.length;
    const first = { generation: this.generation, line: this.lines + 1 };
    this.lines += events.length;
    return first;
  }

  close(): void {
    if (this.fd !== undefined) closeSync(this.fd);
    this.fd = undefined;
  }

  private rotate(): void {
    this.close();
    this.generation++;
    this.bytes = 0;
    this.lines = 0;
  }
}

/** The audit thread's side: what is stored, what is not, and files no longer needed. */
export class JournalReader {
  private stateFd: number | undefined;

  constructor(private readonly dir: string) {}

  readState(): JournalState {
    try {
      return JSON.parse(readFileSync(join(this.dir, STATE), 'utf8')) as JournalState;
    } catch {
      return {};
    }
  }

  /**
   * Written over the old state in place, in one write of the same size: a crash leaves the old
   * state or the new, never an empty file (which would have every line stored again).
   */
  writeState(state: JournalState): void {
    const text = JSON.stringify(state);
    if (text.length > STATE_BYTES) throw new Error('journal state too long');
    if (this.stateFd === undefined) {
      mkdirSync(this.dir, { recursive: true });
      const path = join(this.dir, STATE);
      this.stateFd = openSync(path, existsSync(path) ? 'r+' : 'w');
    }
    writeSync(this.stateFd, text.padEnd(STATE_BYTES, ' '), 0);
  }

  close(): void {
    if (this.stateFd !== undefined) closeSync(this.stateFd);
    this.stateFd = undefined;
  }

  /**
   * The events of the files before generation `before` that come after `stored`, in order.
   * A line that cannot be read (cut short by a crash of the machine mid-write) is reported
   * through `onBadLine` and skipped.
   */
  *unstored(before: number, stored: JournalLine | undefined, onBadLine: (at: JournalLine) => void): Generator<JournaledEvent> {
    for (const generation of journalGenerations(this.dir).filter((g) => g < before)) {
      const lines = readFileSync(fileOf(this.dir, generation), 'utf8').split('\n');
      for (let i = 0; i < lines.length; i++) {
        const at = { generation, line: i + 1 };
        if (lines[i] === '' || (stored && !isBefore(stored, at))) continue;
        const parsed = parseLine(lines[i]!);
        if (parsed) yield { ...parsed, at };
        else onBadLine(at);
      }
    }
  }

  /** Removes the files of generations before `before` (everything in them is stored). */
  removeBefore(before: number): void {
    for (const generation of journalGenerations(this.dir)) if (generation < before) rmSync(fileOf(this.dir, generation), { force: true });
  }
}

function parseLine(text: string): { recorded: Date; event: AccessEvent } | undefined {
  try {
    const { recorded, event } = JSON.parse(text) as { recorded: number; event: AccessEvent & { at: string } };
    if (typeof recorded !== 'number' || typeof event?.at !== 'string') return undefined;
    return { recorded: new Date(recorded), event: { ...event, at: new Date(event.at) } };
  } catch {
    return undefined;
  }
}
