import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Communication, Subscription } from '@medplum/fhirtypes';
import { compose } from '../../src/compose.js';
import type { DeliveryWorker } from '../../src/delivery/delivery-worker.js';
import type { RetryPolicy } from '../../src/delivery/retry-policy.js';
import type { FhirStore } from '../../src/store/fhir-store.js';
import { FHIR_JSON, sharedValidator } from './test-app.js';
import { captureLogs, testConfig } from './test-config.js';

/**
 * The app composed as src/main.ts composes it (src/compose.ts) — the delivery worker woken after
 * every commit that queued notifications — listening on an ephemeral port of 127.0.0.1. The
 * worker is created but not started: tests start it.
 */
export interface DeliveryApp {
  store: FhirStore;
  worker: DeliveryWorker;
  origin: string;
  fhirBase: string;
  server: Server;
  logs: Record<string, unknown>[];
  /** Stops the server, the worker, then the store. */
  close(): Promise<void>;
}

/** A retry policy fast enough for tests: 50 ms base, 500 ms cap, give up after an hour. */
export const FAST_RETRY: RetryPolicy = { baseDelayMs: 50, maxDelayMs: 500, giveUpAfterMs: 3_600_000 };

export async function listenDeliveryApp(
  options: {
    databaseUrl?: string;
    retry?: RetryPolicy;
    timeoutMs?: number;
    pollMs?: number;
    logLevel?: string;
    /** More environment for the Config (DELIVERY_* settings). */
    env?: Record<string, string>;
  } = {},
): Promise<DeliveryApp> {
  const { logs, sink } = captureLogs();
  const service = await compose(
    testConfig({ DATABASE_URL: options.databaseUrl, LOG_LEVEL: options.logLevel ?? 'warn', ...options.env }),
    {
      logSink: sink,
      validator: sharedValidator(),
      audit: false,
      version: 'test',
      worker: {
        baseUrl: (at) => at.fhirBase,
        timeoutMs: options.timeoutMs ?? 2_000,
        retry: options.retry ?? FAST_RETRY,
        pollMs: options.pollMs,
      },
    },
  );
  const { server, origin, fhirBase } = await service.start();
  return {
    store: service.store,
    worker: service.worker as DeliveryWorker,
    origin,
    fhirBase,
    server,
    logs,
    close: () => service.close(),
  };
}

export const TOPIC = 'https://ptreferral.dev/fhir/SubscriptionTopic/referral-progress';
export const BACKPORT = 'http://hl7.org/fhir/uv/subscriptions-backport/StructureDefinition';
export const SECRET = 's3cret';
export const IDENTIFIER_SYSTEM = 'https://ptreferral.dev/fhir/communication-id';

/** A topic Subscription for the referral-progress topic, as a referrer would POST it. */
export function topicSubscription(
  endpoint: string,
  options: {
    filter?: string;
    content?: 'empty' | 'id-only' | 'full-resource';
    secret?: string | null;
    reason?: string;
  } = {},
): Subscription {
  const secret = options.secret === undefined ? SECRET : options.secret;
  return {
    resourceType: 'Subscription',
    status: 'requested',
    reason: options.reason ?? 'Progress notes for my patients',
    criteria: TOPIC,
    _criteria: {
      extension: [
        {
          url: `${BACKPORT}/backport-filter-criteria`,
          valueString: options.filter ?? 'Communication?recipient=Practitioner/dr-1',
        },
      ],
    },
    ...(secret
      ? {
          extension: [
            {
              url: 'https://ptreferral.dev/fhir/StructureDefinition/subscription-signing-secret',
              valueString: secret,
            },
          ],
        }
      : {}),
    channel: {
      type: 'rest-hook',
      endpoint,
      payload: 'application/fhir+json',
      _payload: {
        extension: [
          { url: `${BACKPORT}/backport-payload-content`, valueCode: options.content ?? 'full-resource' },
        ],
      },
    },
  } as Subscription;
}

/** A progress Communication that passes base R4 validation, identified by `value`. */
export function progressCommunication(value: string, recipient = 'Practitioner/dr-1'): Communication {
  return {
    resourceType: 'Communication',
    status: 'completed',
    identifier: [{ system: IDENTIFIER_SYSTEM, value }],
    category: [
      {
        coding: [
          { system: 'https://ptreferral.dev/fhir/CodeSystem/pt-referral-event', code: 'referral-accepted' },
        ],
      },
    ],
    subject: { reference: 'Patient/p1' },
    recipient: [{ reference: recipient }],
    sender: { reference: 'Organization/practice' },
    sent: '2026-11-03T10:00:00Z',
    payload: [{ contentString: `Progress note ${value}` }],
  };
}

/** The receiver's dedupe key for a Communication created with `progressCommunication(value)`. */
export function dedupeKey(value: string): string {
  return `${IDENTIFIER_SYSTEM}|${value}`;
}

export interface FhirResponse<T = Record<string, unknown>> {
  status: number;
  body: T;
  headers: Headers;
}

/** A FHIR JSON request over real HTTP; answers the status and the parsed body. */
export async function fhirRequest<T = Record<string, unknown>>(
  method: string,
  url: string,
  body?: unknown,
): Promise<FhirResponse<T>> {
  const res = await fetch(url, {
    method,
    headers: { accept: FHIR_JSON, ...(body === undefined ? {} : { 'content-type': FHIR_JSON }) },
    body: body === undefined ? undefined : JSON.stringify(body),
    signal: AbortSignal.timeout(10_000),
  });
  const text = await res.text();
  return { status: res.status, body: (text ? JSON.parse(text) : {}) as T, headers: res.headers };
}

/** Polls `check` every `intervalMs` until it answers true; fails with `what` after `timeoutMs`. */
export async function waitFor(
  what: string,
  check: () => boolean | Promise<boolean>,
  timeoutMs = 10_000,
  intervalMs = 20,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await check()) return;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

export interface CapturedRequest {
  method: string;
  url: string;
  headers: Record<string, string | string[] | undefined>;
  body: string;
  receivedAt: number;
}

/**
 * A bare HTTP endpoint that records every request exactly as it arrived (headers and raw body)
 * and answers `status` (200 unless changed) with `responseHeaders`, for assertions on the wire
 * format itself.
 */
export async function startCaptureServer(): Promise<{
  url: string;
  requests: CapturedRequest[];
  status: number;
  responseHeaders: Record<string, string>;
  close(): Promise<void>;
}> {
  const state = {
    url: '',
    requests: [] as CapturedRequest[],
    status: 200,
    responseHeaders: {} as Record<string, string>,
    close: async () => {
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
    },
  };
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      state.requests.push({
        method: req.method ?? '',
        url: req.url ?? '',
        headers: req.headers,
        body: Buffer.concat(chunks).toString('utf8'),
        receivedAt: Date.now(),
      });
      res.writeHead(state.status, state.responseHeaders).end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  state.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/hook`;
  return state;
}
