import type { NextFunction, Request, Response } from 'express';
import { fhirError } from '../fhir/errors.js';
import { clientAddress } from './client-address.js';
import type { FailedAuthentications } from './failed-authentications.js';
import { isPublic, requiredPermissions, type OperationPermissions } from './required-permissions.js';
import { allows } from './scopes.js';
import { auditTrailIsAppendOnly } from './scoped-store.js';
import type { AuthContext, TokenService } from './token-service.js';

declare module 'express-serve-static-core' {
  interface Request {
    auth?: AuthContext;
  }
}

/**
 * Every FHIR endpoint but `GET metadata` needs a bearer token from /auth/token; without a valid
 * one the answer is 401 with an OperationOutcome and a WWW-Authenticate challenge (RFC 6750 §3).
 * The token is asked for before anything else is said about the request, even that its path
 * names nothing (404): `req.interaction` is only looked at to find the public one. Outside /fhir
 * (the dashboard) there is no interaction, so a token is always needed.
 */
export function requireToken(tokens: TokenService, failures?: FailedAuthentications) {
  return async (req: Request, res: Response, next: NextFunction): Promise<void> => {
    if (isPublic(req.interaction)) return next();
    const header = req.headers.authorization ?? '';
    const token = /^Bearer\s+([A-Za-z0-9\-_.~+/]+=*)$/i.exec(header)?.[1];
    if (!token) {
      res.setHeader('WWW-Authenticate', 'Bearer realm="fhir"');
      return next(
        refused(
          req,
          res,
          failures,
          'A bearer access token is required (see /.well-known/smart-configuration)',
        ),
      );
    }
    try {
      req.auth = await tokens.verifyAccessToken(token);
    } catch {
      res.setHeader('WWW-Authenticate', 'Bearer realm="fhir", error="invalid_token"');
      return next(refused(req, res, failures, 'The access token is invalid or has expired'));
    }
    next();
  };
}

/**
 * A failed authentication: 401 (RFC 6750 §3.1), or 429 with Retry-After once the address has
 * failed too often in the current window (failed-authentications.ts). Either way the audit trail
 * coalesces its record with the others of the address and window (audit-trail.ts).
 */
function refused(
  req: Request,
  res: Response,
  failures: FailedAuthentications | undefined,
  message: string,
): Error {
  const verdict = failures?.fail(clientAddress(req));
  if (verdict?.limited) {
    res.setHeader('Retry-After', String(verdict.retryAfterSeconds));
    return fhirError(
      'rate-limited',
      `Too many failed authentications from this address: the limit is ${failures?.limit} in ${failures?.windowSeconds} s`,
    );
  }
  return fhirError('unauthorized', message);
}

/**
 * Checks the token's scopes against what `req.interaction` needs (after the body is read, for
 * Bundles and messages). A request whose path named no interaction is left to the routes, which
 * answer it as they always have (404/405).
 */
export function requireScopes(options: { operations: OperationPermissions }) {
  return (req: Request, _res: Response, next: NextFunction): void => {
    const interaction = req.interaction;
    if (!req.auth || !interaction || isPublic(interaction)) return next();
    const needs = requiredPermissions(interaction, req.fhirBody?.json, {
      operations: options.operations,
      baseUrl: req.fhirBaseUrl ?? '',
    });
    const missing = needs.find((n) => !allows(req.auth?.scopes ?? [], n.resourceType, n.permission));
    if (missing) {
      return next(
        fhirError(
          'insufficient-scope',
          `The token's scopes do not allow '${missing.permission}' on ${missing.resourceType === '*' ? 'all resource types' : missing.resourceType}`,
        ),
      );
    }
    // Append-only for everyone (see scoped-store.ts, which refuses the write itself on every path).
    if (needs.some((n) => n.resourceType === 'AuditEvent' && n.permission !== 'r' && n.permission !== 's')) {
      return next(auditTrailIsAppendOnly());
    }
    if (needs.some((n) => n.resourceType === 'AuditEvent') && req.auth.role !== 'admin') {
      return next(fhirError('forbidden', 'AuditEvents are available to admin clients only'));
    }
    next();
  };
}
