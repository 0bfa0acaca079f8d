import type {
  Appointment,
  CarePlan,
  Encounter,
  EpisodeOfCare,
  Observation,
  PractitionerRole,
  QuestionnaireResponse,
  Reference,
  Resource,
  ServiceRequest,
  Task,
} from '@medplum/fhirtypes';
import { parseSearch } from '../fhir/search/parse-search.js';
import { OUTCOME_MEASURES } from '../progress/outcome-measures.js';
import type { SearchFilter, SearchQuery } from '../fhir/search/search-query.js';
import type { StoreReader } from '../store/fhir-store.js';
import { idOf, referralFacts, type ReferralFact } from './facts.js';
import { FEEDBACK_QUESTIONNAIRE, feedbackFacts, isFeedbackResponse, type FeedbackFact } from './feedback.js';
import { instantMs, type Period } from './period.js';
import { NPI_SYSTEM, REFERENCE_SYSTEM, REFERRER_NAME_SYSTEM, type ReferrerIdentity } from './referrer.js';

/**
 * The one loader: reads what the measures need for a period straight through the store contract
 * (dialect-neutral), in bulk — never one query per referral:
 * - the referral Tasks' history once, by lastUpdated windows bisected until each fits a page
 *   (every version: triage and booking times, and whether a cancelled referral had been accepted);
 * - the period's ServiceRequests by `authored` month (or day) windows;
 * - per batch of referrals, with one search per chunk of ids on an indexed reference parameter:
 *   their EpisodeOfCare, Appointments, Encounters (based on the referral, or of the episode without
 *   naming it), and their patients' outcome Observations and CarePlans; the requesters with
 *   readReferences;
 * then reduces each batch to ReferralFacts (facts.ts) and lets the resources go, so memory holds
 * facts (about 1 kB per referral), not resources. Feedback is the period's QuestionnaireResponses
 * to the feedback Questionnaire; new referrers take one look-back search per referring source.
 *
 * Two shapes of search are avoided because the store answers them slowly on large tables: a date
 * range with two bounds (the second is checked per candidate through the wrong index), and an OR of
 * (type, id) reference pairs (not index-driven); ids alone become an indexed IN.
 */
export interface LoadOptions {
  period: Period;
  /** Referrals per batch of related-resource searches. */
  batchSize?: number;
  /** Called with each batch's facts as it is done (for streaming exports) and the progress. */
  onBatch?: (facts: ReferralFact[], progress: { done: number; total: number }) => void | Promise<void>;
}

export interface AnalyticsDataset {
  period: Period;
  facts: ReferralFact[];
  feedback: FeedbackFact[];
  /** Referrer keys with no referral on record before the period. */
  newReferrers: Set<string>;
  /** Every referring source and organisation seen, by key, with its display. */
  sources: Map<string, { display: string; kind: 'referrer' | 'organization'; referrals: number }>;
  /** When the figures were read from the store (MeasureReport.date). */
  computedAt: string;
  /** Milliseconds spent per loading step, for the benchmark. */
  timings: Record<string, number>;
}

const DEFAULT_BATCH = 500;
/** Only outcome-measure Observations are read (their codes from the catalog). */
const OUTCOME_CODES: SearchFilter = {
  kind: 'token',
  code: 'code',
  not: false,
  values: OUTCOME_MEASURES.flatMap((m) => m.codings.map((c) => ({ system: c.system, value: c.code }))),
};
/** Largest page read at once (history windows, referral windows). */
const PAGE = 5000;
/** Task versions of a referral are written at or after its receipt; allow for clock skew. */
const HISTORY_MARGIN_MS = 7 * 86_400_000;
const FULFILL = 'http://hl7.org/fhir/CodeSystem/task-code';

export async function loadAnalyticsDataset(
  store: StoreReader,
  options: LoadOptions,
): Promise<AnalyticsDataset> {
  const { period } = options;
  const computedAt = new Date().toISOString();
  const batchSize = options.batchSize ?? DEFAULT_BATCH;
  const timings: Record<string, number> = {};
  const timed = async <T>(name: string, work: () => Promise<T>): Promise<T> => {
    const started = performance.now();
    try {
      return await work();
    } finally {
      timings[name] = (timings[name] ?? 0) + performance.now() - started;
    }
  };

  // The total is only for progress reports (the streaming export): not counted otherwise.
  const total = options.onBatch ? await timed('count', () => countReferrals(store, period)) : 0;
  const history = await timed('taskHistory', () =>
    loadTaskHistory(store, period.startMs - HISTORY_MARGIN_MS),
  );
  const directory = new Map<string, Resource>();
  const referencesByKey = new Map<string, Set<string>>();
  const facts: ReferralFact[] = [];

  let pending: ServiceRequest[] = [];
  const flush = async (): Promise<void> => {
    const referrals = pending;
    pending = [];
    if (referrals.length === 0) return;
    const batch = await timed('related', () => loadRelated(store, referrals, history));
    await timed('requesters', () =>
      resolveDirectory(
        store,
        directory,
        referrals.map((r) => r.requester),
      ),
    );
    const started = performance.now();
    const done = referralFacts(batch, directory);
    timings.facts = (timings.facts ?? 0) + performance.now() - started;
    const requesters = new Map(referrals.map((r) => [r.id, r.requester?.reference]));
    for (const fact of done) {
      const ref = requesters.get(fact.id);
      if (ref) addToSet(referencesByKey, fact.referrer.key, ref);
    }
    facts.push(...done);
    await options.onBatch?.(done, { done: facts.length, total: Math.max(total, facts.length) });
  };

  for await (const referrals of referralWindows(store, period, timed)) {
    for (const referral of referrals) {
      pending.push(referral);
      if (pending.length >= batchSize) await flush();
    }
  }
  await flush();
  const displays = canonicalDisplays(facts);

  const feedback = await timed('feedback', () => loadFeedback(store, period, directory));
  for (const f of feedback) {
    f.referrer.display = displays.get(f.referrer.key) ?? f.referrer.display;
    if (f.referrer.organization) {
      f.referrer.organization.display =
        displays.get(f.referrer.organization.key) ?? f.referrer.organization.display;
    }
  }
  const newReferrers = await timed('newReferrers', () =>
    findNewReferrers(store, period, facts, referencesByKey),
  );
  return { period, facts, feedback, newReferrers, sources: sourcesOf(facts, feedback), computedAt, timings };
}

/**
 * A window of `authored`, searched with one `eq` date (a month, or a day): one indexed filter,
 * which the store answers with an index range (two-sided ge/lt filters make it check the second
 * bound per candidate, which is slow on large tables).
 */
interface Window {
  value: string;
  fromMs: number;
  /** Exclusive. */
  toMs: number;
}

/** Whole months inside the period as month windows, the partial months around them as days. */
export function periodWindows(period: Pick<Period, 'startMs' | 'endMs'>): Window[] {
  const windows: Window[] = [];
  const first = new Date(period.startMs);
  let month = Date.UTC(first.getUTCFullYear(), first.getUTCMonth(), 1);
  while (month <= period.endMs) {
    const d = new Date(month);
    const next = Date.UTC(d.getUTCFullYear(), d.getUTCMonth() + 1, 1);
    if (month >= period.startMs && next - 1 <= period.endMs) {
      windows.push({ value: iso(month).slice(0, 7), fromMs: month, toMs: next });
    } else {
      windows.push(...dayWindows(Math.max(month, period.startMs), Math.min(next - 1, period.endMs)));
    }
    month = next;
  }
  return windows;
}

function dayWindows(fromMs: number, toMs: number): Window[] {
  const out: Window[] = [];
  for (let day = Math.floor(fromMs / 86_400_000) * 86_400_000; day <= toMs; day += 86_400_000) {
    out.push({ value: iso(day).slice(0, 10), fromMs: day, toMs: day + 86_400_000 });
  }
  return out;
}

function eqQuery(type: string, code: string, value: string): SearchQuery {
  const parsed = parseSearch(type, [[code, `eq${value}`]], { strict: true });
  return { ...parsed.query, sort: [{ code: '_id', descending: false }], offset: 0, total: false };
}

/** How many referrals the period's windows hold, for progress reporting (one count per window). */
async function countReferrals(store: StoreReader, period: Period): Promise<number> {
  let total = 0;
  for (const w of periodWindows(period)) {
    total +=
      (await store.search({ ...eqQuery('ServiceRequest', 'authored', w.value), count: 0, total: true }))
        .total ?? 0;
  }
  return total;
}

/**
 * The period's referrals, a window at a time; a month with more than a page is split into days,
 * and a day with more than a page is paged. A referral belongs to the window holding the start of
 * its authoredOn, and must fall in the period.
 */
async function* referralWindows(
  store: StoreReader,
  period: Period,
  timed: <T>(name: string, work: () => Promise<T>) => Promise<T>,
): AsyncGenerator<ServiceRequest[]> {
  const windows = periodWindows(period);
  const keep = (w: Window, r: ServiceRequest): boolean => {
    const at = instantMs(r.authoredOn);
    return at !== undefined && at >= w.fromMs && at < w.toMs && at >= period.startMs && at <= period.endMs;
  };
  while (windows.length > 0) {
    const w = windows.shift() as Window;
    const query = eqQuery('ServiceRequest', 'authored', w.value);
    if (w.value.length === 7) {
      // A month too large for one page is read day by day; counting first avoids reading it twice.
      const counted = await timed('referrals', () => store.search({ ...query, count: 0, total: true }));
      if ((counted.total ?? 0) > PAGE) {
        windows.unshift(...dayWindows(w.fromMs, w.toMs - 1));
        continue;
      }
    }
    for (let offset = 0; ; offset += PAGE) {
      const page = await timed('referrals', () => store.search({ ...query, count: PAGE + 1, offset }));
      yield (page.resources.slice(0, PAGE) as ServiceRequest[]).filter((r) => keep(w, r));
      if (page.resources.length <= PAGE) break;
    }
  }
}

type TaskHistory = Map<string, Task[]>;

/**
 * Every version of the referral Tasks written since `sinceMs`, by referral id, reduced to the
 * elements the facts read. Windows of lastUpdated are bisected until each holds at most a page.
 */
async function loadTaskHistory(store: StoreReader, sinceMs: number): Promise<TaskHistory> {
  const out: TaskHistory = new Map();
  const keep = (resource: Resource | undefined, versionId: string, lastUpdated: string): void => {
    const task = resource as Task | undefined;
    if (!task || !task.code?.coding?.some((c) => c.system === FULFILL && c.code === 'fulfill')) return;
    const referral = idOf(task.focus, 'ServiceRequest');
    if (!referral) return;
    pushTo(out, referral, compactTask(task, versionId, lastUpdated));
  };
  const untilMs = Date.now() + 86_400_000;
  // Sorting a window's versions costs more than linearly in its size: keep windows small.
  const PAGE = 2000;
  const visit = async (lo: number, hi: number): Promise<void> => {
    const probe = await store.history({
      resourceType: 'Task',
      since: iso(lo),
      at: iso(hi),
      count: 0,
      offset: 0,
    });
    if (probe.total === 0) return;
    if (probe.total <= PAGE || hi <= lo) {
      for (let offset = 0; offset < probe.total; offset += PAGE) {
        const page = await store.history({
          resourceType: 'Task',
          since: iso(lo),
          at: iso(hi),
          count: PAGE,
          offset,
        });
        for (const v of page.versions) if (!v.deleted) keep(v.resource, v.versionId, v.lastUpdated);
      }
      return;
    }
    const mid = lo + Math.floor((hi - lo) / 2);
    await visit(lo, mid);
    await visit(mid + 1, hi);
  };
  await visit(Math.max(sinceMs, 0), untilMs);
  return out;
}

function compactTask(task: Task, versionId: string, lastUpdated: string): Task {
  return {
    resourceType: 'Task',
    id: task.id,
    meta: { versionId, lastUpdated },
    status: task.status,
    intent: task.intent,
    code: task.code,
    focus: task.focus,
    ...(task.businessStatus ? { businessStatus: task.businessStatus } : {}),
    ...(task.statusReason ? { statusReason: task.statusReason } : {}),
    ...(task.lastModified ? { lastModified: task.lastModified } : {}),
  };
}

async function loadRelated(store: StoreReader, referrals: ServiceRequest[], history: TaskHistory) {
  const ids = referrals.map((r) => r.id as string);
  const patients = [
    ...new Set(referrals.map((r) => idOf(r.subject, 'Patient')).filter((p): p is string => !!p)),
  ];
  // Independent searches together (a pooled dialect runs them in parallel). Outcome Observations
  // and plans of care are read by patient (far fewer ids than visits); facts.ts keeps those linked
  // to one of the referral's visits.
  const [episodes, appointments, basedOn, observations, carePlans] = await Promise.all([
    searchByReference<EpisodeOfCare>(store, 'EpisodeOfCare', 'incoming-referral', ids),
    searchByReference<Appointment>(store, 'Appointment', 'based-on', ids),
    searchByReference<Encounter>(store, 'Encounter', 'based-on', ids),
    searchByReference<Observation>(store, 'Observation', 'subject', patients, [OUTCOME_CODES]),
    searchByReference<CarePlan>(store, 'CarePlan', 'subject', patients),
  ]);
  // Visits of the episode that do not name the referral (the others were just read).
  const episodeOnly = await searchByReference<Encounter>(
    store,
    'Encounter',
    'episode-of-care',
    episodes.map((e) => e.id as string),
    [{ kind: 'missing', code: 'based-on', table: 'reference', missing: true }],
  );
  const encounters = [...new Map([...basedOn, ...episodeOnly].map((e) => [e.id, e])).values()];
  // The Tasks come from the history read once for the period; a referral whose Task history
  // predates it (received long before its authoredOn) has its current Task read here.
  const taskVersions: Task[] = [];
  const missing: string[] = [];
  for (const id of ids) {
    const versions = history.get(id);
    if (versions) taskVersions.push(...versions);
    else missing.push(id);
  }
  if (missing.length) taskVersions.push(...(await searchByReference<Task>(store, 'Task', 'focus', missing)));
  return { referrals, episodes, taskVersions, appointments, encounters, observations, carePlans };
}

/** SQLite limits an expression tree to depth 1000; each OR term adds one. */
const IN_LIST = 200;

/** Current resources whose reference parameter points at any of the ids, in chunks of IN_LIST. */
async function searchByReference<T extends Resource>(
  store: StoreReader,
  resourceType: string,
  code: string,
  ids: string[],
  more: SearchFilter[] = [],
): Promise<T[]> {
  const out: T[] = [];
  for (let i = 0; i < ids.length; i += IN_LIST) {
    const chunk = ids.slice(i, i + IN_LIST);
    // Ids only: equalities on one column become an indexed IN; the type is checked in facts.ts.
    const filter: SearchFilter = { kind: 'reference', code, values: chunk.map((targetId) => ({ targetId })) };
    // Pages in _id order; a chunk rarely needs a second one.
    for (let offset = 0; ; offset += PAGE) {
      const result = await store.search({
        resourceType,
        filters: [filter, ...more],
        sort: [{ code: '_id', descending: false }],
        count: PAGE + 1,
        offset,
        total: false,
      });
      out.push(...(result.resources.slice(0, PAGE) as T[]));
      if (result.resources.length <= PAGE) break;
    }
  }
  return out;
}

/** Reads the requesters (and, for roles, their practitioner and organisation) not yet known. */
async function resolveDirectory(
  store: StoreReader,
  directory: Map<string, Resource>,
  references: (Reference | undefined)[],
): Promise<void> {
  const wanted = (refs: (Reference | undefined)[]): string[] => [
    ...new Set(
      refs
        .map((r) => r?.reference?.replace(/\/_history\/[^/]+$/, ''))
        .map((r) => (r ? /([A-Z][A-Za-z]+\/[A-Za-z0-9\-.]{1,64})$/.exec(r)?.[1] : undefined))
        .filter((r): r is string => r !== undefined && !directory.has(r)),
    ),
  ];
  const first = wanted(references);
  if (first.length === 0) return;
  for (const r of await store.readReferences(first)) directory.set(`${r.resourceType}/${r.id}`, r);
  const roles = first
    .map((r) => directory.get(r))
    .filter((r): r is PractitionerRole => r?.resourceType === 'PractitionerRole');
  const second = wanted(roles.flatMap((r) => [r.practitioner, r.organization]));
  if (second.length === 0) return;
  for (const r of await store.readReferences(second)) directory.set(`${r.resourceType}/${r.id}`, r);
}

async function loadFeedback(
  store: StoreReader,
  period: Period,
  directory: Map<string, Resource>,
): Promise<FeedbackFact[]> {
  const responses: QuestionnaireResponse[] = [];
  for (const w of periodWindows(period)) {
    const query = eqQuery('QuestionnaireResponse', 'authored', w.value);
    for (let offset = 0; ; offset += PAGE) {
      const result = await store.search({ ...query, count: PAGE + 1, offset });
      for (const r of result.resources.slice(0, PAGE) as QuestionnaireResponse[]) {
        const at = instantMs(r.authored);
        if (
          isFeedbackResponse(r) &&
          at !== undefined &&
          at >= w.fromMs &&
          at < w.toMs &&
          at >= period.startMs &&
          at <= period.endMs
        ) {
          responses.push(r);
        }
      }
      if (result.resources.length <= PAGE) break;
    }
  }
  await resolveDirectory(
    store,
    directory,
    responses.map((r) => r.author ?? r.source),
  );
  return feedbackFacts(responses, directory);
}

/**
 * A referring source is new when it has no referral authored before the period. Its references
 * are those its period referrals use, plus — for an NPI — every Practitioner with that NPI and
 * their PractitionerRoles, and for an Organization identifier every Organization with it. Its
 * referrals are read in growing pages until one before the period turns up: a returning source
 * answers on the first page, a new one has only recent referrals to read.
 */
async function findNewReferrers(
  store: StoreReader,
  period: Period,
  facts: ReferralFact[],
  referencesByKey: Map<string, Set<string>>,
): Promise<Set<string>> {
  const identities = new Map<string, ReferrerIdentity>();
  for (const f of facts) identities.set(f.referrer.key, f.referrer);
  const fresh = new Set<string>();
  for (const [key, identity] of identities) {
    const refs = new Set(referencesByKey.get(key) ?? []);
    if (identity.system !== REFERRER_NAME_SYSTEM && identity.system !== REFERENCE_SYSTEM) {
      const type =
        identity.system === NPI_SYSTEM && !isOrganization(identity) ? 'Practitioner' : 'Organization';
      const holders = await store.search({
        resourceType: type,
        filters: [
          {
            kind: 'token',
            code: 'identifier',
            not: false,
            values: [{ system: identity.system, value: identity.code }],
          },
        ],
        sort: [],
        count: 1000,
        offset: 0,
        total: false,
      });
      for (const h of holders.resources) refs.add(`${h.resourceType}/${h.id}`);
      const practitioners = holders.resources
        .filter((h) => h.resourceType === 'Practitioner')
        .map((h) => h.id as string);
      for (const role of await searchByReference<PractitionerRole>(
        store,
        'PractitionerRole',
        'practitioner',
        practitioners,
      )) {
        refs.add(`PractitionerRole/${role.id}`);
      }
    }
    const targets = [...refs]
      .map((r) => r.split('/'))
      .filter((p): p is [string, string] => p.length === 2)
      .map(([targetType, targetId]) => ({ targetType, targetId }));
    if (targets.length === 0) continue;
    let before = false;
    let offset = 0;
    for (const count of [100, 1000, PAGE]) {
      const page = await store.search({
        resourceType: 'ServiceRequest',
        filters: [{ kind: 'reference', code: 'requester', values: targets }],
        sort: [{ code: '_id', descending: false }],
        count: count + 1,
        offset,
        total: false,
      });
      before = (page.resources.slice(0, count) as ServiceRequest[]).some(
        (r) => r.status !== 'entered-in-error' && (instantMs(r.authoredOn) ?? Infinity) < period.startMs,
      );
      offset += count;
      if (before || page.resources.length <= count) break;
      if (count === PAGE) {
        // A very large source: keep paging at the largest size.
        for (;;) {
          const more = await store.search({
            resourceType: 'ServiceRequest',
            filters: [{ kind: 'reference', code: 'requester', values: targets }],
            sort: [{ code: '_id', descending: false }],
            count: PAGE + 1,
            offset,
            total: false,
          });
          before = (more.resources.slice(0, PAGE) as ServiceRequest[]).some(
            (r) => r.status !== 'entered-in-error' && (instantMs(r.authoredOn) ?? Infinity) < period.startMs,
          );
          offset += PAGE;
          if (before || more.resources.length <= PAGE) break;
        }
      }
    }
    if (!before) fresh.add(key);
  }
  return fresh;
}

function isOrganization(identity: ReferrerIdentity): boolean {
  return identity.organization?.key === identity.key;
}

/** One display per source: the one its referrals use most (ties: alphabetical). */
function canonicalDisplays(facts: ReferralFact[]): Map<string, string> {
  const counts = new Map<string, Map<string, number>>();
  const count = (key: string, display: string): void => {
    const m = counts.get(key) ?? new Map<string, number>();
    m.set(display, (m.get(display) ?? 0) + 1);
    counts.set(key, m);
  };
  for (const f of facts) {
    count(f.referrer.key, f.referrer.display);
    if (f.referrer.organization) count(f.referrer.organization.key, f.referrer.organization.display);
  }
  const chosen = new Map<string, string>();
  for (const [key, m] of counts) {
    const [best] = [...m.entries()].sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
    if (best) chosen.set(key, best[0]);
  }
  for (const f of facts) {
    f.referrer.display = chosen.get(f.referrer.key) ?? f.referrer.display;
    if (f.referrer.organization) {
      f.referrer.organization.display =
        chosen.get(f.referrer.organization.key) ?? f.referrer.organization.display;
    }
  }
  return chosen;
}

function sourcesOf(facts: ReferralFact[], feedback: FeedbackFact[]): AnalyticsDataset['sources'] {
  const sources: AnalyticsDataset['sources'] = new Map();
  for (const f of facts) {
    const r = sources.get(f.referrer.key) ?? {
      display: f.referrer.display,
      kind: 'referrer' as const,
      referrals: 0,
    };
    r.referrals++;
    sources.set(f.referrer.key, r);
    const org = f.referrer.organization;
    if (org && org.key !== f.referrer.key) {
      const o = sources.get(org.key) ?? { display: org.display, kind: 'organization' as const, referrals: 0 };
      o.referrals++;
      sources.set(org.key, o);
    }
  }
  for (const f of feedback) {
    if (!sources.has(f.referrer.key))
      sources.set(f.referrer.key, { display: f.referrer.display, kind: 'referrer', referrals: 0 });
  }
  return sources;
}

function pushTo<T>(map: Map<string, T[]>, key: string, value: T): void {
  const list = map.get(key);
  if (list) list.push(value);
  else map.set(key, [value]);
}

function addToSet<T>(map: Map<string, Set<T>>, key: string, value: T): void {
  const set = map.get(key);
  if (set) set.add(value);
  else map.set(key, new Set([value]));
}

function iso(ms: number): string {
  return new Date(ms).toISOString();
}

export { FEEDBACK_QUESTIONNAIRE };
