/**
 * Configuration from the environment, read and validated once by the composition root.
 * Everything else receives a typed `Config`; nothing reads `process.env` directly.
 */
export interface Config {
  port: number;
  host: string;
  databaseUrl: string;
  logLevel: 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent';
  /** Largest accepted request body, in bytes. */
  bodyLimitBytes: number;
  /** Public base URL of the FHIR endpoint; derived from each request's Host when unset. */
  baseUrl?: string;
  /** The practice's Organization id and name (created on first start). */
  practiceOrganizationId: string;
  practiceName: string;
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
    logLevel,
    bodyLimitBytes: parseInteger(
      env.BODY_LIMIT_BYTES ?? String(5 * 1024 * 1024),
      'BODY_LIMIT_BYTES',
      1024,
      1 << 30,
    ),
    baseUrl,
    practiceOrganizationId: parseId(env.PRACTICE_ORGANIZATION_ID ?? 'practice', 'PRACTICE_ORGANIZATION_ID'),
    practiceName: env.PRACTICE_NAME ?? 'Physical Therapy Practice',
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
