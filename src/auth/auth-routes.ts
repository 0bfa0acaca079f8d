import express, { Router } from 'express';
import { OAuthError, type TokenService, ASSERTION_ALGORITHMS } from './token-service.js';

/**
 * The token endpoint and SMART discovery (https://hl7.org/fhir/smart-app-launch/conformance.html).
 * OAuth answers are OAuth's (RFC 6749 §5), not OperationOutcomes: clients' OAuth libraries read them.
 */
export interface AuthRouteDeps {
  tokens: TokenService;
  /** Public origin, or undefined to derive it from each request. */
  publicOrigin?: string;
  scopesSupported: string[];
}

export function authRoutes(deps: AuthRouteDeps): Router {
  const router = Router();
  const origin = (req: express.Request): string =>
    deps.publicOrigin ?? `${req.protocol}://${req.get('host')}`;

  router.get('/.well-known/smart-configuration', (req, res) => {
    res.json({
      token_endpoint: `${origin(req)}/auth/token`,
      token_endpoint_auth_methods_supported: ['private_key_jwt'],
      token_endpoint_auth_signing_alg_values_supported: ASSERTION_ALGORITHMS,
      grant_types_supported: ['client_credentials'],
      scopes_supported: deps.scopesSupported,
      capabilities: ['client-confidential-asymmetric', 'permission-v1', 'permission-v2'],
    });
  });

  router.post('/auth/token', express.urlencoded({ extended: false, limit: '64kb' }), async (req, res) => {
    res.setHeader('Cache-Control', 'no-store');
    res.setHeader('Pragma', 'no-cache');
    try {
      const form =
        typeof req.body === 'object' && req.body !== null ? (req.body as Record<string, string>) : {};
      res.json(await deps.tokens.exchange(form, assertionAudiences(req, deps.publicOrigin)));
    } catch (err) {
      if (err instanceof OAuthError) {
        if (err.retryAfterSeconds !== undefined) res.setHeader('Retry-After', String(err.retryAfterSeconds));
        res.status(err.status).json({ error: err.error, error_description: err.description });
        return;
      }
      res
        .status(400)
        .json({ error: 'invalid_request', error_description: 'The token request could not be processed' });
    }
  });
  return router;
}

/**
 * The token URLs a client assertion may name as its audience. With a configured public origin,
 * that one only. Without one (local development), the service's own loopback addresses — never
 * whatever the Host header says, or an assertion made for another server could be replayed here.
 */
export function assertionAudiences(req: express.Request, publicOrigin: string | undefined): string[] {
  if (publicOrigin) return [`${publicOrigin}/auth/token`];
  const port = req.socket.localPort;
  const audiences = [
    `http://localhost:${port}/auth/token`,
    `http://127.0.0.1:${port}/auth/token`,
    `http://[::1]:${port}/auth/token`,
  ];
  const host = req.get('host') ?? '';
  const hostname = host.replace(/:\d+$/, '');
  if (['localhost', '127.0.0.1', '[::1]'].includes(hostname))
    audiences.push(`${req.protocol}://${host}/auth/token`);
  return audiences;
}
