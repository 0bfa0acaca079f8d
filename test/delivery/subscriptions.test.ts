import type {
  AuditEvent,
  Bundle,
  Communication,
  OperationOutcome,
  Parameters,
  ParametersParameter,
  Subscription,
} from '@medplum/fhirtypes';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { startMockReceiver, type MockReceiver } from '../../bench/mock-receiver.js';
import { verifySignature } from '../../src/delivery/signature.js';
import {
  dedupeKey,
  fhirRequest,
  listenDeliveryApp,
  progressCommunication,
  SECRET,
  sleep,
  startCaptureServer,
  topicSubscription,
  TOPIC,
  waitFor,
  type CapturedRequest,
  type DeliveryApp,
} from '../support/delivery-app.js';

/**
 * Topic Subscriptions end to end, in process: the app composed as main.ts composes it, a
 * DeliveryWorker with a fast retry policy, and real HTTP receivers on loopback. Each test uses its
 * own recipient (Practitioner/dr-<name>), so subscriptions of different tests never match each
 * other's Communications.
 */

let app: DeliveryApp;
const cleanups: (() => Promise<void>)[] = [];

beforeAll(async () => {
  app = await listenDeliveryApp({ timeoutMs: 2_000 });
  app.worker.start();
});
afterEach(async () => {
  for (const fn of cleanups.splice(0).reverse()) await fn();
});
afterAll(async () => {
  await app.close();
});

async function capture() {
  const server = await startCaptureServer();
  cleanups.push(() => server.close());
  return server;
}

async function receiver(secret = SECRET): Promise<MockReceiver> {
  const r = await startMockReceiver({ secret });
  cleanups.push(() => r.close());
  return r;
}

async function subscribe(subscription: Subscription): Promise<Subscription> {
  const res = await fhirRequest<Subscription>('POST', `${app.fhirBase}/Subscription`, subscription);
  expect(res.status, JSON.stringify(res.body)).toBe(201);
  return res.body;
}

async function communicate(value: string, recipient: string): Promise<Communication> {
  const res = await fhirRequest<Communication>(
    'POST',
    `${app.fhirBase}/Communication`,
    progressCommunication(value, recipient),
  );
  expect(res.status, JSON.stringify(res.body)).toBe(201);
  return res.body;
}

async function readSubscription(id: string): Promise<Subscription> {
  const res = await fhirRequest<Subscription>('GET', `${app.fhirBase}/Subscription/${id}`);
  expect(res.status).toBe(200);
  return res.body;
}

/** Versions written server-wide: unchanged means the request wrote nothing. */
async function versionCount(): Promise<number> {
  const res = await fhirRequest<Bundle>('GET', `${app.fhirBase}/_history?_count=0`);
  return res.body.total as number;
}

function unique(prefix: string): string {
  return `${prefix}-${Math.random().toString(36).slice(2, 10)}`;
}

function statusParameters(bundle: Bundle): Parameters {
  return bundle.entry?.[0]?.resource as Parameters;
}

function param(bundle: Bundle, name: string): ParametersParameter | undefined {
  return statusParameters(bundle).parameter?.find((p) => p.name === name);
}

function eventNumbers(bundle: Bundle): number[] {
  return (statusParameters(bundle).parameter ?? [])
    .filter((p) => p.name === 'notification-event')
    .map((p) => Number(p.part?.find((x) => x.name === 'event-number')?.valueString));
}

function focusReferences(bundle: Bundle): (string | undefined)[] {
  return (statusParameters(bundle).parameter ?? [])
    .filter((p) => p.name === 'notification-event')
    .map((p) => p.part?.find((x) => x.name === 'focus')?.valueReference?.reference);
}

function communicationsIn(bundle: Bundle): Communication[] {
  return (bundle.entry ?? [])
    .slice(1)
    .map((e) => e.resource as Communication)
    .filter((r) => r?.resourceType === 'Communication');
}

const parse = (r: CapturedRequest): Bundle => JSON.parse(r.body) as Bundle;

describe('Subscription validation and activation', () => {
  it('a topic Subscription is activated on create (requested → active)', async () => {
    const hook = await capture();
    const created = await subscribe(
      topicSubscription(hook.url, { filter: 'Communication?recipient=Practitioner/dr-act' }),
    );
    expect(created.status).toBe('active');
    expect((await readSubscription(created.id as string)).status).toBe('active');
  });

  it('a classic query-criteria Subscription is stored as sent, stays requested, and gets nothing', async () => {
    const hook = await capture();
    const created = await subscribe({
      resourceType: 'Subscription',
      status: 'requested',
      reason: 'classic R4',
      criteria: 'Communication?recipient=Practitioner/dr-classic',
      channel: { type: 'rest-hook', endpoint: hook.url, payload: 'application/fhir+json' },
    });
    expect(created.status).toBe('requested');
    await communicate(unique('classic'), 'Practitioner/dr-classic');
    await sleep(300);
    expect(hook.requests).toEqual([]);
    const status = await fhirRequest<Bundle>('GET', `${app.fhirBase}/Subscription/${created.id}/$status`);
    const parameters = status.body.entry?.[0]?.resource as Bundle;
    expect(JSON.stringify(parameters)).toContain('"valueCode":"requested"');
    expect(JSON.stringify(parameters)).toContain(
      '"name":"events-since-subscription-start","valueString":"0"',
    );
  });

  const endpoint = 'http://127.0.0.1:9/hook';
  const withFilter = (filter: string | undefined): Subscription => {
    const s = topicSubscription(endpoint, { filter: filter ?? 'x' });
    if (filter === undefined) delete (s as { _criteria?: unknown })._criteria;
    return s;
  };
  const withChannel = (channel: Partial<Subscription['channel']>): Subscription => {
    const s = topicSubscription(endpoint);
    return { ...s, channel: { ...s.channel, ...channel } };
  };
  const withContent = (code: string): Subscription => {
    const s = topicSubscription(endpoint);
    return {
      ...s,
      channel: {
        ...s.channel,
        _payload: {
          extension: [
            {
              url: 'http://hl7.org/fhir/uv/subscriptions-backport/StructureDefinition/backport-payload-content',
              valueCode: code,
            },
          ],
        },
      } as Subscription['channel'],
    };
  };
  const bad: [string, Subscription, string][] = [
    ['no filter', withFilter(undefined), 'Subscription._criteria'],
    ['a filter on another resource type', withFilter('Patient?name=smith'), 'Subscription._criteria'],
    ['a filter without parameters', withFilter('Communication'), 'Subscription._criteria'],
    [
      'a filter on a parameter outside the topic',
      withFilter('Communication?status=completed'),
      'Subscription._criteria',
    ],
    [
      'a filter that is not a valid search',
      withFilter('Communication?recipient:bogus=Practitioner/1'),
      'Subscription._criteria',
    ],
    [
      'an ftp endpoint',
      withChannel({ endpoint: 'ftp://referrer.example.org/hook' }),
      'Subscription.channel.endpoint',
    ],
    [
      'an endpoint that is not a URL',
      withChannel({ endpoint: 'referrer.example.org' }),
      'Subscription.channel.endpoint',
    ],
    ['no endpoint', withChannel({ endpoint: undefined }), 'Subscription.channel.endpoint'],
    // These two passed the pattern check but could never be POSTed to (fetch throws before
    // sending, which the worker took for a network error and retried for 24 h).
    [
      'an endpoint that does not parse as a URL',
      withChannel({ endpoint: 'http://[::1/hook' }),
      'Subscription.channel.endpoint',
    ],
    [
      'an endpoint with an out-of-range port',
      withChannel({ endpoint: 'http://127.0.0.1:99999/hook' }),
      'Subscription.channel.endpoint',
    ],
    [
      'a header with an invalid name',
      withChannel({ header: ['Bad Header: x'] }),
      'Subscription.channel.header',
    ],
    [
      'a header without a colon',
      withChannel({ header: ['Authorization Bearer abc'] }),
      'Subscription.channel.header',
    ],
    ['a websocket channel', withChannel({ type: 'websocket' }), 'Subscription.channel.type'],
    ['an XML payload', withChannel({ payload: 'application/fhir+xml' }), 'Subscription.channel.payload'],
    ['an unknown payload content', withContent('everything'), 'Subscription.channel._payload'],
  ];

  it.each(bad)(
    'a topic Subscription with %s is refused: 422 business-rule, nothing stored',
    async (_what, body, expression) => {
      const before = await versionCount();
      const res = await fhirRequest<OperationOutcome>('POST', `${app.fhirBase}/Subscription`, body);
      expect(res.status, JSON.stringify(res.body)).toBe(422);
      expect(res.body.resourceType).toBe('OperationOutcome');
      const issue = res.body.issue?.find((i) => i.expression?.includes(expression));
      expect(issue, JSON.stringify(res.body)).toBeDefined();
      expect(issue?.code).toBe('business-rule');
      expect(await versionCount()).toBe(before);
    },
  );

  it('every problem is reported at once', async () => {
    const s = withFilter('Patient?name=smith');
    const res = await fhirRequest<OperationOutcome>('POST', `${app.fhirBase}/Subscription`, {
      ...s,
      channel: { ...s.channel, endpoint: 'mailto:someone@example.org' },
    });
    expect(res.status).toBe(422);
    expect(res.body.issue?.map((i) => i.expression?.[0]).sort()).toEqual([
      'Subscription._criteria',
      'Subscription.channel.endpoint',
    ]);
    expect(res.body.issue?.every((i) => i.code === 'business-rule')).toBe(true);
  });

  it('an update that breaks a rule is refused and leaves the Subscription as it was', async () => {
    const hook = await capture();
    const created = await subscribe(
      topicSubscription(hook.url, { filter: 'Communication?recipient=Practitioner/dr-upd' }),
    );
    const res = await fhirRequest<OperationOutcome>('PUT', `${app.fhirBase}/Subscription/${created.id}`, {
      ...created,
      channel: { ...created.channel, endpoint: 'file:///etc/passwd' },
    });
    expect(res.status).toBe(422);
    const current = await readSubscription(created.id as string);
    expect(current.meta?.versionId).toBe('1');
    expect(current.channel.endpoint).toBe(hook.url);
  });
});

describe('delivery of matching Communications', () => {
  it('delivers each matching Communication once, numbered 1, 2, 3 without gaps, signed, with its headers', async () => {
    const hook = await capture();
    const recipient = 'Practitioner/dr-seq';
    const subscription = await subscribe({
      ...topicSubscription(hook.url, { filter: `Communication?recipient=${recipient}` }),
    });
    // A channel header the receiver asked for (e.g. its own bearer token).
    await fhirRequest('PUT', `${app.fhirBase}/Subscription/${subscription.id}`, {
      ...subscription,
      channel: { ...subscription.channel, header: ['Authorization: Bearer referrer-token'] },
    });
    const values = [unique('seq'), unique('seq'), unique('seq')];
    const created: Communication[] = [];
    for (const value of values) created.push(await communicate(value, recipient));
    await waitFor('3 notifications', () => hook.requests.length >= 3, 10_000);
    await sleep(200); // nothing more may arrive
    expect(hook.requests).toHaveLength(3);

    const byNumber = new Map<number, { request: CapturedRequest; bundle: Bundle }>();
    for (const request of hook.requests) {
      const bundle = parse(request);
      expect(eventNumbers(bundle)).toHaveLength(1);
      byNumber.set(eventNumbers(bundle)[0] as number, { request, bundle });
    }
    expect([...byNumber.keys()].sort()).toEqual([1, 2, 3]);
    for (const [n, { request, bundle }] of byNumber) {
      expect(request.method).toBe('POST');
      expect(request.headers['content-type']).toBe('application/fhir+json');
      expect(request.headers.authorization).toBe('Bearer referrer-token');
      const signature = request.headers['x-signature'] as string;
      expect(signature).toMatch(/^t=\d+,v1=[0-9a-f]{64}$/);
      expect(verifySignature(SECRET, request.body, signature, Math.floor(Date.now() / 1000))).toBe(true);
      expect(verifySignature('not-the-secret', request.body, signature, Math.floor(Date.now() / 1000))).toBe(
        false,
      );
      expect(bundle.type).toBe('history');
      expect(param(bundle, 'type')?.valueCode).toBe('event-notification');
      expect(param(bundle, 'topic')?.valueCanonical).toBe(TOPIC);
      expect(param(bundle, 'subscription')?.valueReference?.reference).toBe(
        `${app.fhirBase}/Subscription/${subscription.id}`,
      );
      expect(param(bundle, 'events-since-subscription-start')?.valueString).toBe(String(n));
      // Events are numbered in commit order: event n is the n-th Communication created.
      const communication = created[n - 1] as Communication;
      expect(focusReferences(bundle)).toEqual([`${app.fhirBase}/Communication/${communication.id}`]);
      expect(communicationsIn(bundle).map((c) => c.identifier?.[0]?.value)).toEqual([values[n - 1]]);
    }
  });

  it('a Communication to another recipient is not delivered and takes no event number', async () => {
    const hook = await capture();
    const subscription = await subscribe(
      topicSubscription(hook.url, { filter: 'Communication?recipient=Practitioner/dr-mine' }),
    );
    await communicate(unique('other'), 'Practitioner/dr-someone-else');
    const mine = unique('mine');
    await communicate(mine, 'Practitioner/dr-mine');
    await waitFor('the matching notification', () => hook.requests.length >= 1);
    await sleep(200);
    expect(hook.requests).toHaveLength(1);
    const bundle = parse(hook.requests[0] as CapturedRequest);
    expect(eventNumbers(bundle)).toEqual([1]);
    expect(communicationsIn(bundle).map((c) => c.identifier?.[0]?.value)).toEqual([mine]);
    const status = await fhirRequest<Bundle>(
      'GET',
      `${app.fhirBase}/Subscription/${subscription.id}/$status`,
    );
    expect(JSON.stringify(status.body)).toContain(
      '"name":"events-since-subscription-start","valueString":"1"',
    );
  });

  it('the real receiver verifies the signatures and dedupes: 5 Communications, 5 unique, 0 duplicates', async () => {
    const r = await receiver();
    await subscribe(topicSubscription(r.url, { filter: 'Communication?recipient=Practitioner/dr-rx' }));
    const values = Array.from({ length: 5 }, () => unique('rx'));
    await Promise.all(values.map((v) => communicate(v, 'Practitioner/dr-rx')));
    await waitFor('5 unique', () => r.unique.size >= 5);
    expect([...r.unique.keys()].sort()).toEqual(values.map(dedupeKey).sort());
    expect(r.duplicates).toBe(0);
    expect(r.refused).toBe(0);
    expect(r.received.every((n) => n.signatureValid)).toBe(true);
    expect(r.received.flatMap((n) => n.eventNumbers).sort()).toEqual([1, 2, 3, 4, 5]);
  });

  it('a receiver that holds another secret refuses (401): the Subscription goes to error', async () => {
    const r = await receiver('rotated-secret');
    const subscription = await subscribe(
      topicSubscription(r.url, { filter: 'Communication?recipient=Practitioner/dr-rotated' }),
    );
    await communicate(unique('rotated'), 'Practitioner/dr-rotated');
    await waitFor(
      'status error',
      async () => (await readSubscription(subscription.id as string)).status === 'error',
    );
    expect(r.refused).toBe(1);
    expect(r.received).toEqual([]);
    expect((await readSubscription(subscription.id as string)).error).toContain('HTTP 401');
  });
});

describe('payload content', () => {
  it('full-resource carries the Communication, id-only only its reference, empty neither', async () => {
    const recipient = 'Practitioner/dr-content';
    const hooks = { full: await capture(), idOnly: await capture(), empty: await capture() };
    const filter = `Communication?recipient=${recipient}`;
    await subscribe(topicSubscription(hooks.full.url, { filter, content: 'full-resource' }));
    await subscribe(topicSubscription(hooks.idOnly.url, { filter, content: 'id-only' }));
    await subscribe(topicSubscription(hooks.empty.url, { filter, content: 'empty' }));
    const value = unique('content');
    const communication = await communicate(value, recipient);
    await waitFor('3 notifications', () => Object.values(hooks).every((h) => h.requests.length >= 1));
    const reference = `${app.fhirBase}/Communication/${communication.id}`;

    const full = parse(hooks.full.requests[0] as CapturedRequest);
    expect(full.entry).toHaveLength(2);
    expect(focusReferences(full)).toEqual([reference]);
    expect(full.entry?.[1]?.fullUrl).toBe(reference);
    expect(communicationsIn(full)[0]).toEqual(communication);

    const idOnly = parse(hooks.idOnly.requests[0] as CapturedRequest);
    expect(idOnly.entry).toHaveLength(1);
    expect(focusReferences(idOnly)).toEqual([reference]);
    expect(hooks.idOnly.requests[0]?.body).not.toContain(value);

    const empty = parse(hooks.empty.requests[0] as CapturedRequest);
    expect(empty.entry).toHaveLength(1);
    expect(eventNumbers(empty)).toEqual([1]);
    expect(focusReferences(empty)).toEqual([undefined]);
    expect(hooks.empty.requests[0]?.body).not.toContain(communication.id as string);
  });
});

describe('$status and $events', () => {
  let subscription: Subscription;
  const created: Communication[] = [];
  const recipient = 'Practitioner/dr-ops';

  beforeAll(async () => {
    const hook = await startCaptureServer();
    subscription = await subscribe(
      topicSubscription(hook.url, { filter: `Communication?recipient=${recipient}`, content: 'id-only' }),
    );
    for (let i = 1; i <= 4; i++) created.push(await communicate(`ops-${i}-${unique('x')}`, recipient));
    await waitFor('4 notifications', () => hook.requests.length >= 4);
    await hook.close();
  });

  it('$status answers a searchset with the SubscriptionStatus: 4 events since the start', async () => {
    const res = await fhirRequest<Bundle>('GET', `${app.fhirBase}/Subscription/${subscription.id}/$status`);
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ resourceType: 'Bundle', type: 'searchset', total: 1 });
    const status = res.body.entry?.[0]?.resource as Parameters;
    const p = (name: string) => status.parameter?.find((x) => x.name === name);
    expect(status.resourceType).toBe('Parameters');
    expect(p('type')?.valueCode).toBe('query-status');
    expect(p('status')?.valueCode).toBe('active');
    expect(p('events-since-subscription-start')?.valueString).toBe('4');
    expect(p('subscription')?.valueReference?.reference).toBe(
      `${app.fhirBase}/Subscription/${subscription.id}`,
    );
  });

  it('$events replays a range with full resources on request', async () => {
    const res = await fhirRequest<Bundle>(
      'GET',
      `${app.fhirBase}/Subscription/${subscription.id}/$events?eventsSinceNumber=2&eventsUntilNumber=3&content=full-resource`,
    );
    expect(res.status).toBe(200);
    expect(res.body.type).toBe('history');
    expect(param(res.body, 'type')?.valueCode).toBe('query-event');
    expect(param(res.body, 'events-since-subscription-start')?.valueString).toBe('4');
    expect(eventNumbers(res.body)).toEqual([2, 3]);
    expect(communicationsIn(res.body).map((c) => c.id)).toEqual([created[1]?.id, created[2]?.id]);
    expect(focusReferences(res.body)).toEqual([
      `${app.fhirBase}/Communication/${created[1]?.id}`,
      `${app.fhirBase}/Communication/${created[2]?.id}`,
    ]);
  });

  it("$events defaults to every event and to the subscription's own content (id-only)", async () => {
    const res = await fhirRequest<Bundle>('GET', `${app.fhirBase}/Subscription/${subscription.id}/$events`);
    expect(res.status).toBe(200);
    expect(eventNumbers(res.body)).toEqual([1, 2, 3, 4]);
    expect(communicationsIn(res.body)).toEqual([]);
  });

  it('$events from a number past the last event answers no events', async () => {
    const res = await fhirRequest<Bundle>(
      'GET',
      `${app.fhirBase}/Subscription/${subscription.id}/$events?eventsSinceNumber=5`,
    );
    expect(res.status).toBe(200);
    expect(eventNumbers(res.body)).toEqual([]);
  });

  it('bad parameters answer 400, an unknown Subscription 404, an unknown operation 404', async () => {
    const base = `${app.fhirBase}/Subscription/${subscription.id}`;
    expect((await fhirRequest('GET', `${base}/$events?eventsSinceNumber=two`)).status).toBe(400);
    expect((await fhirRequest('GET', `${base}/$events?eventsUntilNumber=-1`)).status).toBe(400);
    expect((await fhirRequest('GET', `${base}/$events?content=everything`)).status).toBe(400);
    expect((await fhirRequest('GET', `${app.fhirBase}/Subscription/nope/$status`)).status).toBe(404);
    expect((await fhirRequest('GET', `${app.fhirBase}/Subscription/nope/$events`)).status).toBe(404);
    expect((await fhirRequest('GET', `${base}/$replay`)).status).toBe(404);
  });
});

describe('AuditEvent per delivery attempt', () => {
  it('records every attempt, failed and delivered, searchable by the Subscription', async () => {
    const r = await receiver();
    r.setMode({ mode: 'status', status: 503 });
    const subscription = await subscribe(
      topicSubscription(r.url, { filter: 'Communication?recipient=Practitioner/dr-audit' }),
    );
    const communication = await communicate(unique('audit'), 'Practitioner/dr-audit');
    await waitFor('2 refused attempts', () => r.refused >= 2);
    r.setMode({ mode: 'ok' });
    await waitFor('the delivery', () => r.received.length >= 1);
    const attempts = r.refused + r.received.length;
    const search = async () =>
      (
        await fhirRequest<Bundle>(
          'GET',
          `${app.fhirBase}/AuditEvent?entity=Subscription/${subscription.id}&_count=100`,
        )
      ).body;
    await waitFor('an AuditEvent per attempt', async () => (await search()).total === attempts);
    const events = ((await search()).entry ?? []).map((e) => e.resource as AuditEvent);
    expect(events).toHaveLength(attempts);
    const byAttempt = new Map(
      events.map((e) => [Number(/attempt (\d+)/.exec(e.outcomeDesc ?? '')?.[1]), e] as const),
    );
    expect([...byAttempt.keys()].sort((a, b) => a - b)).toEqual(
      Array.from({ length: attempts }, (_, i) => i + 1),
    );
    for (const [n, event] of byAttempt) {
      const last = n === attempts;
      expect(event.outcome).toBe(last ? '0' : '4');
      expect(event.outcomeDesc).toBe(`Notification 1 attempt ${n}: HTTP ${last ? 200 : 503}`);
      expect(event.type?.code).toBe('110106');
      expect(event.agent?.[1]?.who?.display).toBe(`127.0.0.1:${r.port}`);
      expect(event.entity?.map((x) => x.what?.reference)).toEqual([
        `Subscription/${subscription.id}`,
        `Communication/${communication.id}/_history/1`,
      ]);
    }
  });
});

describe('Retry-After end to end', () => {
  it('a 503 with Retry-After: 1 delays the next attempt up to the cap (500 ms here; the first backoff is < 50 ms)', async () => {
    const hook = await capture();
    hook.status = 503;
    hook.responseHeaders = { 'retry-after': '1' };
    await subscribe(topicSubscription(hook.url, { filter: 'Communication?recipient=Practitioner/dr-later' }));
    await communicate(unique('later'), 'Practitioner/dr-later');
    await waitFor('the first attempt', () => hook.requests.length >= 1);
    hook.status = 200;
    await waitFor('the second attempt', () => hook.requests.length >= 2, 5_000);
    const [first, second] = hook.requests as [CapturedRequest, CapturedRequest];
    // Retry-After asks 1 s; the worker's policy caps every delay at 500 ms (FAST_RETRY).
    expect(second.receivedAt - first.receivedAt).toBeGreaterThanOrEqual(480);
    expect(second.receivedAt - first.receivedAt).toBeLessThan(2_000);
    // The retry is a fresh request: rebuilt and signed again, the same event.
    expect(eventNumbers(parse(second))).toEqual(eventNumbers(parse(first)));
    expect(second.headers['x-signature']).toBeDefined();
    await sleep(100);
    expect(hook.requests).toHaveLength(2);
  });
});

describe('pull, alongside push', () => {
  it('Communications can be polled by recipient and _lastUpdated, and through _history?_since', async () => {
    const recipient = 'Practitioner/dr-pull';
    const before = await communicate(unique('pull-before'), recipient);
    const since = before.meta?.lastUpdated as string;
    const after = [
      await communicate(unique('pull'), recipient),
      await communicate(unique('pull'), recipient),
    ];
    await communicate(unique('pull-other'), 'Practitioner/dr-not-pull');

    const search = await fhirRequest<Bundle>(
      'GET',
      `${app.fhirBase}/Communication?recipient=${recipient}&_lastUpdated=gt${encodeURIComponent(since)}`,
    );
    expect(search.status).toBe(200);
    expect((search.body.entry ?? []).map((e) => e.resource?.id).sort()).toEqual(
      after.map((c) => c.id).sort(),
    );

    const all = await fhirRequest<Bundle>('GET', `${app.fhirBase}/Communication?recipient=${recipient}`);
    expect(all.body.entry).toHaveLength(3);

    const history = await fhirRequest<Bundle>(
      'GET',
      `${app.fhirBase}/Communication/_history?_since=${encodeURIComponent(since)}&_count=100`,
    );
    expect(history.status).toBe(200);
    const ids = (history.body.entry ?? []).map((e) => e.resource?.id);
    for (const c of [before, ...after]) expect(ids).toContain(c.id);
    expect((history.body.entry ?? []).every((e) => e.resource?.resourceType === 'Communication')).toBe(true);
  });
});

describe('the worker is woken by commits, not by its poll', () => {
  it('with a 30 s poll, each Communication still arrives within a moment, and stop() is prompt', async () => {
    const slow = await listenDeliveryApp({ pollMs: 30_000 });
    try {
      slow.worker.start();
      const hook = await startCaptureServer();
      cleanups.push(() => hook.close());
      const res = await fhirRequest('POST', `${slow.fhirBase}/Subscription`, topicSubscription(hook.url));
      expect(res.status).toBe(201);
      const latencies: number[] = [];
      for (let i = 0; i < 20; i++) {
        await sleep(Math.floor(Math.random() * 30));
        const before = hook.requests.length;
        const started = Date.now();
        const created = await fhirRequest(
          'POST',
          `${slow.fhirBase}/Communication`,
          progressCommunication(unique('wake')),
        );
        expect(created.status, JSON.stringify(created.body) + JSON.stringify(slow.logs.slice(-3))).toBe(201);
        await waitFor(`notification ${i + 1}`, () => hook.requests.length > before, 5_000);
        latencies.push(Date.now() - started);
      }
      expect(Math.max(...latencies)).toBeLessThan(1_000);
    } finally {
      const stopping = Date.now();
      await slow.close();
      expect(Date.now() - stopping).toBeLessThan(2_000);
    }
  });
});
