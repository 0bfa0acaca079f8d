import type {
  Appointment,
  CarePlan,
  Encounter,
  Observation,
  Organization,
  Practitioner,
  PractitionerRole,
  QuestionnaireResponse,
  Resource,
  ServiceRequest,
  Task,
} from '@medplum/fhirtypes';
import { OUTCOME_MEASURES } from '../../src/progress/outcome-measures.js';

/**
 * The measures recomputed from the raw resources the generator wrote (its in-memory output, every
 * Task version in write order), for comparison with the service's MeasureReports. Written
 * independently of src/analytics: nothing is imported from it; only the outcome-measure catalog
 * (codes, ranges, MCIDs: the definitions) is shared. Referrer identity comes from the
 * generator's ground truth (which references belong to the same referrer), not from a
 * normalisation algorithm.
 */
export interface Projection {
  populations: Record<string, number>;
  score?: number;
  strata?: Record<string, Record<string, { populations: Record<string, number>; score?: number }>>;
}

export type Expected = Record<string, Record<string, Projection>>;

export interface Truth {
  /** Reference ('Practitioner/x') → the referrer's stratum key (`system|code`) and organisation key. */
  referrerOf: Map<string, { key: string; org?: string }>;
}

interface Rec {
  id: string;
  authored: number;
  source: string;
  org?: string;
  triage: 'accepted' | 'declined' | 'cancelled' | 'pending';
  triagedAt?: number;
  declineKey?: string;
  accepted: boolean;
  booked: boolean;
  bookedAt?: number;
  seen: boolean;
  seenAt?: number;
  discharged: boolean;
  dropped: boolean;
  stage?: string;
  dropKey?: string;
  attended: number;
  planned?: number;
  due: number;
  noShows: number;
  changes: { measure: string; change: number; reached?: boolean }[];
}

const DAY = 86_400_000;
const ms = (v: string | undefined): number | undefined =>
  v === undefined ? undefined : Date.parse(v.length === 10 ? `${v}T00:00:00Z` : v);
/** The reports round half away from zero (a definition, stated in the Measures), and never give -0. */
const roundTo = (v: number, digits: number): number => {
  const f = 10 ** digits;
  return (Math.sign(v) * Math.round(Math.abs(v) * f)) / f || 0;
};
const r4 = (v: number): number => roundTo(v, 4);

function records(all: Resource[], truth: Truth): Rec[] {
  const byType = <T extends Resource>(type: string): T[] => all.filter((r) => r.resourceType === type) as T[];
  // The last write of each id is its current version; Tasks keep every version in order.
  const latest = <T extends Resource>(type: string): T[] => [
    ...new Map(byType<T>(type).map((r) => [r.id, r])).values(),
  ];
  const referrals = latest<ServiceRequest>('ServiceRequest');
  const taskVersions = byType<Task>('Task');
  const appointments = latest<Appointment>('Appointment');
  const encounters = latest<Encounter>('Encounter');
  const observations = latest<Observation>('Observation');
  const carePlans = latest<CarePlan>('CarePlan');
  const group = <T extends Resource>(list: T[], keys: (r: T) => (string | undefined)[]): Map<string, T[]> => {
    const m = new Map<string, T[]>();
    for (const r of list) for (const k of new Set(keys(r))) if (k) m.set(k, [...(m.get(k) ?? []), r]);
    return m;
  };
  const tasksBy = group(taskVersions, (t) => [t.focus?.reference]);
  const apptsBy = group(appointments, (a) => (a.basedOn ?? []).map((b) => b.reference));
  const encsBy = group(encounters, (e) => (e.basedOn ?? []).map((b) => b.reference));
  const obsBy = group(observations, (o) => [o.encounter?.reference]);
  const plansBy = group(carePlans, (c) => [c.encounter?.reference]);
  const out: Rec[] = [];
  for (const sr of referrals) {
    const ref = `ServiceRequest/${sr.id}`;
    const who = truth.referrerOf.get(sr.requester?.reference as string);
    if (!who) throw new Error(`no ground truth for ${sr.requester?.reference}`);
    const versions = tasksBy.get(ref) ?? [];
    const last = versions[versions.length - 1];
    let triage: Rec['triage'] = 'pending';
    let triagedAt: number | undefined;
    for (const v of versions) {
      if (['accepted', 'in-progress', 'on-hold', 'completed', 'failed', 'rejected'].includes(v.status)) {
        triage = v.status === 'rejected' ? 'declined' : 'accepted';
        triagedAt = ms(v.lastModified);
        break;
      }
      if (v.status === 'cancelled') {
        triage = 'cancelled';
        break;
      }
    }
    const accepted = triage === 'accepted';
    const coding = last?.statusReason?.coding?.[0];
    // Stratum keys as a report shows them: a coding as system|code, a text reason as its text.
    const reasonKey = coding ? `${coding.system}|${coding.code}` : last?.statusReason?.text;
    const appts = apptsBy.get(ref) ?? [];
    const encs = encsBy.get(ref) ?? [];
    const attendedEnc = encs.filter((e) => ['arrived', 'in-progress', 'finished'].includes(e.status));
    const attendedAppt = appts.filter((a) => ['fulfilled', 'arrived', 'checked-in'].includes(a.status));
    const attended = attendedEnc.length > 0 ? attendedEnc.length : attendedAppt.length;
    const seen = accepted && attended > 0;
    const starts = [
      ...attendedEnc.map((e) => ms(e.period?.start)),
      ...attendedAppt.map((a) => ms(a.start)),
    ].filter((t): t is number => t !== undefined);
    const bookings = appts.filter(
      (a) => !['proposed', 'pending', 'waitlist', 'entered-in-error'].includes(a.status),
    );
    const booked = accepted && (bookings.length > 0 || seen);
    const created = bookings.map((a) => ms(a.created)).filter((t): t is number => t !== undefined);
    const discharged = seen && last?.status === 'completed';
    const closed =
      triage === 'declined' ||
      triage === 'cancelled' ||
      ['rejected', 'cancelled', 'failed', 'completed', 'entered-in-error'].includes(last?.status ?? '');
    const noShows = appts.filter((a) => a.status === 'noshow').length;
    const dropped = !discharged && closed;
    const stage = seen ? 'treatment' : booked ? 'first-visit' : accepted ? 'booking' : 'triage';
    let dropKey: string | undefined;
    if (dropped) {
      dropKey =
        reasonKey ??
        (noShows > 0 && !seen
          ? 'No-show'
          : (
              {
                cancelled: 'Cancelled, no reason given',
                failed: 'Stopped, no reason given',
                completed: 'Closed without an attended visit',
              } as Record<string, string>
            )[triage === 'cancelled' ? 'cancelled' : (last?.status ?? '')]);
    }
    // Plan: the CarePlan made at one of the referral's visits, else the bookings not called off.
    const plan = encs.flatMap((e) => plansBy.get(`Encounter/${e.id}`) ?? [])[0];
    let planned: number | undefined;
    const repeat = plan?.activity?.[0]?.detail?.scheduledTiming?.repeat;
    if (repeat?.count !== undefined) planned = repeat.count;
    else if (repeat?.boundsDuration?.value !== undefined)
      planned = (repeat.frequency ?? 1) * repeat.boundsDuration.value;
    else {
      const n = appts.filter((a) => !['cancelled', 'entered-in-error'].includes(a.status)).length;
      planned = n > 0 ? n : undefined;
    }
    // Outcomes at the initial evaluation and discharge visits.
    const changes: Rec['changes'] = [];
    if (discharged) {
      const typed = (e: Encounter, code: string): boolean => e.type?.[0]?.coding?.[0]?.code === code;
      const ordered = [...attendedEnc].sort(
        (a, b) => (ms(a.period?.start) ?? 0) - (ms(b.period?.start) ?? 0),
      );
      const ie = ordered.find((e) => typed(e, 'initial-evaluation')) ?? ordered[0];
      const dc = [...ordered].reverse().find((e) => typed(e, 'discharge')) ?? ordered[ordered.length - 1];
      if (ie && dc && ie.id !== dc.id) {
        for (const m of OUTCOME_MEASURES) {
          const valid = (o: Observation): boolean =>
            ['final', 'amended', 'corrected'].includes(o.status) &&
            (o.code?.coding ?? []).some((c) =>
              m.codings.some((k) => k.system === c.system && k.code === c.code),
            ) &&
            o.valueQuantity?.value !== undefined &&
            o.valueQuantity.value >= m.range.min &&
            o.valueQuantity.value <= m.range.max;
          const at = (enc: string) =>
            (obsBy.get(`Encounter/${enc}`) ?? [])
              .filter((o) => valid(o))
              .sort(
                (a, b) =>
                  (ms(a.effectiveDateTime) ?? 0) - (ms(b.effectiveDateTime) ?? 0) ||
                  (a.id ?? '').localeCompare(b.id ?? ''),
              );
          const first = at(ie.id as string);
          const lastOnes = at(dc.id as string);
          const sites = new Set(first.map((o) => o.bodySite?.text ?? ''));
          for (const site of sites) {
            const a = first.find((o) => (o.bodySite?.text ?? '') === site);
            const b = [...lastOnes].reverse().find((o) => (o.bodySite?.text ?? '') === site);
            if (!a || !b) continue;
            const change = r4((b.valueQuantity?.value as number) - (a.valueQuantity?.value as number));
            const improvement = m.better === 'higher' ? change : r4(-change);
            changes.push({
              measure: m.id,
              change,
              ...(m.mcid ? { reached: improvement >= m.mcid.value } : {}),
            });
          }
        }
      }
    }
    out.push({
      id: sr.id as string,
      authored: ms(sr.authoredOn) as number,
      source: who.key,
      ...(who.org ? { org: who.org } : {}),
      triage,
      ...(triagedAt !== undefined ? { triagedAt } : {}),
      ...(triage === 'declined' && reasonKey ? { declineKey: reasonKey } : {}),
      accepted,
      booked,
      ...(booked && created.length ? { bookedAt: Math.min(...created) } : {}),
      seen,
      ...(seen && starts.length ? { seenAt: Math.min(...starts) } : {}),
      discharged,
      dropped,
      ...(!discharged ? { stage } : {}),
      ...(dropKey ? { dropKey } : {}),
      attended,
      ...(planned !== undefined ? { planned } : {}),
      due: appts.filter((a) => ['fulfilled', 'arrived', 'checked-in', 'noshow'].includes(a.status)).length,
      noShows,
      changes,
    });
  }
  return out;
}

interface Fb {
  source: string;
  communication?: number;
  outcomes?: number;
}

type Group = (recs: Rec[], fb: Fb[]) => { populations: Record<string, number>; score?: number };

const prop = (ip: number, den: number, num: number) => ({
  populations: { 'initial-population': ip, denominator: den, numerator: num },
  ...(den > 0 ? { score: r4(num / den) } : {}),
});
const median = (v: number[]): number | undefined => {
  if (!v.length) return undefined;
  const s = [...v].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 ? s[mid] : ((s[mid - 1] as number) + (s[mid] as number)) / 2;
};
const p90 = (v: number[]): number | undefined => {
  if (!v.length) return undefined;
  const s = [...v].sort((a, b) => a - b);
  return s[Math.ceil(0.9 * s.length) - 1];
};
const days = (recs: Rec[], end: (r: Rec) => number | undefined): number[] =>
  recs.flatMap((r) => (end(r) === undefined ? [] : [((end(r) as number) - r.authored) / DAY]));
const cv = (ip: number, values: number[], stat: (v: number[]) => number | undefined, digits = 2) => {
  const s = stat(values);
  return {
    populations: { 'initial-population': ip, 'measure-population': values.length },
    ...(s !== undefined ? { score: roundTo(s, digits) } : {}),
  };
};
const triaged = (recs: Rec[]) => recs.filter((r) => r.triage === 'accepted' || r.triage === 'declined');
const mean = (v: number[]) => (v.length ? v.reduce((a, b) => a + b, 0) / v.length : undefined);

function groups(newSources: Set<string>): Record<string, Record<string, Group>> {
  const contact = (r: Rec) => (r.triage === 'accepted' || r.triage === 'declined' ? r.triagedAt : undefined);
  const timing: Record<string, Group> = {};
  for (const [code, end] of [
    ['first-contact', contact],
    ['booking', (r: Rec) => r.bookedAt],
    ['first-visit', (r: Rec) => r.seenAt],
  ] as const) {
    timing[`days-to-${code}-median`] = (recs) => cv(recs.length, days(recs, end), median);
    timing[`days-to-${code}-p90`] = (recs) => cv(recs.length, days(recs, end), p90);
  }
  const change: Record<string, Group> = {};
  const mcid: Record<string, Group> = {};
  for (const m of OUTCOME_MEASURES) {
    change[`${m.id}-mean-change`] = (recs) => {
      const c = recs.flatMap((r) => r.changes.filter((x) => x.measure === m.id).map((x) => x.change));
      return cv(recs.filter((r) => r.discharged).length, c, mean);
    };
    if (m.mcid) {
      mcid[`${m.id}-mcid`] = (recs) => {
        const c = recs.flatMap((r) => r.changes.filter((x) => x.measure === m.id));
        return prop(c.length, c.length, c.filter((x) => x.reached).length);
      };
    }
  }
  const satisfaction =
    (item: 'communication' | 'outcomes'): Group =>
    (_recs, fb) =>
      cv(
        fb.length,
        fb.flatMap((f) => (f[item] === undefined ? [] : [f[item] as number])),
        mean,
      );
  return {
    'pt-referral-volume': { referrals: (recs) => ({ populations: { 'initial-population': recs.length } }) },
    'pt-new-referrers': {
      'new-referrers': (recs) => {
        const s = new Set(recs.map((r) => r.source));
        return prop(s.size, s.size, [...s].filter((x) => newSources.has(x)).length);
      },
      'referrals-from-new-referrers': (recs) =>
        prop(recs.length, recs.length, recs.filter((r) => newSources.has(r.source)).length),
    },
    'pt-referral-triage': {
      acceptance: (recs) =>
        prop(recs.length, triaged(recs).length, recs.filter((r) => r.triage === 'accepted').length),
      decline: (recs) =>
        prop(recs.length, triaged(recs).length, recs.filter((r) => r.triage === 'declined').length),
    },
    'pt-referral-conversion': {
      'funnel-accepted': (recs) => prop(recs.length, recs.length, recs.filter((r) => r.accepted).length),
      'funnel-booked': (recs) => prop(recs.length, recs.length, recs.filter((r) => r.booked).length),
      'funnel-first-visit': (recs) => prop(recs.length, recs.length, recs.filter((r) => r.seen).length),
      'funnel-discharged': (recs) => prop(recs.length, recs.length, recs.filter((r) => r.discharged).length),
      'drop-off': (recs) => prop(recs.length, recs.length, recs.filter((r) => r.dropped).length),
    },
    'pt-referral-timeliness': timing,
    'pt-referral-attendance': {
      'visits-attended': (recs) => {
        const withPlan = recs.filter((r) => r.seen && r.planned !== undefined);
        return prop(
          withPlan.length,
          withPlan.reduce((s, r) => s + (r.planned as number), 0),
          withPlan.reduce((s, r) => s + r.attended, 0),
        );
      },
      'no-shows': (recs) =>
        prop(
          recs.length,
          recs.reduce((s, r) => s + r.due, 0),
          recs.reduce((s, r) => s + r.noShows, 0),
        ),
    },
    'pt-outcome-change': change,
    'pt-outcome-mcid': mcid,
    'pt-referrer-feedback': {
      'communication-satisfaction': satisfaction('communication'),
      'outcome-satisfaction': satisfaction('outcomes'),
    },
  };
}

const ANALYTICS = 'https://ptreferral.dev/fhir/CodeSystem/pt-referral-analytics';
const STRATIFIERS: Record<string, (r: Rec) => string> = {
  'referring-source': (r) => r.source,
  'referring-organization': (r) => r.org ?? '(none)',
  month: (r) => new Date(r.authored).toISOString().slice(0, 7),
  week: (r) => isoWeek(r.authored),
  'decline-reason': (r) => r.declineKey ?? '(none)',
  'drop-off-stage': (r) => (r.dropped ? `${ANALYTICS}|${r.stage}` : '(none)'),
  'drop-off-reason': (r) => (r.dropped ? (r.dropKey as string) : '(none)'),
};

/** Which stratifiers each group has: read from the Measure files by the caller. */
export type StratifierPlan = Record<string, Record<string, string[]>>;

export function expectedMeasures(
  resources: Resource[],
  truth: Truth,
  period: { start: string; end: string },
  plan: StratifierPlan,
  source?: string,
): Expected {
  const from = ms(period.start) as number;
  const to = (ms(period.end) as number) + DAY - 1;
  const all = records(resources, truth);
  const firstBySource = new Map<string, number>();
  for (const r of all)
    firstBySource.set(r.source, Math.min(firstBySource.get(r.source) ?? Infinity, r.authored));
  const newSources = new Set([...firstBySource].filter(([, first]) => first >= from).map(([s]) => s));
  const matches = (s: string, org?: string) => !source || s === source || org === source;
  const recs = all.filter((r) => r.authored >= from && r.authored <= to && matches(r.source, r.org));
  const fb: Fb[] = (
    resources.filter((r) => r.resourceType === 'QuestionnaireResponse') as QuestionnaireResponse[]
  )
    .filter((q) => q.status === 'completed' || q.status === 'amended')
    .filter((q) => (ms(q.authored) as number) >= from && (ms(q.authored) as number) <= to)
    .map((q) => {
      const who = truth.referrerOf.get(q.author?.reference as string);
      const answer = (link: string) => q.item?.find((i) => i.linkId === link)?.answer?.[0]?.valueInteger;
      return {
        source: who?.key as string,
        ...(who?.org ? { org: who.org } : {}),
        communication: answer('communication'),
        outcomes: answer('outcomes'),
      } as Fb & { org?: string };
    })
    .filter((f) => matches(f.source, (f as { org?: string }).org));
  const out: Expected = {};
  for (const [measure, defs] of Object.entries(groups(newSources))) {
    out[measure] = {};
    for (const [code, compute] of Object.entries(defs)) {
      const projection: Projection = compute(recs, fb);
      const strats = plan[measure]?.[code] ?? [];
      if (strats.length) {
        projection.strata = {};
        for (const s of strats) {
          const by = STRATIFIERS[s] as (r: Rec) => string;
          const keys = new Set<string>(recs.map(by));
          if (s === 'referring-source') fb.forEach((f) => keys.add(f.source));
          projection.strata[s] = {};
          for (const key of keys) {
            const part = recs.filter((r) => by(r) === key);
            const fbPart = s === 'referring-source' ? fb.filter((f) => f.source === key) : [];
            projection.strata[s][key] = compute(part, fbPart);
          }
        }
      }
      out[measure][code] = projection;
    }
  }
  return out;
}

export function isoWeek(t: number): string {
  const d = new Date(t);
  const date = new Date(Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), d.getUTCDate()));
  const dayNum = date.getUTCDay() || 7;
  date.setUTCDate(date.getUTCDate() + 4 - dayNum);
  const yearStart = Date.UTC(date.getUTCFullYear(), 0, 1);
  const week = Math.ceil(((date.getTime() - yearStart) / DAY + 1) / 7);
  return `${date.getUTCFullYear()}-W${String(week).padStart(2, '0')}`;
}

/**
 * The stratum keys the generator's referrers should get: the NPI of the Practitioner behind the
 * referrer's references, else its Organization's identifier; the two sources without either are
 * named in `byName` (the normalised-name key the test expects for them).
 */
export function groundTruth(
  resources: Resource[],
  referrers: { label: string; references: { reference: { reference?: string } }[] }[],
  byName: Record<string, string>,
): Truth {
  const find = (ref: string | undefined) => resources.find((r) => `${r.resourceType}/${r.id}` === ref);
  const npi = 'http://hl7.org/fhir/sid/us-npi';
  const orgKey = (ref: string | undefined): string | undefined => {
    const org = find(ref) as Organization | undefined;
    const id = org?.identifier?.[0];
    return id ? `${id.system}|${id.value}` : org ? byName[org.id as string] : undefined;
  };
  const referrerOf = new Map<string, { key: string; org?: string }>();
  for (const plan of referrers) {
    let key: string | undefined;
    for (const { reference } of plan.references) {
      const target = find(reference.reference);
      const practitioner = (
        target?.resourceType === 'PractitionerRole'
          ? find((target as PractitionerRole).practitioner?.reference)
          : target
      ) as Practitioner | Organization | undefined;
      const id =
        practitioner?.identifier?.find((i) => i.system === npi) ??
        (practitioner?.resourceType === 'Organization' ? practitioner.identifier?.[0] : undefined);
      if (id) key = `${id.system}|${id.value}`;
    }
    key ??= byName[plan.label];
    if (!key) throw new Error(`no expected key for ${plan.label}`);
    for (const { reference } of plan.references) {
      const target = find(reference.reference);
      const org =
        target?.resourceType === 'PractitionerRole'
          ? orgKey((target as PractitionerRole).organization?.reference)
          : target?.resourceType === 'Organization'
            ? key
            : undefined;
      referrerOf.set(reference.reference as string, { key, ...(org ? { org } : {}) });
    }
  }
  return { referrerOf };
}
