import { Worker } from 'node:worker_threads';

/**
 * How fast this machine runs JavaScript right now: a fixed piece of work (turning a FHIR
 * Observation into JSON and back, as a server does with every body), timed on one thread alone
 * and on two threads at once.
 *
 * The targets are set for "this 2-core machine", but the machines that run the benches are not
 * all alike, and one machine's host can be busier one hour than the next: the same build's core
 * bench read 5,576 req/s on one session's machine and 3,139 on the next. Printed with every
 * report, before and after its runs, these two times say whether figures from two reports can
 * be compared, and whether the machine changed speed during a run. The pair also shows a host
 * that does not give two threads two cores.
 */

export interface Calibration {
  /** The work on one thread, ms (best of three). */
  oneThreadMs: number;
  /** The same work on each of two threads started together, ms (the slower; best of three). */
  twoThreadsMs: number;
}

const ROUNDS = 18000;

/** The workload, as source: run in this thread and in workers (no file to resolve under tsx or node). */
const WORK_SOURCE = `
function work(rounds) {
  const observation = {
    resourceType: 'Observation',
    id: 'calibration',
    status: 'final',
    category: [{ coding: [{ system: 'http://terminology.hl7.org/CodeSystem/observation-category', code: 'vital-signs' }] }],
    code: { coding: [{ system: 'http://loinc.org', code: '8867-4', display: 'Heart rate' }], text: 'Heart rate' },
    subject: { reference: 'Patient/0b6a9a4e-0000-4000-8000-000000000001' },
    effectiveDateTime: '2024-03-01T10:15:00+08:00',
    valueQuantity: { value: 72, unit: 'beats/minute', system: 'http://unitsofmeasure.org', code: '/min' },
  };
  let checksum = 0;
  for (let i = 0; i < rounds; i++) {
    observation.valueQuantity.value = i % 200;
    const copy = JSON.parse(JSON.stringify(observation));
    checksum += copy.valueQuantity.value + copy.code.text.length;
  }
  return checksum;
}
`;

const work = new Function(`${WORK_SOURCE}; return work;`)() as (rounds: number) => number;

function timeHere(): number {
  const started = performance.now();
  work(ROUNDS);
  return performance.now() - started;
}

/**
 * Each worker warms up, says it is ready, and waits for the start signal, so that the two
 * timed runs overlap whatever each took to start; then it reports its time.
 */
const WORKER_SOURCE = `
const { parentPort, workerData } = require('node:worker_threads');
${WORK_SOURCE}
work(workerData.rounds);
parentPort.postMessage('ready');
const flag = new Int32Array(workerData.start);
Atomics.wait(flag, 0, 0);
const started = performance.now();
work(workerData.rounds);
parentPort.postMessage(performance.now() - started);
`;

async function timeTwoAtOnce(): Promise<number> {
  const start = new Int32Array(new SharedArrayBuffer(4));
  const workers = [0, 1].map(() => new Worker(WORKER_SOURCE, { eval: true, workerData: { rounds: ROUNDS, start: start.buffer } }));
  const ready: Promise<void>[] = [];
  const times = workers.map((worker, i) => {
    let readyNow: () => void = () => undefined;
    ready[i] = new Promise<void>((resolve) => (readyNow = resolve));
    return new Promise<number>((resolve, reject) => {
      worker.on('message', (message: 'ready' | number) => (message === 'ready' ? readyNow() : resolve(message)));
      worker.once('error', reject);
    });
  });
  try {
    await Promise.race([Promise.all(ready), Promise.all(times)]);
    Atomics.store(start, 0, 1);
    Atomics.notify(start, 0);
    return Math.max(...(await Promise.all(times)));
  } finally {
    await Promise.all(workers.map((worker) => worker.terminate()));
  }
}

const round1 = (n: number) => Math.round(n * 10) / 10;

export async function calibrate(): Promise<Calibration> {
  work(ROUNDS); // warm-up
  const one: number[] = [];
  const two: number[] = [];
  for (let i = 0; i < 3; i++) {
    one.push(timeHere());
    two.push(await timeTwoAtOnce());
  }
  return { oneThreadMs: round1(Math.min(...one)), twoThreadsMs: round1(Math.min(...two)) };
}

export function describeCalibration(c: Calibration): string {
  return `${c.oneThreadMs} ms on one thread, ${c.twoThreadsMs} ms on each of two at once`;
}
