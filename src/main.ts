import { createServer } from 'node:http';
import { readFileSync } from 'node:fs';
import type { Logger } from 'pino';
import { createApp, createServices, type AppDeps } from './app.js';
import { AuditTrail } from './auth/audit-trail.js';
import { loadClients, type ClientRegistration } from './auth/clients.js';
import { DEV_CLIENT_ID, ensureDevClient } from './auth/dev-client.js';
import { KeyRing } from './auth/key-ring.js';
import { TokenService } from './auth/token-service.js';
import { ConfigError, loadConfig, type Config } from './config/config.js';
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
  const audit = new AuditTrail(store, logger);
  const security = config.auth.enabled ? await setUpSecurity(config, logger) : undefined;
  if (!security) {
    logger.warn(
      'AUTHENTICATION IS OFF (AUTH=off): every request is served without a token. Never expose this instance.',
    );
    console.warn(
      '\n*** WARNING: AUTH=off — the FHIR API is open to anyone who can reach it. Local development only. ***\n',
    );
  }
  let worker: DeliveryWorker | undefined;
  const app = createApp({
    security,
    audit,
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
      void (worker?.stop() ?? Promise.resolve())
        .then(() => audit.flush())
        .then(() => store.close())
        .then(() => process.exit(0));
    });
    setTimeout(() => process.exit(1), 10_000).unref();
  };
  process.on('SIGTERM', () => shutdown('SIGTERM'));
  process.on('SIGINT', () => shutdown('SIGINT'));
}

/** Tokens: registered clients (CLIENTS_FILE) or, for a newcomer, a local development client. */
async function setUpSecurity(config: Config, logger: Logger): Promise<AppDeps['security']> {
  let clients: Map<string, ClientRegistration>;
  if (config.auth.clientsFile) {
    clients = loadClients(config.auth.clientsFile);
  } else {
    const dev = await ensureDevClient(config.auth.devClientDir);
    clients = dev.clients;
    logger.warn({ client: DEV_CLIENT_ID }, 'no CLIENTS_FILE: using the local development client');
    console.warn(
      `\nNo CLIENTS_FILE is set, so a local development client '${DEV_CLIENT_ID}' (admin) is registered.\n` +
        `Its private key is ${dev.privateKeyFile}. Get a token with:\n` +
        `  npm run token -- --client ${DEV_CLIENT_ID} --key ${dev.privateKeyFile} --url http://localhost:${config.port}\n` +
        `and send it as 'Authorization: Bearer <token>'. See README: Security.\n`,
    );
  }
  const keys = await KeyRing.create(config.auth.signingKeysFile);
  // Rotate the signing key daily; the previous key keeps verifying until its tokens expire.
  setInterval(() => void keys.rotate(), 24 * 3_600_000).unref();
  const publicOrigin = config.baseUrl ? new URL(config.baseUrl).origin : undefined;
  const tokens = new TokenService({
    clients,
    keys,
    issuer: publicOrigin ?? 'urn:pt-referral-fhir',
    tokenTtlSeconds: config.auth.tokenTtlSeconds,
  });
  return { tokens, rateLimitPerMinute: config.auth.rateLimitPerMinute, publicOrigin };
}

void main();
