import type { NextFunction, Request, Response } from 'express';
import { FhirError } from '../fhir/errors.js';
import { classify, queryPairs, type Interaction } from '../rest/interaction.js';

declare module 'express-serve-static-core' {
  interface Request {
    /** What this FHIR request is, worked out once at the start of /fhir (see classifyRequest). */
    interaction?: Interaction;
    /** Why the request names no interaction (404/405), answered once the token has been checked. */
    interactionError?: FhirError;
    /** The public base URL of the FHIR endpoint, without a trailing slash. */
    fhirBaseUrl?: string;
  }
}

/**
 * The first middleware of /fhir: classifies the request once (https://hl7.org/fhir/R4/http.html),
 * from the path relative to the base as sent and the query of the URL as sent. Every later step
 * reads `req.interaction`: the token check (to find the public `GET metadata`), the scope check,
 * the audit record, the request log and the routes. A request that names no interaction is not
 * refused here: it is answered 404/405 by the routes, after the token, format and body checks,
 * exactly where the former Express routes answered it.
 */
export function classifyRequest(options: { baseUrl?: string }) {
  return (req: Request, _res: Response, next: NextFunction): void => {
    req.fhirBaseUrl = options.baseUrl ?? `${req.protocol}://${req.get('host')}${req.baseUrl}`;
    const q = req.originalUrl.indexOf('?');
    try {
      req.interaction = classify(req.method, req.path, q < 0 ? [] : queryPairs(req.originalUrl.slice(q + 1)));
    } catch (err) {
      if (!(err instanceof FhirError)) throw err;
      req.interactionError = err;
    }
    next();
  };
}
