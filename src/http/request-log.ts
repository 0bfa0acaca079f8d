import { randomUUID } from 'node:crypto';
import type { NextFunction, Request, Response } from 'express';
import type { Logger } from 'pino';

const REQUEST_ID = /^[A-Za-z0-9\-_.:]{1,128}$/;

/**
 * One structured line per request: method, route pattern, status, latency and request id. Never the
 * URL (query strings carry identifiers and names), headers or bodies: no patient data in logs.
 */
export function requestLog(logger: Logger) {
  return (req: Request, res: Response, next: NextFunction): void => {
    const started = process.hrtime.bigint();
    const incoming = req.headers['x-request-id'];
    const requestId = typeof incoming === 'string' && REQUEST_ID.test(incoming) ? incoming : randomUUID();
    res.locals.requestId = requestId;
    res.setHeader('X-Request-ID', requestId);
    let logged = false;
    const log = (aborted: boolean): void => {
      if (logged) return;
      logged = true;
      // The FHIR routes name their pattern from the request's classification (fhir-routes.ts).
      const route =
        typeof res.locals.route === 'string'
          ? res.locals.route
          : req.route?.path
            ? `${req.baseUrl}${String(req.route.path)}`
            : 'unmatched';
      logger.info(
        {
          requestId,
          method: req.method,
          route,
          status: res.statusCode,
          ms: Number(process.hrtime.bigint() - started) / 1e6,
          ...(aborted ? { aborted: true } : {}),
        },
        'request',
      );
    };
    // A listener that throws ends the process (an 'uncaughtException'): never let one out.
    const guarded = (aborted: boolean) => (): void => {
      try {
        log(aborted);
      } catch {
        // A log line is not worth the process.
      }
    };
    res.on('finish', guarded(false));
    // Closed before the answer was written: the client went away (an aborted upload).
    res.on('close', () => {
      if (!res.writableFinished) guarded(true)();
    });
    next();
  };
}
