import { readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Organization, Reference } from '@medplum/fhirtypes';
import type { Express } from 'express';
import type { Logger } from 'pino';
import { createApp, type AppDeps } from './app.js';
import { AuditTrail } from './auth/audit-trail.js';
import { loadClients, type ClientRegistration } from './auth/clients.js';
import { DEV_CLIENT_ID, ensureDevClient } from './auth/dev-client.js';
import { KeyRing } from './auth/key-ring.js';
import { TokenService } from './auth/token-service.js';
import type { Config } from './config/config.js';
import { DeliveryWorker, type DeliveryWorkerOptions } from './delivery/delivery-worker.js';
import { EndpointRules } from './delivery/endpoint-policy.js';
import { tagLegacySubscriptions } from './delivery/subscription-backfill.js';
import { loadFhirDefinitions } from './fhir/definitions.js';
import { createLogger } from './logging.js';
import { ensurePractice } from './referral/practice.js';
import type { FhirStore } from './store/fhir-store.js';
import { openStore } from './store/open-store.js';
import { createServices } from './services.js';
import { ensurePublishedDefinitions } from './conformance/published-definitions.js';
import { scopedStore } from './auth/scoped-store.js';
import { serverWriter, type WriteModule } from './rest/unit-of-work.js';
import { ResourceValidator } from './validation/resource-validator.js';

/**
 * The composition root: the one place that turns a `Config` into a running service — store,
 * validator, practice Organization, security, audit trail, Express app, delivery worker, HTTP
 * server. src/main.ts, the test helpers (test/support) and the benchmarks all build the service
 * here, so what they run is what production runs; they differ only in the Config and in the
 * `ComposeOverrides` below. Nothing else calls createApp, createServices or ensurePractice.
 */

/** Where the service listens, once `start()` has resolved. */
export interface Listening {
  server: Server;
  port: number;
  host: string;
  /** `http://<host>:<port>` (`localhost` for a wildcard host), without a trailing slash. */
  origin: string;
  /** `<origin>/fhir`. */
  fhirBase: string;
}

/** Delivery worker settings beyond the Config's (DELIVERY_*); unset ones come from the Config. */
export interface WorkerOverrides {
  /**
   * The FHIR base URL the notification bundles name. Default: `config.baseUrl`, else
   * `http://localhost:<port>/fhir` once listening (as src/main.ts always did). A function is
   * called once `start()` knows the port.
   */
  baseUrl?: string | ((at: Listening) => string);
  timeoutMs?: number;
  retry?: DeliveryWorkerOptions['retry'];
  pollMs?: number;
  batchSize?: number;
  fetchImpl?: typeof fetch;
  /** Default: the composition's logger. */
  logger?: Logger;
}

export interface ComposeOverrides {
  /** Use this store instead of opening `config.databaseUrl`; `close()` then leaves it open. */
  store?: FhirStore;
  /** Open this database instead of `config.databaseUrl` (closed by `close()`). */
  databaseUrl?: string;
  /** A validator built once and shared (tests: compiling profiles costs a few hundred ms). */
  validator?: ResourceValidator;
  /** The server's clock for writes (meta.lastUpdated, workflow timestamps). */
  now?: () => string;
  /** The logger; default a JSON logger at `config.logLevel` on `logSink` (default stdout). */
  logger?: Logger;
  logSink?: NodeJS.WritableStream;
  /** Reported in CapabilityStatement.software; default package.json's version. */
  version?: string;
  /**
   * Token service and rate limit to use instead of building them from `config.auth` (tests bring
   * their own client registry, key ring and clock). Without it, security follows `config.auth`.
   */
  security?: AppDeps['security'];
  /** The AuditTrail: on by default (as in production); `false` for none; `delayMs` its batching. */
  audit?: boolean | { delayMs?: number };
  worker?: WorkerOverrides;
  /**
   * The write path's modules: `replace` swaps the domain modules (the intake benchmark's plain
   * FHIR baseline has none); `extra` adds modules after them (tests observe writes with them).
   */
  modules?: { replace?: readonly WriteModule[]; extra?: readonly WriteModule[] };
}

export interface StartOptions {
  /** Default `config.port` (0: an ephemeral port). */
  port?: number;
  /** Default `config.host`. */
  host?: string;
  /** Start the delivery worker; default `config.delivery.enabled`. It is created either way. */
  startWorker?: boolean;
}

export interface CloseOptions {
  /**
   * How long in-flight requests may finish before their connections are cut: default 0 (cut at
   * once, for tests and benchmarks); `Infinity` waits for them (graceful shutdown).
   */
  drainMs?: number;
}

export interface Composition {
  config: Config;
  app: Express;
  store: FhirStore;
  validator: ResourceValidator;
  practice: Reference<Organization>;
  logger: Logger;
  /** Undefined when authentication is off. */
  security: AppDeps['security'];
  audit: AuditTrail | undefined;
  /** Set when security was built from the Config without CLIENTS_FILE: the local dev client. */
  devClient?: { clientId: string; privateKeyFile: string };
  /**
   * The delivery worker the app wakes after each commit that queued notifications: created at
   * once when its base URL does not depend on the port (`worker.baseUrl` a string, or BASE_URL
   * set), otherwise by `start()`; started only by `start()` (or by the caller).
   */
  readonly worker: DeliveryWorker | undefined;
  /** Set once `start()` has resolved. */
  readonly listening: Listening | undefined;
  /** A further worker on this store and practice (not woken by the app; the caller runs it). */
  createWorker(options: WorkerOverrides & { baseUrl: string }): DeliveryWorker;
  /** Listens (server timeouts as in production) and starts the worker if enabled. Once. */
  start(options?: StartOptions): Promise<Listening>;
  /** Stops the server, the worker, flushes the audit trail, closes the store it opened. Idempotent. */
  close(options?: CloseOptions): Promise<void>;
}

export async function compose(config: Config, overrides: ComposeOverrides = {}): Promise<Composition> {
  const logger = overrides.logger ?? createLogger(config.logLevel, overrides.logSink);
  loadFhirDefinitions();
  const ownsStore = overrides.store === undefined;
  const store =
    overrides.store ??
    (await openStore(overrides.databaseUrl ?? config.databaseUrl, { poolSize: config.postgresPoolSize }));
  const cleanups: (() => void)[] = [];
  try {
    const validator = overrides.validator ?? new ResourceValidator();
    let worker: DeliveryWorker | undefined;
    // One write path for the whole service: the modules' handlers, shared by client and server writes.
    const services = createServices({
      validator,
      practice: { reference: `Organization/${config.practiceOrganizationId}` },
      now: overrides.now,
      onNotificationsQueued: () => worker?.wake(),
      progressReportEveryVisits: config.progressReportEveryVisits,
      modules: overrides.modules?.replace,
      subscriptionPolicy: {
        endpoints: new EndpointRules(config.delivery),
        maxPerClient: config.delivery.maxSubscriptionsPerClient,
      },
      extraModules: overrides.modules?.extra,
    });
    const writer = serverWriter(scopedStore(store, undefined), services);
    // The published Measures, Questionnaire and OperationDefinitions: ordinary FHIR resources.
    await ensurePublishedDefinitions(store, services);
    await tagLegacySubscriptions(writer);
    const practice = await ensurePractice(store, services, {
      organizationId: config.practiceOrganizationId,
      name: config.practiceName,
    });
    let security = overrides.security;
    let devClient: Composition['devClient'];
    if (!security && config.auth.enabled) {
      ({ security, devClient } = await securityFromConfig(config, cleanups));
    }
    const audit =
      overrides.audit === false
        ? undefined
        : new AuditTrail(
            writer,
            logger,
            typeof overrides.audit === 'object' ? overrides.audit.delayMs : undefined,
            config.auth.failureWindowSeconds * 1000,
          );

    let listening: Listening | undefined;
    let server: Server | undefined;
    let closing: Promise<void> | undefined;
    const app = createApp({
      services,
      security,
      audit,
      store,
      logger,
      validator,
      practice,
      now: overrides.now,
      onNotificationsQueued: () => worker?.wake(),
      progressReportEveryVisits: config.progressReportEveryVisits,
      bodyLimitBytes: config.bodyLimitBytes,
      baseUrl: config.baseUrl,
      analyticsRateLimitPerMinute: config.auth.analyticsRateLimitPerMinute,
      trustProxy: config.trustProxy,
      authFailures: { limit: config.auth.failureLimit, windowSeconds: config.auth.failureWindowSeconds },
      version: overrides.version ?? packageVersion(),
    });

    const workerOverrides = overrides.worker ?? {};
    const createWorker = (options: WorkerOverrides & { baseUrl: string }): DeliveryWorker =>
      new DeliveryWorker({
        store,
        writer,
        logger: options.logger ?? logger,
        baseUrl: options.baseUrl,
        practice: { reference: practice.reference as string },
        timeoutMs: options.timeoutMs ?? config.delivery.timeoutMs,
        concurrency: config.delivery.concurrency,
        endpoints: config.delivery,
        retry: options.retry ?? {
          baseDelayMs: config.delivery.baseBackoffMs,
          maxDelayMs: config.delivery.maxBackoffMs,
          giveUpAfterMs: config.delivery.giveUpAfterMs,
        },
        ...(options.pollMs !== undefined ? { pollMs: options.pollMs } : {}),
        ...(options.batchSize !== undefined ? { batchSize: options.batchSize } : {}),
        ...(options.fetchImpl !== undefined ? { fetchImpl: options.fetchImpl } : {}),
      });
    // A base URL known now (not the port's) lets the worker exist before the server listens.
    const fixedBaseUrl =
      typeof workerOverrides.baseUrl === 'function' ? undefined : (workerOverrides.baseUrl ?? config.baseUrl);
    if (fixedBaseUrl !== undefined) worker = createWorker({ ...workerOverrides, baseUrl: fixedBaseUrl });

    const start = async (options: StartOptions = {}): Promise<Listening> => {
      if (closing) throw new Error('the service is closed');
      if (server) throw new Error('the service is already started');
      const host = options.host ?? config.host;
      const { headersTimeoutMs, requestTimeoutMs, keepAliveTimeoutMs, idleTimeoutMs } = config.http;
      // Node checks the headers and request timeouts only every connectionsCheckingInterval
      // (30 s by default): check often enough that the configured bounds are what clients get.
      const checkEveryMs = Math.max(50, Math.min(1_000, Math.floor(headersTimeoutMs / 4)));
      const s = createServer({ connectionsCheckingInterval: checkEveryMs }, app);
      server = s;
      s.headersTimeout = headersTimeoutMs;
      s.requestTimeout = requestTimeoutMs;
      s.keepAliveTimeout = keepAliveTimeoutMs;
      s.timeout = idleTimeoutMs;
      await new Promise<void>((resolve, reject) => {
        s.once('error', reject);
        s.listen(options.port ?? config.port, host, () => {
          s.off('error', reject);
          resolve();
        });
      });
      const port = (s.address() as AddressInfo).port;
      const shownHost = host === '0.0.0.0' || host === '::' || host === '' ? 'localhost' : host;
      const origin = `http://${shownHost.includes(':') ? `[${shownHost}]` : shownHost}:${port}`;
      listening = { server: s, port, host, origin, fhirBase: `${origin}/fhir` };
      if (!worker) {
        const baseUrl =
          typeof workerOverrides.baseUrl === 'function'
            ? workerOverrides.baseUrl(listening)
            : `http://localhost:${port}/fhir`;
        worker = createWorker({ ...workerOverrides, baseUrl });
      }
      if (options.startWorker ?? config.delivery.enabled) worker.start();
      return listening;
    };

    const close = (options: CloseOptions = {}): Promise<void> => {
      closing ??= (async () => {
        for (const fn of cleanups.splice(0)) fn();
        if (server) await closeServer(server, options.drainMs ?? 0);
        await worker?.stop();
        await audit?.flush();
        if (ownsStore) await store.close();
      })();
      return closing;
    };

    return {
      config,
      app,
      store,
      validator,
      practice,
      logger,
      security,
      audit,
      ...(devClient ? { devClient } : {}),
      get worker() {
        return worker;
      },
      get listening() {
        return listening;
      },
      createWorker,
      start,
      close,
    };
  } catch (err) {
    for (const fn of cleanups.splice(0)) fn();
    if (ownsStore) await store.close().catch(() => undefined);
    throw err;
  }
}

/** Tokens: registered clients (CLIENTS_FILE) or, for a newcomer, a local development client. */
async function securityFromConfig(
  config: Config,
  cleanups: (() => void)[],
): Promise<{ security: NonNullable<AppDeps['security']>; devClient?: Composition['devClient'] }> {
  let clients: Map<string, ClientRegistration>;
  let devClient: Composition['devClient'];
  if (config.auth.clientsFile) {
    clients = loadClients(config.auth.clientsFile);
  } else {
    const dev = await ensureDevClient(config.auth.devClientDir);
    clients = dev.clients;
    devClient = { clientId: DEV_CLIENT_ID, privateKeyFile: dev.privateKeyFile };
  }
  const keys = await KeyRing.create(config.auth.signingKeysFile);
  // Rotate the signing key daily; the previous key keeps verifying until its tokens expire.
  const rotation = setInterval(() => void keys.rotate(), 24 * 3_600_000).unref();
  cleanups.push(() => clearInterval(rotation));
  const publicOrigin = config.baseUrl ? new URL(config.baseUrl).origin : undefined;
  const tokens = new TokenService({
    clients,
    keys,
    issuer: publicOrigin ?? 'urn:pt-referral-fhir',
    tokenTtlSeconds: config.auth.tokenTtlSeconds,
    clientRateLimitPerMinute: config.auth.tokenRateLimitPerClient,
  });
  return {
    security: { tokens, rateLimitPerMinute: config.auth.rateLimitPerMinute, publicOrigin },
    ...(devClient ? { devClient } : {}),
  };
}

function packageVersion(): string {
  return (
    JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string }
  ).version;
}

/** Stops accepting connections; cuts the ones still open after `drainMs`. */
function closeServer(server: Server, drainMs: number): Promise<void> {
  return new Promise<void>((resolve) => {
    let timer: NodeJS.Timeout | undefined;
    server.close(() => {
      clearTimeout(timer);
      resolve();
    });
    if (drainMs <= 0) server.closeAllConnections();
    else if (Number.isFinite(drainMs)) timer = setTimeout(() => server.closeAllConnections(), drainMs);
  });
}
