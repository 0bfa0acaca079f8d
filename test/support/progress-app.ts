import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Writable } from 'node:stream';
import { createApp, createServices } from '../../src/app.js';
import { DeliveryWorker } from '../../src/delivery/delivery-worker.js';
import { createLogger } from '../../src/logging.js';
import { ensurePractice } from '../../src/referral/practice.js';
import type { FhirStore } from '../../src/store/fhir-store.js';
import { openStore } from '../../src/store/open-store.js';
import { FAST_RETRY } from './delivery-app.js';
import { sharedValidator } from './test-app.js';

/**
 * The app composed as src/main.ts composes it (the delivery worker woken after every commit that
 * queued notifications), with what progress tests need on top of `listenDeliveryApp`: a settable
 * clock injected as `now`, and the progress-report cadence. Listens on an ephemeral port of
 * 127.0.0.1; the worker is created but not started.
 */
export interface ProgressApp {
  store: FhirStore;
  worker: DeliveryWorker;
  fhirBase: string;
  server: Server;
  logs: Record<string, unknown>[];
  /** The server's clock: every `now()` answers this instant until it is set again. */
  clock: { now: string };
  /** Stops the worker, then the server, then the store. */
  close(): Promise<void>;
}

export async function listenProgressApp(options: {
  now: string;
  progressReportEveryVisits: number;
  databaseUrl?: string;
}): Promise<ProgressApp> {
  const store = await openStore(options.databaseUrl ?? 'sqlite::memory:');
  const logs: Record<string, unknown>[] = [];
  const sink = new Writable({
    write(chunk, _enc, done) {
      for (const line of String(chunk).split('\n')) {
        if (line.trim()) logs.push(JSON.parse(line) as Record<string, unknown>);
      }
      done();
    },
  });
  const logger = createLogger('warn', sink);
  const validator = sharedValidator();
  const clock = { now: options.now };
  const now = (): string => clock.now;
  const practice = await ensurePractice(
    store,
    createServices({ validator, practice: { reference: 'Organization/practice' }, now }),
    { organizationId: 'practice', name: 'Riverside Physical Therapy' },
  );
  // The worker needs the port, known once listening; the app needs to wake it: a late-bound holder.
  const late: { worker?: DeliveryWorker } = {};
  const app = createApp({
    store,
    validator,
    practice,
    logger,
    now,
    progressReportEveryVisits: options.progressReportEveryVisits,
    onNotificationsQueued: () => late.worker?.wake(),
    bodyLimitBytes: 1024 * 1024,
    version: 'test',
  });
  const server = createServer(app);
  server.keepAliveTimeout = 5_000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      server.off('error', reject);
      resolve();
    });
  });
  const fhirBase = `http://127.0.0.1:${(server.address() as AddressInfo).port}/fhir`;
  const worker = new DeliveryWorker({
    store,
    logger,
    baseUrl: fhirBase,
    practice: { reference: practice.reference as string },
    timeoutMs: 2_000,
    retry: FAST_RETRY,
    pollMs: 200,
  });
  late.worker = worker;
  return {
    store,
    worker,
    fhirBase,
    server,
    logs,
    clock,
    close: async () => {
      await worker.stop();
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
      await store.close();
    },
  };
}
