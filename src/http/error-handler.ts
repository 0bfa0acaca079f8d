import type { NextFunction, Request, Response } from 'express';
import type { Logger } from 'pino';
import { FhirError, fhirError, isFhirError } from '../fhir/errors.js';
import { sendJson } from './send.js';

/**
 * The one error handler: every failure leaves as an OperationOutcome with the status from the
 * error-code table. Unexpected errors become a bare 500: no message, no stack, nothing that could
 * carry patient data or internals to the client; the log gets the error's type and stack frames.
 */
export function errorHandler(logger: Logger) {
  return (err: unknown, req: Request, res: Response, _next: NextFunction): void => {
    const fhir = toFhirError(err);
    if (fhir.status >= 500) {
      logger.error({ requestId: res.locals.requestId, err: describeError(err) }, 'request failed');
    }
    // The client may be gone already (an aborted upload): answering it must not throw either.
    try {
      if (res.headersSent || res.destroyed) {
        res.end();
        return;
      }
      sendJson(res, fhir.status, fhir.outcome);
    } catch {
      res.destroy();
    }
  };
}

function toFhirError(err: unknown): FhirError {
  if (isFhirError(err)) {
    return err;
  }
  // Errors Express raises itself before our handlers run (e.g. a malformed %-escape in the path).
  const status =
    (err as { status?: number; statusCode?: number })?.status ?? (err as { statusCode?: number })?.statusCode;
  if (status === 400) {
    return fhirError('invalid-id', 'The request URL is malformed');
  }
  if (status === 413) {
    return fhirError('body-too-large', 'The body is too large');
  }
  return fhirError('internal', 'An internal error occurred; it has been logged');
}

/** Type and stack frames only: messages may quote input, and input may be patient data. */
function describeError(err: unknown): { type: string; stack?: string } {
  if (err instanceof Error) {
    return { type: err.name, stack: err.stack?.split('\n').slice(1, 12).join('\n') };
  }
  return { type: typeof err };
}
