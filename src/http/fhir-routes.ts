import { Router, type Request, type Response } from 'express';
import type { AnalyticsService } from '../analytics/service.js';
import { scopedStore } from '../auth/scoped-store.js';
import { fhirError } from '../fhir/errors.js';
import { OPERATIONS, type OperationRegistry } from '../operations/registry.js';
import type { OperationScope } from '../operations/types.js';
import { dispatch, type ServerFacts } from '../rest/dispatch.js';
import { routeOf, type Interaction } from '../rest/interaction.js';
import { weakEtag } from '../rest/rest-result.js';
import { runWrite, type RestServices } from '../rest/write-context.js';
import type { FhirStore } from '../store/fhir-store.js';
import { readPreferences } from './prefer.js';
import { sendJson, sendResult } from './send.js';

export interface FhirRouteDeps {
  store: FhirStore;
  services: RestServices;
  server: ServerFacts;
  operations?: OperationRegistry;
  analytics?: AnalyticsService;
}

/**
 * The RESTful API (https://hl7.org/fhir/R4/http.html): one handler that reads the request's one
 * classification (`req.interaction`, src/http/classify-request.ts), runs it through the dispatch
 * (src/rest/dispatch.ts; operations through the registry, src/operations/registry.ts) and frames
 * the result. It holds no FHIR rules of its own: only HTTP (headers in, status/ETag/body out).
 */
export function fhirRoutes(deps: FhirRouteDeps): Router {
  const operations = deps.operations ?? OPERATIONS;
  const router = Router({ strict: false });
  router.use(async (req: Request, res: Response) => {
    if (req.interactionError) throw req.interactionError;
    const interaction = req.interaction;
    if (!interaction) throw fhirError('unknown-route', `No FHIR interaction at ${req.method}`);
    // The request log names the route pattern (never the values): src/http/request-log.ts.
    res.locals.route = `${req.baseUrl}${routeOf(interaction)}`;
    const baseUrl = req.fhirBaseUrl as string;
    const scope = requestScope(deps, req, baseUrl);
    const prefer = readPreferences(req);
    const result = await dispatch(
      interaction,
      {
        body: req.fhirBody?.json,
        form: req.fhirBody?.form,
        ifNoneExist: header(req, 'if-none-exist'),
        ifMatch: header(req, 'if-match'),
        strict: prefer.strict,
        returnMinimal: prefer.return === 'minimal',
      },
      scope,
      { operations, server: deps.server },
    );
    if (!FRAMED.has(interaction.kind)) {
      // Searches, histories, Bundles, operations and the CapabilityStatement: the resource as is.
      sendJson(res, result.status, result.resource as NonNullable<typeof result.resource>);
      return;
    }
    // Conditional read, on read only, as before (vread names its version already).
    if (
      interaction.kind === 'read' &&
      result.version &&
      notModified(req, result.version.versionId, result.version.lastUpdated)
    ) {
      res.setHeader('ETag', weakEtag(result.version.versionId));
      res.status(304).end();
      return;
    }
    sendResult(req, res, result, prefer, baseUrl);
  });
  return router;
}

/**
 * What a request runs with: the store through its client's access rules (src/auth/scoped-store.ts)
 * and a write runner that gives each write interaction one unit of work.
 */
function requestScope(deps: FhirRouteDeps, req: Request, baseUrl: string): OperationScope {
  const store = scopedStore(deps.store, req.auth);
  return {
    reader: store,
    store,
    services: deps.services,
    auth: req.auth,
    baseUrl,
    write: (work) => runWrite(store, deps.services, work, req.auth),
    ...(deps.analytics ? { analytics: deps.analytics } : {}),
  };
}

/** The interactions whose answer carries a version: ETag, Last-Modified, Location, Prefer: return. */
const FRAMED = new Set<Interaction['kind']>([
  'read',
  'vread',
  'create',
  'update',
  'conditional-update',
  'delete',
  'conditional-delete',
]);

function header(req: Request, name: string): string | undefined {
  const value = req.headers[name];
  return typeof value === 'string' && value !== '' ? value : undefined;
}

/** Conditional read (https://hl7.org/fhir/R4/http.html#cread): If-None-Match / If-Modified-Since. */
function notModified(req: Request, versionId: string, lastUpdated: string): boolean {
  const ifNoneMatch = header(req, 'if-none-match');
  if (ifNoneMatch) {
    return ifNoneMatch.split(',').some((tag) => tag.trim().replace(/^W\//, '') === `"${versionId}"`);
  }
  const ifModifiedSince = header(req, 'if-modified-since');
  if (ifModifiedSince) {
    const since = Date.parse(ifModifiedSince);
    return !Number.isNaN(since) && Math.floor(Date.parse(lastUpdated) / 1000) <= Math.floor(since / 1000);
  }
  return false;
}
