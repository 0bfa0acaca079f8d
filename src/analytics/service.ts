import type { MeasureReport, Organization, Reference, Resource } from '@medplum/fhirtypes';
import { fhirError } from '../fhir/errors.js';
import type { StoreReader } from '../store/fhir-store.js';
import { analyticsDefinitions } from './definitions.js';
import { evaluateMeasure } from './evaluate.js';
import type { FeedbackFact } from './feedback.js';
import type { ReferralFact } from './facts.js';
import { loadAnalyticsDataset, type AnalyticsDataset, type LoadOptions } from './loader.js';
import type { AnalyticsSubset } from './measures/types.js';
import type { Period } from './period.js';
import { resolveReferrer, type SourceIdentity } from './referrer.js';

/**
 * The analytics entry point for routes: loads a period's facts once and keeps them briefly
 * (stale-while-revalidate), so the dashboard's filters, every Measure and the exports of the same
 * period share one load. A referring-source filter is applied to the cached facts.
 *
 * Single flight (issue 11, item 12): at most one load of a period runs at a time, whoever asks —
 * the dashboard, `$evaluate-measure`, the CSV exports (a streaming export's load is the one the
 * others wait for) — and each MeasureReport is evaluated once per loaded dataset, keyed by
 * measure, period and referring source; concurrent identical requests share it.
 */
export interface AnalyticsServiceOptions {
  store: StoreReader;
  now?: () => string;
  practice?: Reference<Organization>;
  /** Served as is while younger than this (ms). */
  freshMs?: number;
  /** Served (and refreshed in the background) while younger than this (ms). */
  staleMs?: number;
}

/** A referring source to filter on: referrals whose referrer or referring organisation has this key. */
export interface SourceFilter {
  key: string;
  display: string;
  /** The FHIR reference asked for, for MeasureReport.subject. */
  reference?: MeasureReport['subject'];
}

interface CacheEntry {
  loadedAt: number;
  dataset?: AnalyticsDataset;
  pending?: Promise<AnalyticsDataset>;
}

/** Each period's facts take memory (about 1 kB per referral): keep a few. */
const MAX_CACHED_PERIODS = 4;

export class AnalyticsService {
  private readonly cache = new Map<string, CacheEntry>();
  /** MeasureReports evaluated from a dataset, by measure and source (dropped with the dataset). */
  private readonly reports = new WeakMap<AnalyticsDataset, Map<string, MeasureReport>>();
  private readonly freshMs: number;
  private readonly staleMs: number;
  /** How often a period was read from the store and a MeasureReport computed (observable in tests). */
  readonly stats = { loads: 0, evaluations: 0 };

  constructor(private readonly options: AnalyticsServiceOptions) {
    // Reading a year of a busy practice takes seconds (every referral's visits, bookings, Task
    // history…): figures up to 5 minutes old are served as they are, up to an hour old while a
    // background refresh runs. MeasureReport.date says when they were read.
    this.freshMs = options.freshMs ?? 5 * 60_000;
    this.staleMs = options.staleMs ?? 60 * 60_000;
  }

  get store(): StoreReader {
    return this.options.store;
  }

  now(): string {
    return this.options.now?.() ?? new Date().toISOString();
  }

  /** The period's dataset: cached, refreshed in the background once stale, loaded once at a time. */
  async dataset(period: Period): Promise<AnalyticsDataset> {
    const key = `${period.startMs}|${period.endMs}`;
    const entry = this.cache.get(key);
    const age = entry ? Date.now() - entry.loadedAt : Infinity;
    if (entry?.dataset && age < this.freshMs) return entry.dataset;
    if (entry?.dataset && age < this.staleMs) {
      if (!entry.pending) void this.refresh(key, period).catch(() => undefined);
      return entry.dataset;
    }
    if (entry?.pending) return entry.pending;
    return this.refresh(key, period);
  }

  /** The period's dataset if one is cached (fresh or stale), without loading. */
  cached(period: Period): AnalyticsDataset | undefined {
    const entry = this.cache.get(`${period.startMs}|${period.endMs}`);
    return entry?.dataset && Date.now() - entry.loadedAt < this.staleMs ? entry.dataset : undefined;
  }

  /** The load of the period under way, if one is: a caller that would load it waits for this one. */
  loading(period: Period): Promise<AnalyticsDataset> | undefined {
    return this.cache.get(`${period.startMs}|${period.endMs}`)?.pending;
  }

  /**
   * Loads the period now, handing each batch of facts to `onBatch` as it is read (the streaming
   * export), and keeps the result; requests for the period meanwhile wait for this load.
   */
  loadStreaming(period: Period, onBatch: NonNullable<LoadOptions['onBatch']>): Promise<AnalyticsDataset> {
    return this.refresh(`${period.startMs}|${period.endMs}`, period, onBatch);
  }

  /** Keeps a dataset loaded elsewhere for the next requests. */
  prime(period: Period, dataset: AnalyticsDataset): void {
    this.cache.set(`${period.startMs}|${period.endMs}`, { loadedAt: Date.now(), dataset });
    this.trim();
  }

  /** Forgets every cached period (after bulk writes, in tests). */
  invalidate(): void {
    this.cache.clear();
  }

  private refresh(key: string, period: Period, onBatch?: LoadOptions['onBatch']): Promise<AnalyticsDataset> {
    const entry: CacheEntry = this.cache.get(key) ?? { loadedAt: 0 };
    this.stats.loads++;
    const pending = loadAnalyticsDataset(this.options.store, {
      period,
      ...(onBatch ? { onBatch } : {}),
    }).then(
      (dataset) => {
        this.cache.set(key, { loadedAt: Date.now(), dataset });
        this.trim();
        return dataset;
      },
      (err: unknown) => {
        entry.pending = undefined;
        throw err;
      },
    );
    entry.pending = pending;
    this.cache.set(key, entry);
    return pending;
  }

  private trim(): void {
    while (this.cache.size > MAX_CACHED_PERIODS) {
      // A load under way is never evicted: its waiters would be joined by a second load.
      const oldest = [...this.cache.entries()]
        .filter(([, e]) => e.dataset || !e.pending)
        .sort((a, b) => a[1].loadedAt - b[1].loadedAt)[0];
      if (!oldest) return;
      this.cache.delete(oldest[0]);
    }
  }

  /**
   * The referring source behind a `subject` reference (Practitioner, PractitionerRole or
   * Organization on this server), normalised like a referral's requester.
   */
  async sourceOf(subject: string): Promise<SourceFilter> {
    const m = /^(Practitioner|PractitionerRole|Organization)\/([A-Za-z0-9\-.]{1,64})$/.exec(subject);
    if (!m) {
      throw fhirError(
        'invalid-search-parameter',
        'subject must be a Practitioner, PractitionerRole or Organization reference, e.g. Practitioner/123',
      );
    }
    const directory = new Map<string, Resource>();
    const [first] = await this.options.store.readReferences([subject]);
    if (!first) throw fhirError('resource-not-found', `${subject} is not on this server`);
    directory.set(subject, first);
    const role = first.resourceType === 'PractitionerRole' ? first : undefined;
    if (role) {
      const more = [role.practitioner?.reference, role.organization?.reference].filter(
        (r): r is string => !!r,
      );
      for (const r of await this.options.store.readReferences(more))
        directory.set(`${r.resourceType}/${r.id}`, r);
    }
    const identity = resolveReferrer({ reference: subject }, directory);
    const source: SourceIdentity =
      first.resourceType === 'Organization' && identity.organization ? identity.organization : identity;
    return {
      key: source.key,
      display: source.display,
      reference: { reference: subject, display: source.display } as MeasureReport['subject'],
    };
  }

  /** The Measure's summary MeasureReport for the period, optionally for one referring source. */
  async report(measureId: string, period: Period, source?: SourceFilter): Promise<MeasureReport> {
    const measure = analyticsDefinitions().measures.get(measureId);
    if (!measure) throw fhirError('resource-not-found', `Measure/${measureId.slice(0, 64)} is not known`);
    const dataset = await this.dataset(period);
    // The dataset is the period's; evaluation is synchronous, so the first of concurrent callers
    // evaluates and the others, resuming after it, find its report.
    let reports = this.reports.get(dataset);
    if (!reports) this.reports.set(dataset, (reports = new Map()));
    const key = JSON.stringify([measureId, source?.key ?? null, source?.reference?.reference ?? null]);
    let report = reports.get(key);
    if (!report) {
      this.stats.evaluations++;
      report = evaluateMeasure(
        measure,
        subsetOf(dataset, source?.key),
        { newReferrers: dataset.newReferrers },
        {
          period,
          // When the figures were read: for a cached period, earlier than now.
          now: dataset.computedAt,
          ...(source?.reference ? { subject: source.reference } : {}),
          ...(this.options.practice ? { reporter: this.options.practice } : {}),
        },
      );
      reports.set(key, report);
    }
    // Each caller gets its own copy: the shared one is never handed out to be changed.
    return structuredClone(report);
  }
}

/** The facts and feedback of one referring source (by referrer or organisation key), or all. */
export function subsetOf(
  dataset: Pick<AnalyticsDataset, 'facts' | 'feedback'>,
  sourceKey?: string,
): AnalyticsSubset {
  if (!sourceKey) return { facts: dataset.facts, feedback: dataset.feedback };
  const matches = (r: ReferralFact['referrer'] | FeedbackFact['referrer']): boolean =>
    r.key === sourceKey || r.organization?.key === sourceKey;
  return {
    facts: dataset.facts.filter((f) => matches(f.referrer)),
    feedback: dataset.feedback.filter((f) => matches(f.referrer)),
  };
}
