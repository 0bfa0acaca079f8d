import { Router, type Request, type Response } from 'express';
import { fhirError } from '../fhir/errors.js';
import { subscriptionEvents, subscriptionStatus } from '../delivery/subscription-operations.js';
import { requestProgressReport } from '../referral/progress-report.js';
import { processBundle } from '../rest/bundle-interaction.js';
import { processMessage } from '../rest/process-message.js';
import { validateOperation } from '../rest/validate-operation.js';
import { buildCapabilityStatement, type ServerInfo } from '../rest/capability-statement.js';
import { readHistory, readResource, vreadResource } from '../rest/read-interactions.js';
import { searchResources } from '../rest/search-interaction.js';
import { weakEtag } from '../rest/rest-result.js';
import {
  conditionalDelete,
  conditionalUpdate,
  createResource,
  deleteResource,
  updateResource,
} from '../rest/write-interactions.js';
import type { FhirStore } from '../store/fhir-store.js';
import { runWrite, type RestServices, type WriteContext } from '../rest/write-context.js';
import { scopedStore, type ScopedStore } from '../auth/scoped-store.js';
import { readPreferences } from './prefer.js';
import { sendJson, sendResult } from './send.js';

export interface FhirRouteDeps {
  store: FhirStore;
  services: RestServices;
  /** Public base URL of the FHIR endpoint, or undefined to derive it from each request. */
  baseUrl?: string;
  server: Omit<ServerInfo, 'baseUrl'>;
}

/**
 * The RESTful API (https://hl7.org/fhir/R4/http.html). Routes only translate HTTP into a call of
 * an interaction in `rest/` and its result back; they hold no FHIR rules of their own.
 */
export function fhirRoutes(deps: FhirRouteDeps): Router {
  const { services } = deps;
  // Every request sees the store through its client's access rules (src/auth/scoped-store.ts).
  const storeOf = (req: Request): ScopedStore => scopedStore(deps.store, req.auth);
  const write = <T>(req: Request, work: (ctx: WriteContext) => Promise<T>): Promise<T> =>
    runWrite(storeOf(req), services, work, req.auth);
  const router = Router({ strict: false });
  const base = (req: Request): string => deps.baseUrl ?? `${req.protocol}://${req.get('host')}${req.baseUrl}`;
  const query = (req: Request): [string, string][] => {
    const i = req.originalUrl.indexOf('?');
    return i < 0 ? [] : [...new URLSearchParams(req.originalUrl.slice(i + 1))];
  };
  const body = (req: Request): unknown => {
    if (req.fhirBody?.json === undefined) {
      throw fhirError('body-missing', 'This interaction needs a FHIR resource in the body');
    }
    return req.fhirBody.json;
  };
  const param = (req: Request, name: string): string => String(req.params[name]);

  router.get('/metadata', (req, res) => {
    sendJson(res, 200, buildCapabilityStatement({ ...deps.server, baseUrl: base(req) }));
  });

  router.post('/', async (req, res) => {
    const prefer = readPreferences(req);
    const bundle = await processBundle(storeOf(req), services, body(req), {
      baseUrl: base(req),
      returnMinimal: prefer.return === 'minimal',
      auth: req.auth,
    });
    sendJson(res, 200, bundle);
  });

  router.get('/_history', async (req, res) => {
    sendJson(
      res,
      200,
      await readHistory(storeOf(req), {
        params: query(req),
        baseUrl: base(req),
        selfUrl: `${base(req)}/_history`,
      }),
    );
  });

  const search = async (req: Request, res: Response, params: [string, string][]): Promise<void> => {
    const type = param(req, 'type');
    const bundle = await searchResources(storeOf(req), {
      resourceType: type,
      params,
      baseUrl: base(req),
      selfUrl: `${base(req)}/${type}`,
      strict: readPreferences(req).strict,
    });
    sendJson(res, 200, bundle);
  };

  router.get('/:type', (req, res) => search(req, res, query(req)));
  router.post('/:type/_search', (req, res) =>
    search(req, res, [...query(req), ...(req.fhirBody?.form ?? [])]),
  );

  router.get('/:type/_history', async (req, res) => {
    const type = param(req, 'type');
    sendJson(
      res,
      200,
      await readHistory(storeOf(req), {
        resourceType: type,
        params: query(req),
        baseUrl: base(req),
        selfUrl: `${base(req)}/${type}/_history`,
      }),
    );
  });

  router.post('/:type', async (req, res) => {
    if (param(req, 'type') === '$process-message') {
      sendJson(res, 200, await processMessage(storeOf(req), services, body(req), base(req), req.auth));
      return;
    }
    const prefer = readPreferences(req);
    const ifNoneExist = header(req, 'if-none-exist');
    const resource = body(req);
    const result = await write(req, (ctx) =>
      createResource(ctx, param(req, 'type'), resource, { ifNoneExist }),
    );
    sendResult(req, res, result, prefer, base(req));
  });

  const validate = (req: Request, res: Response, id?: string): void => {
    if (param(req, 'operation') !== '$validate') {
      throw fhirError(
        'unknown-route',
        `No operation ${param(req, 'operation').slice(0, 64)} on ${param(req, 'type')}`,
      );
    }
    const outcome = validateOperation(services.validator, {
      resourceType: param(req, 'type'),
      id,
      body: body(req),
      queryProfile: new URLSearchParams(query(req)).get('profile') ?? undefined,
    });
    sendJson(res, 200, outcome);
  };
  router.post('/:type/:operation', (req, res) => validate(req, res));
  router.post('/:type/:id/:operation', async (req, res) => {
    if (param(req, 'type') === 'EpisodeOfCare' && param(req, 'operation') === '$progress-report') {
      // A progress report to the referrer on request, composed from what is stored now.
      const communication = await write(req, (ctx) => requestProgressReport(ctx, param(req, 'id')));
      sendJson(res, 200, communication);
      return;
    }
    validate(req, res, param(req, 'id'));
  });

  router.put('/:type', async (req, res) => {
    const criteria = query(req);
    if (criteria.length === 0) {
      throw fhirError(
        'method-not-allowed',
        'PUT needs a resource id or search criteria (conditional update)',
      );
    }
    const resource = body(req);
    const result = await write(req, (ctx) =>
      conditionalUpdate(ctx, param(req, 'type'), new URLSearchParams(criteria).toString(), resource, {
        ifMatch: header(req, 'if-match'),
      }),
    );
    sendResult(req, res, result, readPreferences(req), base(req));
  });

  router.delete('/:type', async (req, res) => {
    const criteria = query(req);
    if (criteria.length === 0) {
      throw fhirError(
        'method-not-allowed',
        'DELETE needs a resource id or search criteria (conditional delete)',
      );
    }
    const result = await write(req, (ctx) =>
      conditionalDelete(ctx, param(req, 'type'), new URLSearchParams(criteria).toString()),
    );
    sendResult(req, res, result, readPreferences(req), base(req));
  });

  router.get('/:type/:id', async (req, res) => {
    const result = await readResource(storeOf(req), param(req, 'type'), param(req, 'id'));
    if (result.version && notModified(req, result.version.versionId, result.version.lastUpdated)) {
      res.setHeader('ETag', weakEtag(result.version.versionId));
      res.status(304).end();
      return;
    }
    sendResult(req, res, result, readPreferences(req), base(req));
  });

  router.put('/:type/:id', async (req, res) => {
    const resource = body(req);
    const result = await write(req, (ctx) =>
      updateResource(ctx, param(req, 'type'), param(req, 'id'), resource, {
        ifMatch: header(req, 'if-match'),
      }),
    );
    sendResult(req, res, result, readPreferences(req), base(req));
  });

  router.delete('/:type/:id', async (req, res) => {
    const result = await write(req, (ctx) => deleteResource(ctx, param(req, 'type'), param(req, 'id')));
    sendResult(req, res, result, readPreferences(req), base(req));
  });

  router.get('/:type/:id/_history', async (req, res) => {
    const type = param(req, 'type');
    const id = param(req, 'id');
    sendJson(
      res,
      200,
      await readHistory(storeOf(req), {
        resourceType: type,
        id,
        params: query(req),
        baseUrl: base(req),
        selfUrl: `${base(req)}/${type}/${id}/_history`,
      }),
    );
  });

  router.get('/:type/:id/_history/:vid', async (req, res) => {
    const result = await vreadResource(storeOf(req), param(req, 'type'), param(req, 'id'), param(req, 'vid'));
    sendResult(req, res, result, readPreferences(req), base(req));
  });

  router.get('/:type/:id/:operation', async (req, res) => {
    const operation = param(req, 'operation');
    if (param(req, 'type') !== 'Subscription' || (operation !== '$status' && operation !== '$events')) {
      throw fhirError('unknown-route', `No operation ${operation.slice(0, 64)} on ${param(req, 'type')}`);
    }
    const now = services.now();
    const bundle =
      operation === '$status'
        ? await subscriptionStatus(storeOf(req), param(req, 'id'), base(req), now)
        : await subscriptionEvents(
            storeOf(req),
            param(req, 'id'),
            new URLSearchParams(query(req)),
            base(req),
            now,
          );
    sendJson(res, 200, bundle);
  });

  router.all('/{*rest}', (req) => {
    const known = ['GET', 'HEAD', 'POST', 'PUT', 'DELETE'].includes(req.method);
    throw known
      ? fhirError('unknown-route', `No FHIR interaction at ${req.method} ${req.path.slice(0, 100)}`)
      : fhirError('method-not-allowed', `Method ${req.method} is not supported`);
  });

  return router;
}

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
