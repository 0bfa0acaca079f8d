import type { Server } from 'node:http';
import { compose } from '../../src/compose.js';
import type { DeliveryWorker } from '../../src/delivery/delivery-worker.js';
import type { FhirStore } from '../../src/store/fhir-store.js';
import { FAST_RETRY } from './delivery-app.js';
import { sharedValidator } from './test-app.js';
import { captureLogs, testConfig } from './test-config.js';

/**
 * The app composed as src/main.ts composes it (src/compose.ts: the delivery worker woken after
 * every commit that queued notifications), with what progress tests need on top of
 * `listenDeliveryApp`: a settable clock injected as `now`, and the progress-report cadence.
 * Listens on an ephemeral port of 127.0.0.1; the worker is created but not started.
 */
export interface ProgressApp {
  store: FhirStore;
  worker: DeliveryWorker;
  fhirBase: string;
  server: Server;
  logs: Record<string, unknown>[];
  /** The server's clock: every `now()` answers this instant until it is set again. */
  clock: { now: string };
  /** Stops the server, the worker, then the store. */
  close(): Promise<void>;
}

export async function listenProgressApp(options: {
  now: string;
  progressReportEveryVisits: number;
  databaseUrl?: string;
}): Promise<ProgressApp> {
  const { logs, sink } = captureLogs();
  const clock = { now: options.now };
  const service = await compose(
    testConfig({
      DATABASE_URL: options.databaseUrl,
      PROGRESS_REPORT_EVERY_VISITS: String(options.progressReportEveryVisits),
    }),
    {
      logSink: sink,
      validator: sharedValidator(),
      now: () => clock.now,
      audit: false,
      version: 'test',
      worker: { baseUrl: (at) => at.fhirBase, timeoutMs: 2_000, retry: FAST_RETRY, pollMs: 200 },
    },
  );
  const { server, fhirBase } = await service.start();
  return {
    store: service.store,
    worker: service.worker as DeliveryWorker,
    fhirBase,
    server,
    logs,
    clock,
    close: () => service.close(),
  };
}
