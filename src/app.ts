import express, { type Express } from 'express';
import helmet from 'helmet';
import { AnalyticsService } from './analytics/service.js';
import { auditRequests } from './auth/audit-middleware.js';
import type { AuditTrail } from './auth/audit-trail.js';
import { requireScopes, requireToken } from './auth/auth-middleware.js';
import { authRoutes } from './auth/auth-routes.js';
import { captureClientAddress } from './auth/client-address.js';
import { FailedAuthentications } from './auth/failed-authentications.js';
import { rateLimit } from './auth/rate-limit.js';
import type { TokenService } from './auth/token-service.js';
import type { Logger } from 'pino';
import { fhirError } from './fhir/errors.js';
import { errorHandler } from './http/error-handler.js';
import { analyticsRoutes, limitEvaluateMeasure } from './http/analytics-routes.js';
import { classifyRequest } from './http/classify-request.js';
import { fhirRoutes } from './http/fhir-routes.js';
import { readFhirBody } from './http/read-body.js';
import { requestLog } from './http/request-log.js';
import { sendJson } from './http/send.js';
import type { Organization, Reference } from '@medplum/fhirtypes';
import { OPERATIONS } from './operations/registry.js';
import { createServices } from './services.js';
import type { RestServices } from './rest/unit-of-work.js';
import type { FhirStore } from './store/fhir-store.js';
import type { ResourceValidator } from './validation/resource-validator.js';

export { createServices };

export interface AppDeps {
  store: FhirStore;
  /** The write path (compose builds it once for the app, the worker and the audit trail). */
  services?: RestServices;
  /** Built once (terminology and profiles compiled) and shared. */
  validator: ResourceValidator;
  /** The practice that receives referrals (see referral/practice.ts). */
  practice: Reference<Organization>;
  now?: () => string;
  /** Called after a commit that queued subscription notifications (wakes the delivery worker). */
  onNotificationsQueued?: () => void;
  /** A progress report goes to the referrer every N attended visits (default 6). */
  progressReportEveryVisits?: number;
  logger: Logger;
  bodyLimitBytes: number;
  baseUrl?: string;
  version: string;
  /** SMART Backend Services; without it authentication is off (local development and most tests). */
  security?: {
    tokens: TokenService;
    rateLimitPerMinute: number;
    /** Public origin for the token URL, e.g. https://referrals.example.org; from the request when unset. */
    publicOrigin?: string;
  };
  /** Records an AuditEvent for every FHIR request. */
  audit?: AuditTrail;
  /** Analytics requests per client a minute (ANALYTICS_RATE_LIMIT_PER_MINUTE, default 60). */
  analyticsRateLimitPerMinute?: number;
  /** Express 'trust proxy' (TRUST_PROXY): default false, the socket's address is the client's. */
  trustProxy?: false | number | string[];
  /** Failed authentications per address before 429 (AUTH_FAILURE_LIMIT / _WINDOW_SECONDS). */
  authFailures?: { limit: number; windowSeconds: number };
}

/** Builds the Express app from its dependencies: no globals and no listen, so tests can use it directly. */
export function createApp(deps: AppDeps): Express {
  const services = deps.services ?? createServices(deps);
  const app = express();
  app.disable('x-powered-by');
  // Proxies are trusted only as configured (TRUST_PROXY): req.ip, and so every per-address limit.
  app.set('trust proxy', deps.trustProxy ?? false);
  // Security headers; the API serves JSON, so the strictest defaults fit.
  app.use(helmet());
  // Where the request came from, read once on arrival (the socket may be gone when it is done).
  app.use(captureClientAddress());
  app.use(requestLog(deps.logger));

  app.get('/healthz', (_req, res) => {
    res.json({ status: 'ok' });
  });
  app.get('/readyz', async (_req, res) => {
    try {
      await deps.store.ping();
      res.json({ status: 'ready', store: deps.store.dialect });
    } catch {
      res.status(503).json({ status: 'unavailable', store: deps.store.dialect });
    }
  });

  const security = deps.security;
  const failures = new FailedAuthentications(deps.authFailures);
  if (security) {
    // The token endpoint is limited per address: it is reachable without a token.
    app.use('/auth/token', rateLimit(security.rateLimitPerMinute));
    app.use(
      authRoutes({
        tokens: security.tokens,
        publicOrigin: security.publicOrigin,
        scopesSupported: SCOPES_SUPPORTED,
      }),
    );
  }
  // One classification per FHIR request (src/rest/interaction.ts), read by every step below.
  app.use('/fhir', classifyRequest({ baseUrl: deps.baseUrl }));
  // Audit first, so refused requests (401, 403, 429, 4xx) are recorded too.
  if (deps.audit) app.use('/fhir', auditRequests(deps.audit, { operations: OPERATIONS }));
  if (security)
    app.use('/fhir', requireToken(security.tokens, failures), rateLimit(security.rateLimitPerMinute));
  app.use('/fhir', acceptJsonOnly, readFhirBody(deps.bodyLimitBytes));
  if (security) app.use('/fhir', requireScopes({ operations: OPERATIONS }));
  // The dashboard, the CSV exports and $evaluate-measure share one per-client analytics budget.
  const analyticsLimit = security ? rateLimit(deps.analyticsRateLimitPerMinute ?? 60) : undefined;
  if (analyticsLimit) app.use('/fhir', limitEvaluateMeasure(analyticsLimit));
  // One analytics service for $evaluate-measure and the dashboard, so they share its cache.
  const analytics = new AnalyticsService({ store: deps.store, now: deps.now, practice: deps.practice });
  app.use(
    '/fhir',
    fhirRoutes({
      store: deps.store,
      services,
      operations: OPERATIONS,
      analytics,
      server: {
        name: 'pt-referral-fhir',
        version: deps.version,
        startedAt: new Date().toISOString(),
        authentication: security
          ? { publicOrigin: security.publicOrigin, scopes: SCOPES_SUPPORTED }
          : undefined,
      },
    }),
  );
  // The dashboard and CSV exports, behind the bearer-token check when security is on (staff
  // sign-in is a later issue).
  app.use(
    analyticsRoutes({
      store: deps.store,
      service: analytics,
      ...(deps.audit ? { audit: deps.audit } : {}),
      ...(analyticsLimit ? { limit: analyticsLimit } : {}),
      ...(security ? { authorize: requireToken(security.tokens, failures) } : {}),
    }),
  );
  app.use((req, res) => {
    sendJson(
      res,
      404,
      fhirError('unknown-route', `Nothing at ${req.method} ${req.path.slice(0, 100)}`).outcome,
    );
  });
  app.use(errorHandler(deps.logger));
  return app;
}

/**
 * JSON is the only format served (https://hl7.org/fhir/R4/http.html#mime-type): a request that
 * accepts only XML or Turtle, by header or `_format`, gets 406 rather than JSON it did not ask for.
 */
function acceptJsonOnly(req: express.Request, _res: express.Response, next: express.NextFunction): void {
  const format = new URLSearchParams(req.originalUrl.split('?')[1] ?? '').get('_format');
  if (format && !/json/i.test(format)) {
    return next(
      fhirError(
        'not-acceptable',
        `_format '${format.slice(0, 50)}' is not supported; this server speaks JSON`,
      ),
    );
  }
  const accept = req.headers.accept;
  if (accept && !/json|\*\/\*|application\/\*/i.test(accept)) {
    return next(fhirError('not-acceptable', 'This server answers only application/fhir+json'));
  }
  next();
}

/** What /.well-known/smart-configuration advertises; clients are granted a subset of their own. */
export const SCOPES_SUPPORTED = [
  'system/*.cruds',
  'system/*.rs',
  'system/*.read',
  'system/*.write',
  'system/ServiceRequest.cru',
  'system/Communication.rs',
  'system/Task.rus',
  'system/Subscription.cruds',
];
