import { Router, type Request, type RequestHandler, type Response } from 'express';
import type { Organization, Reference } from '@medplum/fhirtypes';
import { DASHBOARD_CSS, DASHBOARD_JS } from '../analytics/dashboard/assets.js';
import { dashboardModel, type DashboardModel } from '../analytics/dashboard/model.js';
import { errorPage, renderDashboard } from '../analytics/dashboard/page.js';
import { measureReportCsv, REFERRAL_HEADER, csvLine, referralCsvLine } from '../analytics/csv.js';
import type { ReferralFact } from '../analytics/facts.js';
import { parsePeriod, type Period } from '../analytics/period.js';
import { AnalyticsService, subsetOf } from '../analytics/service.js';
import { FhirError } from '../fhir/errors.js';
import { assertAnalyticsAccess, evaluateMeasureReport } from '../operations/evaluate-measure.js';
import type { StoreReader } from '../store/fhir-store.js';
import type { AuditTrail } from '../auth/audit-trail.js';
import { auditAnalytics } from './analytics-audit.js';

/**
 * Referral-programme analytics over HTTP, outside the FHIR endpoint (`$evaluate-measure` is an
 * operation of the registry, src/operations/evaluate-measure.ts, and the Measures and the feedback
 * Questionnaire are stored resources, src/conformance/published-definitions.ts):
 * - GET /analytics/measures/[id].csv?periodStart=&periodEnd=[&subject=] → the same MeasureReport
 *   as CSV (one row per group and stratum);
 * - GET /analytics/export.csv?periodStart=&periodEnd=&source= → one row per referral, streamed,
 *   with X-Total-Rows first so the page can show progress;
 * - GET /dashboard?periodStart=&periodEnd=&source= → the staff dashboard (HTML + SVG), with its
 *   stylesheet and script under /dashboard/assets/.
 *
 * `authorize` (an Express handler) guards them, and the dashboard takes its figures only through
 * `dashboardData` — the seams for staff sign-in, which does not exist yet (a later issue).
 */
export interface AnalyticsRouteDeps {
  store: StoreReader;
  practice?: Reference<Organization>;
  now?: () => string;
  /** Shared with tests and other routes; built from `store` when absent. */
  service?: AnalyticsService;
  /** Guards the dashboard and the exports (calls next(err) to refuse). Default: allow. */
  authorize?: RequestHandler;
  /** Records an AuditEvent per dashboard and export request. */
  audit?: AuditTrail;
  /**
   * The analytics rate limit (per client), shared with `$evaluate-measure` (see
   * `limitEvaluateMeasure`); after `authorize`, so it counts per client, not per address.
   */
  limit?: RequestHandler;
  /** The dashboard's one data source. Default: the service's cached dataset, filtered by source. */
  dashboardData?: DashboardData;
  practiceName?: string;
}

export type DashboardData = (
  query: { period: Period; source?: string },
  req: Request,
) => Promise<DashboardModel>;

const SECURITY_HEADERS: Record<string, string> = {
  'Content-Security-Policy':
    "default-src 'none'; style-src 'self'; script-src 'self'; img-src 'self' data:; connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'",
  'X-Content-Type-Options': 'nosniff',
  'Referrer-Policy': 'no-referrer',
  // Figures about patients' care: never cached by a shared cache.
  'Cache-Control': 'no-store',
};

export function analyticsRoutes(deps: AnalyticsRouteDeps): Router {
  const service =
    deps.service ?? new AnalyticsService({ store: deps.store, now: deps.now, practice: deps.practice });
  const dashboardData: DashboardData =
    deps.dashboardData ??
    (async ({ period, source }) => dashboardModel(await service.dataset(period), period, source));
  const router = Router({ strict: false });
  const query = (req: Request): URLSearchParams => new URLSearchParams(req.originalUrl.split('?')[1] ?? '');
  const basePath = (req: Request): string => req.baseUrl;
  const evaluate = (req: Request, id: string) => evaluateMeasureReport(service, id, query(req));

  // Audited first, so that refusals (401, 403, 429) are recorded too, as on /fhir.
  if (deps.audit) router.use(['/dashboard', '/analytics'], auditAnalytics(deps.audit));
  if (deps.authorize) {
    router.use('/dashboard', deps.authorize);
    router.use('/analytics', deps.authorize);
  }
  // The figures span every referrer and read the store unscoped: practice and admin clients only,
  // with the scope $evaluate-measure needs.
  router.use(['/dashboard', '/analytics'], (req, _res, next) => {
    assertAnalyticsAccess(req.auth);
    next();
  });
  // One budget per client for every analytics request; the static assets are not counted.
  const limit = deps.limit;
  if (limit) {
    router.use(['/dashboard', '/analytics'], (req, res, next) =>
      req.originalUrl.startsWith('/dashboard/assets/') ? next() : limit(req, res, next),
    );
  }

  router.get('/analytics/measures/:file', async (req, res, next) => {
    const id = /^([a-z0-9-]{1,64})\.csv$/.exec(String(req.params.file))?.[1];
    if (!id) return next();
    const report = await evaluate(req, id);
    res.status(200).set(SECURITY_HEADERS).type('text/csv; charset=utf-8');
    res.setHeader('Content-Disposition', `attachment; filename="${id}.csv"`);
    res.send(measureReportCsv(report));
  });

  router.get('/dashboard/assets/dashboard.css', (_req, res) => {
    res
      .set(SECURITY_HEADERS)
      .set('Cache-Control', 'public, max-age=300')
      .type('text/css')
      .send(DASHBOARD_CSS);
  });
  router.get('/dashboard/assets/dashboard.js', (_req, res) => {
    res
      .set(SECURITY_HEADERS)
      .set('Cache-Control', 'public, max-age=300')
      .type('text/javascript')
      .send(DASHBOARD_JS);
  });

  router.get('/dashboard', async (req, res) => {
    const started = performance.now();
    try {
      const params = query(req);
      const period = dashboardPeriod(params, service.now());
      const source = params.get('source') || undefined;
      const model = await dashboardData({ period, ...(source ? { source } : {}) }, req);
      const html = renderDashboard(model, {
        basePath: basePath(req),
        elapsedMs: performance.now() - started,
        ...(deps.practiceName ? { practiceName: deps.practiceName } : {}),
      });
      res.status(200).set(SECURITY_HEADERS).type('text/html; charset=utf-8').send(html);
    } catch (err) {
      const status = err instanceof FhirError ? err.status : 500;
      const message =
        err instanceof FhirError
          ? err.message
          : 'The dashboard could not be computed; the error has been logged.';
      if (status >= 500) throw err;
      res
        .status(status)
        .set(SECURITY_HEADERS)
        .type('text/html; charset=utf-8')
        .send(errorPage(status, message, basePath(req)));
    }
  });

  router.get('/analytics/export.csv', async (req, res) => {
    const params = query(req);
    const period = dashboardPeriod(params, service.now());
    const source = params.get('source') || undefined;
    await exportReferrals(req, res, service, period, source);
  });

  return router;
}

/**
 * The analytics limit for `$evaluate-measure` on the FHIR endpoint: the same budget as the
 * dashboard and the exports, since it reads the same figures. Other FHIR requests pass.
 */
export function limitEvaluateMeasure(limit: RequestHandler): RequestHandler {
  return (req, res, next) => {
    const interaction = req.interaction;
    if (interaction?.kind === 'operation' && interaction.operation === 'evaluate-measure') {
      return limit(req, res, next);
    }
    next();
  };
}

/** The dashboard's period: as given, or the twelve months up to today. */
function dashboardPeriod(params: URLSearchParams, now: string): Period {
  const start = params.get('periodStart') || undefined;
  const end = params.get('periodEnd') || undefined;
  if (start || end) return parsePeriod(start, end);
  const today = now.slice(0, 10);
  const d = new Date(`${today}T00:00:00Z`);
  const from = new Date(Date.UTC(d.getUTCFullYear() - 1, d.getUTCMonth(), d.getUTCDate() + 1));
  return parsePeriod(from.toISOString().slice(0, 10), today);
}

/**
 * One CSV row per referral of the period (and source). From the cache when the period is loaded;
 * otherwise rows are written as each batch of referrals is computed, after an X-Total-Rows header
 * (when known) so the page can show how far along the export is.
 */
async function exportReferrals(
  req: Request,
  res: Response,
  service: AnalyticsService,
  period: Period,
  source: string | undefined,
): Promise<void> {
  const keep = (f: ReferralFact): boolean =>
    !source || f.referrer.key === source || f.referrer.organization?.key === source;
  const start = (total: number | undefined): void => {
    res.status(200).set(SECURITY_HEADERS);
    res.type('text/csv; charset=utf-8');
    res.setHeader(
      'Content-Disposition',
      `attachment; filename="referrals-${period.start.slice(0, 10)}-${period.end.slice(0, 10)}.csv"`,
    );
    if (total !== undefined) res.setHeader('X-Total-Rows', String(total));
    res.flushHeaders();
    res.write(csvLine(REFERRAL_HEADER));
  };
  /**
   * Writes the facts' rows, waiting for the client to drain when `paced`. The streaming load is
   * not paced: other requests for the period wait for that load, and a client reading slowly
   * must not hold them up; its rows are buffered instead (about a third of the facts' own memory,
   * which the load holds anyway until it is cached).
   */
  const write = async (facts: ReferralFact[], paced = true): Promise<void> => {
    for (let i = 0; i < facts.length; i += 500) {
      const chunk = facts
        .slice(i, i + 500)
        .filter(keep)
        .map(referralCsvLine)
        .join('');
      if (res.destroyed) return;
      // A client gone mid-export never drains: stop waiting when the connection closes, since
      // other requests for the period may be waiting for this load.
      if (chunk && !res.write(chunk) && paced) {
        await new Promise((resolve) => {
          res.once('drain', resolve);
          res.once('close', resolve);
        });
      }
    }
  };
  try {
    // Cached, or being loaded for another request: written from that one load.
    const ready = service.cached(period) ?? (await service.loading(period));
    if (ready) {
      const rows = subsetOf(ready, source).facts;
      start(rows.length);
      await write(rows);
    } else {
      let started = false;
      await service.loadStreaming(period, async (facts, progress) => {
        if (!started) {
          start(source ? undefined : progress.total);
          started = true;
        }
        await write(facts, false);
      });
      if (!started) start(0);
    }
    res.end();
  } catch (err) {
    if (!res.headersSent) throw err;
    req.socket.destroy();
  }
}
