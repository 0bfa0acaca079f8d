import type { NextFunction, Request, Response } from 'express';
import { fhirError } from '../fhir/errors.js';
import { bundleNeeds, messageNeeds, permissionsFor, type Need } from './required-permissions.js';
import { allows } from './scopes.js';
import type { AuthContext, TokenService } from './token-service.js';

declare module 'express-serve-static-core' {
  interface Request {
    auth?: AuthContext;
  }
}

/**
 * Every FHIR endpoint but `metadata` needs a bearer token from /auth/token; without a valid one the
 * answer is 401 with an OperationOutcome and a WWW-Authenticate challenge (RFC 6750 §3).
 */
export function requireToken(tokens: TokenService) {
  return async (req: Request, res: Response, next: NextFunction): Promise<void> => {
    const needs = permissionsFor(req.method, req.path);
    if (needs === 'public') return next();
    const header = req.headers.authorization ?? '';
    const token = /^Bearer\s+([A-Za-z0-9\-_.~+/]+=*)$/i.exec(header)?.[1];
    if (!token) {
      res.setHeader('WWW-Authenticate', 'Bearer realm="fhir"');
      return next(
        fhirError('unauthorized', 'A bearer access token is required (see /.well-known/smart-configuration)'),
      );
    }
    try {
      req.auth = await tokens.verifyAccessToken(token);
    } catch {
      res.setHeader('WWW-Authenticate', 'Bearer realm="fhir", error="invalid_token"');
      return next(fhirError('unauthorized', 'The access token is invalid or has expired'));
    }
    next();
  };
}

/** Checks the token's scopes against what the interaction needs (after the body is read, for Bundles). */
export function requireScopes() {
  return (req: Request, _res: Response, next: NextFunction): void => {
    if (!req.auth) return next();
    const needs = permissionsFor(req.method, req.path);
    if (needs === 'public') return next();
    const all: Need[] =
      needs === 'bundle'
        ? bundleNeeds(req.fhirBody?.json)
        : needs === 'message'
          ? messageNeeds(req.fhirBody?.json)
          : needs;
    const missing = all.find((n) => !allows(req.auth?.scopes ?? [], n.resourceType, n.permission));
    if (missing) {
      return next(
        fhirError(
          'insufficient-scope',
          `The token's scopes do not allow '${missing.permission}' on ${missing.resourceType === '*' ? 'all resource types' : missing.resourceType}`,
        ),
      );
    }
    if (all.some((n) => n.resourceType === 'AuditEvent') && req.auth.role !== 'admin') {
      return next(fhirError('forbidden', 'AuditEvents are available to admin clients only'));
    }
    next();
  };
}
