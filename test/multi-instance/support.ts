import pg from 'pg';
import { isPostgresUrl } from '../support/postgres.js';

/**
 * Helpers shared by the multi-instance and crash tests: real HTTP against service processes,
 * a bounded-concurrency runner, status tallies, direct SQL on a test schema, and the scale knobs.
 */

export const FHIR_JSON = 'application/fhir+json';

export interface Reply<T = Record<string, unknown>> {
  status: number;
  body: T;
  headers: Headers;
}

/** One FHIR JSON request; a network failure (refused, reset) answers status 0 with the error. */
export async function call<T = Record<string, unknown>>(
  method: string,
  url: string,
  body?: unknown,
  headers: Record<string, string> = {},
  timeoutMs = 30_000,
): Promise<Reply<T>> {
  const res = await fetch(url, {
    method,
    headers: {
      accept: FHIR_JSON,
      ...(body === undefined ? {} : { 'content-type': FHIR_JSON }),
      ...headers,
    },
    body: body === undefined ? undefined : JSON.stringify(body),
    signal: AbortSignal.timeout(timeoutMs),
  });
  const text = await res.text();
  let parsed: unknown = {};
  if (text) {
    try {
      parsed = JSON.parse(text);
    } catch {
      parsed = { unparsed: text.slice(0, 500) };
    }
  }
  return { status: res.status, body: parsed as T, headers: res.headers };
}

/** Runs `tasks` with at most `limit` in flight, in order of the array; answers results in order. */
export async function runPool<T>(tasks: (() => Promise<T>)[], limit: number): Promise<T[]> {
  const results: T[] = new Array<T>(tasks.length);
  let next = 0;
  const lane = async (): Promise<void> => {
    while (next < tasks.length) {
      const i = next++;
      results[i] = await (tasks[i] as () => Promise<T>)();
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, tasks.length) }, lane));
  return results;
}

export function tally(statuses: number[]): Record<number, number> {
  const out: Record<number, number> = {};
  for (const s of statuses) out[s] = (out[s] ?? 0) + 1;
  return out;
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** A positive integer from the environment, or the fallback. */
export function envInt(name: string, fallback: number): number {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return fallback;
  const n = Number(raw);
  if (!Number.isInteger(n) || n <= 0) throw new Error(`${name} must be a positive integer, got '${raw}'`);
  return n;
}

/**
 * `npm run test:postgres` runs the whole suite a second time with TEST_DATABASE_URL pointing at
 * PostgreSQL. The multi-instance and crash tests choose their own stores (they ran in the first
 * pass already, SQLite and PostgreSQL alike), so that second pass skips them rather than spend
 * the same minutes twice. MULTI_INSTANCE_IN_POSTGRES_PASS=1 runs them there too.
 */
export function isPostgresRerun(): boolean {
  return isPostgresUrl(process.env.TEST_DATABASE_URL) && process.env.MULTI_INSTANCE_IN_POSTGRES_PASS !== '1';
}

/** A plain pg client on the schema of a `postgres://…?schema=x` URL, for checks behind the API. */
export async function schemaClient(databaseUrl: string): Promise<pg.Client> {
  const url = new URL(databaseUrl);
  const schema = url.searchParams.get('schema');
  url.searchParams.delete('schema');
  const client = new pg.Client({ connectionString: url.toString() });
  await client.connect();
  if (schema) await client.query(`SET search_path TO ${schema}`);
  return client;
}

/** Seconds since `started` (performance.now()), one decimal. */
export function secondsSince(started: number): string {
  return ((performance.now() - started) / 1000).toFixed(1);
}
