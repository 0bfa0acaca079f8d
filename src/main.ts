import { createServer } from 'node:http';
import { readFileSync } from 'node:fs';
import { createApp, createServices } from './app.js';
import { ConfigError, loadConfig } from './config/config.js';
import { loadFhirDefinitions } from './fhir/definitions.js';
import { DeliveryWorker } from './delivery/delivery-worker.js';
import { createLogger } from './logging.js';
import { ensurePractice } from './referral/practice.js';
import { openStore } from './store/open-store.js';
import { ResourceValidator } from './validation/resource-validator.js';

/** Composition root: config, store, HTTP server, graceful shutdown. */
async function main(): Promise<void> {
  let config;
  try {
    config = loadConfig();
  } catch (err) {
    if (err instanceof ConfigError) {
      console.error(`Configuration error: ${err.message}`);
      process.exit(2);
    }
    throw err;
  }
  const logger = createLogger(config.logLevel);
  loadFhirDefinitions();
  const store = await openStore(config.databaseUrl);
  const version = (
    JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string }
  ).version;
  const validator = new ResourceValidator();
  const practice = await ensurePractice(
    store,
    createServices({ validator, practice: { reference: `Organization/${config.practiceOrganizationId}` } }),
    { organizationId: config.practiceOrganizationId, name: config.practiceName },
  );
  let worker: DeliveryWorker | undefined;
  const app = createApp({
    store,
    logger,
    validator,
    practice,
    onNotificationsQueued: () => worker?.wake(),
    progressReportEveryVisits: config.progressReportEveryVisits,
    bodyLimitBytes: config.bodyLimitBytes,
    baseUrl: config.baseUrl,
    version,
  });
  const server = createServer(app);
  server.headersTimeout = 30_000;
  server.requestTimeout = 60_000;
  server.listen(config.port, config.host, () => {
    const address = server.address();
    const port = typeof address === 'object' && address ? address.port : config.port;
    logger.info(
      { port, host: config.host, store: store.dialect },
      `FHIR server listening on http://localhost:${port}/fhir`,
    );
    if (config.delivery.enabled) {
      worker = new DeliveryWorker({
        store,
        logger,
        baseUrl: config.baseUrl ?? `http://localhost:${port}/fhir`,
        practice: { reference: practice.reference as string },
        timeoutMs: config.delivery.timeoutMs,
        retry: {
          baseDelayMs: config.delivery.baseBackoffMs,
          maxDelayMs: config.delivery.maxBackoffMs,
          giveUpAfterMs: config.delivery.giveUpAfterMs,
        },
      });
      worker.start();
    }
  });

  let stopping = false;
  const shutdown = (signal: string): void => {
    if (stopping) return;
    stopping = true;
    logger.info({ signal }, 'shutting down');
    server.close(() => {
      void (worker?.stop() ?? Promise.resolve()).then(() => store.close()).then(() => process.exit(0));
    });
    setTimeout(() => process.exit(1), 10_000).unref();
  };
  process.on('SIGTERM', () => shutdown('SIGTERM'));
  process.on('SIGINT', () => shutdown('SIGINT'));
}

void main();
