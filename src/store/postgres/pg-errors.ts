import { fhirError, isFhirError, type FhirError } from '../../fhir/errors.js';

/**
 * How the PostgreSQL store classifies driver errors: a transient conflict is retried inside
 * `transaction()`, a lost or refused connection becomes `store-unavailable` (HTTP 503 with an
 * OperationOutcome), anything else propagates (and becomes a logged 500).
 * SQLSTATEs: https://www.postgresql.org/docs/current/errcodes-appendix.html
 */

/** Node socket errors that mean "the database cannot be reached right now". */
const NETWORK_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ECONNABORTED',
  'EPIPE',
  'ETIMEDOUT',
  'EHOSTUNREACH',
  'EHOSTDOWN',
  'ENETUNREACH',
  'ENETDOWN',
  'ENOTFOUND',
  'EAI_AGAIN',
]);

/** Messages node-postgres uses, without a code, for a connection that died or never came. */
const CONNECTION_MESSAGES =
  /Connection terminated|connection timeout|timeout exceeded when trying to connect|Client has encountered a connection error|Client was closed and is not queryable|Cannot use a pool after calling end/i;

function sqlState(err: unknown): string | undefined {
  const code = (err as { code?: unknown } | null | undefined)?.code;
  return typeof code === 'string' ? code : undefined;
}

/**
 * Class 08 (connection exception), 57P01-57P03 (admin/crash shutdown, cannot connect now),
 * 53300 (too many connections), and the socket errors of a server that is down or unreachable.
 */
export function isConnectionError(err: unknown): boolean {
  if (err === null || typeof err !== 'object') {
    return false;
  }
  const code = sqlState(err);
  if (code !== undefined) {
    if (/^08[0-9A-Z]{3}$/.test(code) || code === '57P01' || code === '57P02' || code === '57P03') {
      return true;
    }
    if (code === '53300' || NETWORK_CODES.has(code)) {
      return true;
    }
  }
  // Connecting to a name with several addresses fails with an AggregateError of socket errors.
  const inner = (err as { errors?: unknown }).errors;
  if (Array.isArray(inner) && inner.length > 0 && inner.every(isConnectionError)) {
    return true;
  }
  return err instanceof Error && code === undefined && CONNECTION_MESSAGES.test(err.message);
}

/**
 * Conflicts that a fresh attempt of the same transaction resolves: serialization failure (40001),
 * deadlock (40P01), and a unique violation (23505) of the version or event keys, which means a
 * concurrent transaction committed the row this one computed (the keys are the last line of
 * defence against two writers both taking "the next" number).
 */
export function isRetryableConflict(err: unknown): boolean {
  const code = sqlState(err);
  return code === '40001' || code === '40P01' || code === '23505' || err instanceof WriteConflict;
}

/**
 * Thrown inside a transaction when the row it is about to write changed since this transaction
 * read it (another instance created it in between): the whole transaction runs again.
 */
export class WriteConflict extends Error {
  constructor(what: string) {
    super(`Concurrent write to ${what}`);
    this.name = 'WriteConflict';
  }
}

/** The error a caller sees: `store-unavailable` for connection trouble, otherwise the error itself. */
export function toStoreError(err: unknown): unknown {
  if (isFhirError(err)) {
    return err;
  }
  if (isConnectionError(err)) {
    return unavailable('The database is unavailable; try again shortly', err);
  }
  return err;
}

export function unavailable(message: string, cause: unknown): FhirError {
  const error = fhirError('store-unavailable', message);
  // Kept for logs and debugging; the client only sees the OperationOutcome.
  (error as Error & { cause?: unknown }).cause = cause;
  return error;
}
