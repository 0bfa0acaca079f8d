import { isIP } from 'node:net';

/**
 * Configuration from the environment, read and validated once by the composition root.
 * Everything else receives a typed `Config`; nothing reads `process.env` directly.
 */
export interface Config {
  port: number;
  host: string;
  databaseUrl: string;
  /** PostgreSQL connections each instance keeps (PG_POOL_SIZE, default 10); 10 and unused on SQLite. */
  postgresPoolSize: number;
  logLevel: 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent';
  /** Largest accepted request body, in bytes. */
  bodyLimitBytes: number;
  /**
   * HTTP server timeouts in milliseconds, so idle or trickling clients cannot hold sockets (slowloris):
   * whole headers (HTTP_HEADERS_TIMEOUT_MS, default 30000), whole request (HTTP_REQUEST_TIMEOUT_MS,
   * 60000), idle kept-alive connection (HTTP_KEEP_ALIVE_TIMEOUT_MS, 5000), socket inactivity
   * (HTTP_IDLE_TIMEOUT_MS, 120000).
   */
  http: {
    headersTimeoutMs: number;
    requestTimeoutMs: number;
    keepAliveTimeoutMs: number;
    idleTimeoutMs: number;
  };
  /** Public base URL of the FHIR endpoint; derived from each request's Host when unset. */
  baseUrl?: string;
  /** The practice's Organization id and name (created on first start). */
  practiceOrganizationId: string;
  practiceName: string;
  delivery: {
    /** Run the delivery worker in this instance (several instances may all run one). */
    enabled: boolean;
    timeoutMs: number;
    baseBackoffMs: number;
    maxBackoffMs: number;
    giveUpAfterMs: number;
    /** Notifications in flight at once, each subscription's in order (DELIVERY_CONCURRENCY, 32). */
    concurrency: number;
    /** Active Subscriptions one client may have (DELIVERY_MAX_SUBSCRIPTIONS_PER_CLIENT, 50). */
    maxSubscriptionsPerClient: number;
    /** Hosts and CIDRs rest-hooks may reach though internal, over http too (DELIVERY_ALLOWED_HOSTS). */
    allowedHosts: string[];
    /** Loopback endpoints allowed (DELIVERY_ALLOW_LOOPBACK; default on outside production). */
    allowLoopback: boolean;
  };
  /** A progress report goes to the referrer every N attended visits. */
  progressReportEveryVisits: number;
  auth: {
    /** Off only for local development (AUTH=off), never under NODE_ENV=production. */
    enabled: boolean;
    clientsFile?: string;
    signingKeysFile: string;
    /** Where the development client is created when no CLIENTS_FILE is given. */
    devClientDir: string;
    tokenTtlSeconds: number;
    /** Analytics requests (dashboard, CSV exports, $evaluate-measure) per client a minute. */
    analyticsRateLimitPerMinute: number;
    rateLimitPerMinute: number;
    /** Failed authentications (401) an address may have per window before 429 (AUTH_FAILURE_LIMIT, 100). */
    failureLimit: number;
    /** That window, and the window failed authentications are audited in (AUTH_FAILURE_WINDOW_SECONDS, 60). */
    failureWindowSeconds: number;
    /** Tokens one client may get a minute, from any address (TOKEN_RATE_LIMIT_PER_CLIENT, 120). */
    tokenRateLimitPerClient: number;
  };
  /**
   * Express 'trust proxy' (TRUST_PROXY): `false` (default: the socket address is the client's), a
   * hop count, or a list of proxy addresses/CIDRs whose X-Forwarded-For is believed.
   */
  trustProxy: false | number | string[];
  production: boolean;
}

export class ConfigError extends Error {}

const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;

export function loadConfig(env: NodeJS.ProcessEnv = process.env): Config {
  const port = parseInteger(env.PORT ?? '8080', 'PORT', 0, 65535);
  const logLevel = (env.LOG_LEVEL ?? 'info') as Config['logLevel'];
  if (!LOG_LEVELS.includes(logLevel)) {
    throw new ConfigError(`LOG_LEVEL must be one of ${LOG_LEVELS.join(', ')}`);
  }
  const databaseUrl = env.DATABASE_URL ?? 'sqlite:./data/referrals.sqlite';
  if (!/^(sqlite:|postgres(ql)?:\/\/)/.test(databaseUrl)) {
    throw new ConfigError('DATABASE_URL must start with sqlite: or postgres://');
  }
  const baseUrl = env.BASE_URL?.replace(/\/+$/, '');
  if (baseUrl !== undefined && !/^https?:\/\/[^\s]+$/.test(baseUrl)) {
    throw new ConfigError('BASE_URL must be an http(s) URL');
  }
  return {
    port,
    host: env.HOST ?? '0.0.0.0',
    databaseUrl,
    // Checked only when it is used, as when openStore read it: SQLite ignores PG_POOL_SIZE.
    postgresPoolSize: /^postgres(ql)?:\/\//.test(databaseUrl) ? parsePoolSize(env.PG_POOL_SIZE) : 10,
    logLevel,
    bodyLimitBytes: parseInteger(
      env.BODY_LIMIT_BYTES ?? String(5 * 1024 * 1024),
      'BODY_LIMIT_BYTES',
      1024,
      1 << 30,
    ),
    http: parseHttpTimeouts(env),
    baseUrl,
    practiceOrganizationId: parseId(env.PRACTICE_ORGANIZATION_ID ?? 'practice', 'PRACTICE_ORGANIZATION_ID'),
    practiceName: env.PRACTICE_NAME ?? 'Physical Therapy Practice',
    delivery: {
      enabled: (env.DELIVERY_WORKER ?? 'on') !== 'off',
      // At most the ceiling a Subscription's backport-timeout may ask for (30 s).
      timeoutMs: parseInteger(env.DELIVERY_TIMEOUT_MS ?? '10000', 'DELIVERY_TIMEOUT_MS', 100, 30_000),
      baseBackoffMs: parseInteger(
        env.DELIVERY_BASE_BACKOFF_MS ?? '1000',
        'DELIVERY_BASE_BACKOFF_MS',
        10,
        3_600_000,
      ),
      maxBackoffMs: parseInteger(
        env.DELIVERY_MAX_BACKOFF_MS ?? '600000',
        'DELIVERY_MAX_BACKOFF_MS',
        10,
        86_400_000,
      ),
      giveUpAfterMs:
        parseInteger(env.DELIVERY_GIVE_UP_HOURS ?? '24', 'DELIVERY_GIVE_UP_HOURS', 1, 24 * 30) * 3_600_000,
      concurrency: parseInteger(env.DELIVERY_CONCURRENCY ?? '32', 'DELIVERY_CONCURRENCY', 1, 1000),
      maxSubscriptionsPerClient: parseInteger(
        env.DELIVERY_MAX_SUBSCRIPTIONS_PER_CLIENT ?? '50',
        'DELIVERY_MAX_SUBSCRIPTIONS_PER_CLIENT',
        1,
        100_000,
      ),
      allowedHosts: parseAllowedHosts(env.DELIVERY_ALLOWED_HOSTS),
      allowLoopback: parseOnOff(
        env.DELIVERY_ALLOW_LOOPBACK ?? (env.NODE_ENV === 'production' ? 'off' : 'on'),
        'DELIVERY_ALLOW_LOOPBACK',
      ),
    },
    auth: {
      enabled: parseAuth(env),
      clientsFile: env.CLIENTS_FILE || undefined,
      signingKeysFile: env.SIGNING_KEYS_FILE ?? './data/signing-keys.json',
      devClientDir: env.DEV_CLIENT_DIR ?? './data/dev-client',
      tokenTtlSeconds: parseInteger(env.TOKEN_TTL_SECONDS ?? '300', 'TOKEN_TTL_SECONDS', 30, 300),
      rateLimitPerMinute: parseInteger(
        env.RATE_LIMIT_PER_MINUTE ?? '6000',
        'RATE_LIMIT_PER_MINUTE',
        1,
        1_000_000,
      ),
      analyticsRateLimitPerMinute: parseInteger(
        env.ANALYTICS_RATE_LIMIT_PER_MINUTE ?? '60',
        'ANALYTICS_RATE_LIMIT_PER_MINUTE',
        1,
        1_000_000,
      ),
      failureLimit: parseInteger(env.AUTH_FAILURE_LIMIT ?? '100', 'AUTH_FAILURE_LIMIT', 1, 1_000_000),
      failureWindowSeconds: parseInteger(
        env.AUTH_FAILURE_WINDOW_SECONDS ?? '60',
        'AUTH_FAILURE_WINDOW_SECONDS',
        1,
        3600,
      ),
      tokenRateLimitPerClient: parseInteger(
        env.TOKEN_RATE_LIMIT_PER_CLIENT ?? '120',
        'TOKEN_RATE_LIMIT_PER_CLIENT',
        1,
        1_000_000,
      ),
    },
    trustProxy: parseTrustProxy(env.TRUST_PROXY),
    production: env.NODE_ENV === 'production',
    progressReportEveryVisits: parseInteger(
      env.PROGRESS_REPORT_EVERY_VISITS ?? '6',
      'PROGRESS_REPORT_EVERY_VISITS',
      1,
      100,
    ),
  };
}

function parseHttpTimeouts(env: NodeJS.ProcessEnv): Config['http'] {
  const headersTimeoutMs = parseInteger(
    env.HTTP_HEADERS_TIMEOUT_MS ?? '30000',
    'HTTP_HEADERS_TIMEOUT_MS',
    100,
    600_000,
  );
  // Node refuses a request timeout shorter than the headers timeout.
  const requestTimeoutMs = parseInteger(
    env.HTTP_REQUEST_TIMEOUT_MS ?? String(Math.max(60_000, headersTimeoutMs)),
    'HTTP_REQUEST_TIMEOUT_MS',
    headersTimeoutMs,
    3_600_000,
  );
  return {
    headersTimeoutMs,
    requestTimeoutMs,
    keepAliveTimeoutMs: parseInteger(
      env.HTTP_KEEP_ALIVE_TIMEOUT_MS ?? '5000',
      'HTTP_KEEP_ALIVE_TIMEOUT_MS',
      100,
      600_000,
    ),
    idleTimeoutMs: parseInteger(
      env.HTTP_IDLE_TIMEOUT_MS ?? '120000',
      'HTTP_IDLE_TIMEOUT_MS',
      1_000,
      3_600_000,
    ),
  };
}

function parseId(value: string, name: string): string {
  if (!/^[A-Za-z0-9\-.]{1,64}$/.test(value)) {
    throw new ConfigError(`${name} must be a FHIR id (1-64 of A-Z a-z 0-9 - .)`);
  }
  return value;
}

function parseInteger(value: string, name: string, min: number, max: number): number {
  if (!/^\d+$/.test(value) || Number(value) < min || Number(value) > max) {
    throw new ConfigError(`${name} must be an integer between ${min} and ${max}`);
  }
  return Number(value);
}

/** PG_POOL_SIZE: default 10, 1–1000. */
function parsePoolSize(value: string | undefined): number {
  if (value === undefined || value === '') {
    return 10;
  }
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1 || n > 1000) {
    throw new ConfigError('PG_POOL_SIZE must be an integer from 1 to 1000');
  }
  return n;
}

/**
 * TRUST_PROXY: unset or `false` trusts no proxy; a hop count (1-10) trusts that many proxies in
 * front; otherwise a comma list of addresses, CIDRs or Express's names (loopback, linklocal,
 * uniquelocal). `true` (trust every hop) is refused: anyone could then choose their address by
 * sending X-Forwarded-For, and so escape the per-address limits.
 */
function parseTrustProxy(value: string | undefined): false | number | string[] {
  const v = (value ?? '').trim();
  if (v === '' || v === 'false') return false;
  if (/^\d+$/.test(v)) return parseInteger(v, 'TRUST_PROXY', 1, 10);
  const list = v.split(',').map((item) => item.trim());
  if (list.some((item) => !/^(loopback|linklocal|uniquelocal|[0-9A-Fa-f.:]+(\/\d{1,3})?)$/.test(item))) {
    throw new ConfigError(
      'TRUST_PROXY must be false, a hop count (1-10) or a comma list of proxy addresses/CIDRs (loopback, linklocal, uniquelocal allowed)',
    );
  }
  return list;
}

/** DELIVERY_ALLOWED_HOSTS: a comma list of host names and IP addresses or CIDRs. */
function parseAllowedHosts(value: string | undefined): string[] {
  const list = (value ?? '')
    .split(',')
    .map((item) => item.trim().toLowerCase())
    .filter((item) => item !== '');
  const cidr = /^([0-9a-f.:]+)(\/(\d{1,3}))?$/;
  for (const item of list) {
    const m = cidr.exec(item);
    const family = m ? isIP(m[1] as string) : 0;
    const ok = family
      ? Number(m?.[3] ?? 0) <= (family === 4 ? 32 : 128)
      : /^[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*$/.test(item);
    if (!ok) throw new ConfigError(`DELIVERY_ALLOWED_HOSTS: '${item}' is not a host name, address or CIDR`);
  }
  return list;
}

function parseOnOff(value: string, name: string): boolean {
  if (value !== 'on' && value !== 'off') throw new ConfigError(`${name} must be on or off`);
  return value === 'on';
}

function parseAuth(env: NodeJS.ProcessEnv): boolean {
  const value = env.AUTH ?? 'on';
  if (value !== 'on' && value !== 'off') throw new ConfigError('AUTH must be on or off');
  if (value === 'on' && env.NODE_ENV === 'production' && !env.BASE_URL) {
    // The token URL is the audience clients sign for; in production it must not follow Host headers.
    throw new ConfigError(
      'BASE_URL is required when NODE_ENV=production (it fixes the token URL clients sign for)',
    );
  }
  if (value === 'off' && env.NODE_ENV === 'production') {
    throw new ConfigError('AUTH=off is refused when NODE_ENV=production: the service holds patient data');
  }
  return value === 'on';
}
