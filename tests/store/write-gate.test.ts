import { describe, expect, it } from 'vitest';
import { WriteGate } from '../../src/store/sqlite/write-gate.js';

/**
 * The write gate two threads sharing a SQLite file take turns through. Both sides are driven
 * from this thread here: their waits are asynchronous, so the order of turns is observable.
 */

const turn = () => new Promise((resolve) => setImmediate(resolve));

function pair() {
  const main = new WriteGate('main');
  const worker = new WriteGate('worker', main.buffer);
  return { main, worker };
}

describe('the SQLite write gate', () => {
  it('lets one side in at a time, and the waiting side in as soon as the other leaves', async () => {
    const { main, worker } = pair();
    const order: string[] = [];
    await main.enter();
    const workerIn = worker.enter().then(() => order.push('worker in'));
    for (let i = 0; i < 5; i++) await turn();
    expect(order).toEqual([]);
    order.push('main out');
    main.leave();
    await workerIn;
    expect(order).toEqual(['main out', 'worker in']);
    worker.leave();
  });

  it('gives the request thread the next turn when both wait', async () => {
    const { main, worker } = pair();
    const order: string[] = [];
    await worker.enter();
    const mainIn = main.enter().then(() => order.push('main'));
    await turn();
    // The worker leaves and at once wants the gate again: the waiting request thread goes first.
    worker.leave();
    const workerAgain = worker.enter().then(() => order.push('worker'));
    await mainIn;
    for (let i = 0; i < 5; i++) await turn();
    expect(order).toEqual(['main']);
    main.leave();
    await workerAgain;
    expect(order).toEqual(['main', 'worker']);
    worker.leave();
  });

  it('can be freed from the side that stays when the other vanished holding it', async () => {
    const { main, worker } = pair();
    await worker.enter();
    let entered = false;
    const mainIn = main.enter().then(() => (entered = true));
    await turn();
    expect(entered).toBe(false);
    main.release('worker');
    await mainIn;
    expect(entered).toBe(true);
    // Releasing a side that does not hold the gate changes nothing.
    main.release('worker');
    const again = worker.enter();
    let workerIn = false;
    void again.then(() => (workerIn = true));
    for (let i = 0; i < 5; i++) await turn();
    expect(workerIn).toBe(false);
    main.leave();
    await again;
    worker.leave();
  });
});
