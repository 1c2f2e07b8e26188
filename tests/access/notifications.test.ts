import type { Communication } from 'fhir/r4.js';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { PatientMessage } from '../../src/access/events.js';
import { LogSender, maskDestination, NotificationOutbox, type NotificationOutboxOptions } from '../../src/access/notifications.js';
import { plainJsonCodec } from '../../src/store/codec.js';
import type { ResourceStore } from '../../src/store/port.js';
import { describeEachStore } from '../store/stores.js';
import { BASE, accessEvent, account, bodyOf, searchIds, wrapStore } from './audit-fixtures.js';

/** Patient notifications: one per practitioner per patient per Hong Kong day, durable, dispatched and retried. */

class FakeSender {
  sent: PatientMessage[] = [];
  failures = 0;
  async send(message: PatientMessage): Promise<void> {
    if (this.failures > 0) {
      this.failures--;
      throw new Error('gateway down');
    }
    this.sent.push(message);
  }
}

const put = (store: ResourceStore, resource: Record<string, unknown> & { resourceType: string; id: string }) =>
  store.write({ resourceType: resource.resourceType, id: resource.id, renderBody: () => JSON.stringify(resource) });

const CATEGORY = 'https://ehealth.example.hk/fhir/CodeSystem/notification-category';

describeEachStore('NotificationOutbox', (open) => {
  let store: ResourceStore;
  let sender: FakeSender;
  let now: Date;
  let outbox: NotificationOutbox;
  const make = (s: ResourceStore = store, options: Partial<NotificationOutboxOptions> = {}) =>
    new NotificationOutbox(s, plainJsonCodec, sender, { baseUrl: BASE, clock: () => now, retryBaseMs: 60_000, ...options });

  beforeEach(async () => {
    store = await open();
    sender = new FakeSender();
    now = new Date('2025-03-04T06:00:00.000Z');
    outbox = make();
    await put(store, { resourceType: 'Organization', id: 'org1', name: 'Harbour Clinic' });
    await put(store, { resourceType: 'Organization', id: 'org2', name: 'Kowloon Hospital' });
    await put(store, { resourceType: 'Patient', id: 'p1', telecom: [{ system: 'phone', use: 'mobile', value: '+852 9123 4567' }] });
    await put(store, { resourceType: 'Patient', id: 'p2', telecom: [{ system: 'email', value: 'chan@example.hk' }] });
    await put(store, { resourceType: 'Patient', id: 'p3' });
  });
  afterEach(async () => {
    await outbox.stop();
    await store.close();
  });

  const communications = async (query = '') =>
    Promise.all((await searchIds(store, 'Communication', query)).map(async (id) => bodyOf<Communication>(await store.readCurrent('Communication', id))));

  it("queues, durably before resolving, one Communication per patient an HCProf's request touched, naming the HCP, when and the data types", async () => {
    await outbox.accessed(accessEvent({ at: new Date('2025-03-04T05:06:07Z'), patients: ['p1', 'p2', 'p1'], dataTypes: ['lab-radiology', 'allergies'] }));
    const queued = await communications();
    expect(queued).toHaveLength(2);
    const forP1 = (await communications('patient=Patient/p1'))[0]!;
    expect(forP1).toMatchObject({
      status: 'preparation',
      subject: { reference: 'Patient/p1' },
      recipient: [{ reference: 'Patient/p1' }],
      sender: { reference: 'PractitionerRole/ac1' },
      category: [{ coding: [{ system: CATEGORY, code: 'access' }] }],
    });
    const text = forP1.payload![0]!.contentString!;
    expect(text).toContain('Harbour Clinic');
    expect(text).toContain('2025-03-04 at 13:06 (Hong Kong time)');
    expect(text).toMatch(/Laboratory and radiology/i);
    expect(text).toMatch(/Allerg/i);
    expect(await searchIds(store, 'Communication', 'sender=PractitionerRole/ac1&status=preparation')).toHaveLength(2);
    expect(sender.sent).toEqual([]);
  });

  it('queues nothing for other principals, refused or failed requests, or requests that touched no patient', async () => {
    await outbox.accessed(accessEvent({ principal: { kind: 'system', clientId: 'ha', scopes: [] } }));
    await outbox.accessed(accessEvent({ principal: { kind: 'patient', patientId: 'p1' } }));
    await outbox.accessed(accessEvent({ principal: undefined, status: 401 }));
    await outbox.accessed(accessEvent({ status: 403 }));
    await outbox.accessed(accessEvent({ status: 500 }));
    await outbox.accessed(accessEvent({ patients: [] }));
    expect(await communications()).toEqual([]);
  });

  it('counts a conditional read answered 304 as an access: the professional is shown the record', async () => {
    await outbox.accessed(accessEvent({ status: 304 }));
    expect(await searchIds(store, 'Communication', 'patient=p1&status=preparation')).toHaveLength(1);
  });

  it('one per practitioner per patient per Hong Kong day, whatever the account, concurrency or process; another practitioner and the next day get their own', async () => {
    await outbox.accessed(accessEvent());
    await outbox.accessed(accessEvent({ at: new Date('2025-03-04T15:59:59Z') })); // 23:59:59 in Hong Kong
    await Promise.all(Array.from({ length: 20 }, () => outbox.accessed(accessEvent({ patients: ['p1', 'p2'] }))));
    // The same practitioner's account at another HCP; a second server process with an empty memory.
    await outbox.accessed(accessEvent({ principal: account(1, { accountId: 'ac1-b', organizationId: 'org2' }) }));
    await make().accessed(accessEvent());
    expect((await communications()).map((c) => c.subject?.reference).sort()).toEqual(['Patient/p1', 'Patient/p2']);

    await outbox.accessed(accessEvent({ principal: account(2) }));
    await Promise.all(Array.from({ length: 5 }, () => make().accessed(accessEvent({ principal: account(3), patients: ['p3'] }))));
    await outbox.accessed(accessEvent({ at: new Date('2025-03-04T16:00:00Z') })); // the next day in Hong Kong
    const all = await communications();
    expect(all).toHaveLength(5);
    expect(all.filter((c) => c.sender?.reference === 'PractitionerRole/ac2')).toHaveLength(1);
    expect(all.filter((c) => c.sender?.reference === 'PractitionerRole/ac3')).toHaveLength(1);
    expect(all.filter((c) => c.payload![0]!.contentString!.includes('2025-03-05 at 00:00'))).toHaveLength(1);
  });

  it('restricted access always gets a notification of its own', async () => {
    await outbox.accessed(accessEvent());
    await outbox.accessed(accessEvent({ restricted: true, restrictedReason: 'emergency' }));
    await outbox.accessed(accessEvent({ restricted: true, restrictedReason: 'emergency' }));
    const all = await communications();
    expect(all).toHaveLength(3);
    const restricted = await communications(`category=${encodeURIComponent(`${CATEGORY}|restricted-access`)}`);
    expect(restricted).toHaveLength(2);
    expect(restricted[0]!.payload![0]!.contentString).toMatch(/restricted control/);
    expect(restricted[0]!.payload![0]!.contentString).not.toContain('emergency');
  });

  it('dispatch sends each queued notification to the patient’s contact once and marks it completed', async () => {
    await outbox.accessed(accessEvent({ patients: ['p1', 'p2'] }));
    now = new Date('2025-03-04T06:00:05.000Z');
    expect(await outbox.dispatchPending()).toEqual({ sent: 2, failed: 0, abandoned: 0 });
    expect(sender.sent.map(({ channel, to }) => ({ channel, to })).sort((a, b) => a.channel.localeCompare(b.channel))).toEqual([
      { channel: 'email', to: 'chan@example.hk' },
      { channel: 'sms', to: '+852 9123 4567' },
    ]);
    expect(sender.sent[0]!.text).toContain('Harbour Clinic');
    const [forP1] = await communications('patient=p1');
    expect(forP1).toMatchObject({ status: 'completed', sent: '2025-03-04T06:00:05.000Z', medium: [{ coding: [{ code: 'SMSWRIT' }], text: 'sms' }] });
    expect(await outbox.dispatchPending()).toEqual({ sent: 0, failed: 0, abandoned: 0 });
    expect(sender.sent).toHaveLength(2);
    expect(await searchIds(store, 'Communication', 'status=completed&patient=p2')).toHaveLength(1);
  });

  it('a failing sender is retried after a backoff, and a patient without a contact ends not-done', async () => {
    await outbox.accessed(accessEvent({ patients: ['p1', 'p3'] }));
    sender.failures = 1;
    expect(await outbox.dispatchPending()).toEqual({ sent: 0, failed: 1, abandoned: 1 });
    const [noContact] = await communications('patient=p3');
    expect(noContact).toMatchObject({ status: 'not-done', statusReason: { text: expect.stringMatching(/no contact/) } });
    const [waiting] = await communications('patient=p1');
    expect(waiting!.status).toBe('preparation');
    expect(waiting!.extension).toContainEqual({ url: 'https://ehealth.example.hk/fhir/StructureDefinition/notification-attempts', valueInteger: 1 });

    expect(await outbox.dispatchPending()).toEqual({ sent: 0, failed: 0, abandoned: 0 });
    now = new Date(now.getTime() + 61_000);
    expect(await outbox.dispatchPending()).toEqual({ sent: 1, failed: 0, abandoned: 0 });
    const [delivered] = await communications('patient=p1');
    expect(delivered!.status).toBe('completed');
    expect(sender.sent).toHaveLength(1);
  });

  it('gives up after maxAttempts', async () => {
    const limited = make(store, { maxAttempts: 2, retryBaseMs: 0 });
    await limited.accessed(accessEvent());
    sender.failures = 5;
    expect(await limited.dispatchPending()).toMatchObject({ failed: 1 });
    expect(await limited.dispatchPending()).toMatchObject({ abandoned: 1 });
    expect((await communications())[0]).toMatchObject({ status: 'not-done', statusReason: { text: 'Not delivered after 2 attempts' } });
  });

  it('takes over a claim left by a process that died while sending', async () => {
    await outbox.accessed(accessEvent());
    const [queued] = await searchIds(store, 'Communication', '');
    const current = await store.readCurrent('Communication', queued!);
    await store.write({ resourceType: 'Communication', id: queued!, renderBody: () => JSON.stringify({ ...bodyOf(current), status: 'in-progress' }), index: { entries: [{ param: 'status', values: [{ value: 'in-progress' }] }, { param: 'category', values: [{ system: CATEGORY, value: 'access' }] }], sortKeys: {}, patients: [] } });
    expect(await outbox.dispatchPending()).toMatchObject({ sent: 0 });
    const later = make(store, { claimTimeoutMs: 0 });
    now = new Date(Date.now() + 1000);
    expect(await later.dispatchPending()).toMatchObject({ sent: 1 });
  });

  it('the timer dispatches until stopped, and survives a failing store', async () => {
    let broken = false;
    const flaky = wrapStore(store, {
      search: async (query) => {
        if (broken) throw new Error('store down');
        return store.search(query);
      },
    });
    const warnings: string[] = [];
    const timed = make(flaky, { intervalMs: 10, log: { info: () => undefined, warn: (_obj: unknown, msg?: string) => void warnings.push(msg ?? '') } as never });
    timed.start();
    try {
      await timed.accessed(accessEvent());
      await until(() => sender.sent.length === 1);
      broken = true;
      await until(() => warnings.length > 0);
      broken = false;
      await timed.accessed(accessEvent({ principal: account(2) }));
      await until(() => sender.sent.length === 2);
    } finally {
      await timed.stop();
    }
    await timed.accessed(accessEvent({ principal: account(3) }));
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(sender.sent).toHaveLength(2);
    expect(await searchIds(store, 'Communication', 'status=preparation')).toHaveLength(1);
  });

  it('notifyPatient sends a one-off message now and records it, keeping a secret out of the record', async () => {
    const contact = await outbox.notifyPatient('p1', 'Your eHealth one-time password is 123456', { recordedText: 'A one-time password was sent' });
    expect(contact).toEqual({ channel: 'sms', to: '+852 9123 4567' });
    expect(sender.sent).toEqual([{ channel: 'sms', to: '+852 9123 4567', text: 'Your eHealth one-time password is 123456' }]);
    const [recorded] = await communications('patient=p1');
    expect(recorded).toMatchObject({ status: 'completed', payload: [{ contentString: 'A one-time password was sent' }], category: [{ coding: [{ code: 'message' }] }] });
    expect(JSON.stringify(recorded)).not.toContain('123456');
    expect(await outbox.notifyPatient('p3', 'hello')).toBeUndefined();
    expect(await outbox.notifyPatient('nobody', 'hello')).toBeUndefined();
    expect(await outbox.dispatchPending()).toEqual({ sent: 0, failed: 0, abandoned: 0 });
  });
});

async function until(condition: () => boolean, timeoutMs = 5_000): Promise<void> {
  const start = Date.now();
  while (!condition()) {
    if (Date.now() - start > timeoutMs) throw new Error('timed out waiting');
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

describe('LogSender', () => {
  it('logs the channel and a masked destination, never the text', async () => {
    const lines: { obj: Record<string, unknown>; msg: string }[] = [];
    const sender = new LogSender({ info: (obj: Record<string, unknown>, msg: string) => void lines.push({ obj, msg }) } as never);
    await sender.send({ channel: 'sms', to: '+852 9123 4567', text: 'your HIV test result' });
    await sender.send({ channel: 'email', to: 'chan.tai.man@example.hk', text: 'secret' });
    await sender.send({ channel: 'post', to: 'Flat 1, 2 Nathan Road, Kowloon', text: 'secret' });
    expect(lines.map((l) => l.obj)).toEqual([
      { channel: 'sms', to: '***567' },
      { channel: 'email', to: 'c***@example.hk' },
      { channel: 'post', to: '[postal address]' },
    ]);
    expect(JSON.stringify(lines)).not.toMatch(/HIV|secret|9123|Nathan|chan\.tai/);
    expect(maskDestination({ channel: 'email', to: 'nobody' })).toBe('***@');
  });
});
