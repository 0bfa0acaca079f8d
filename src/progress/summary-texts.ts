import type { CodeableConcept, Goal, Patient, Reference } from '@medplum/fhirtypes';
import { attendanceAt, type Attendance } from './attendance.js';
import type { OutcomeMeasure } from './outcome-measures.js';
import { outcomeRows, type OutcomeRow } from './outcome-progress.js';
import { currentCarePlan, planOfCareItems } from './plan-of-care.js';
import { EVENT_DISPLAY } from './progress-codes.js';
import type { ComposeOptions, EpisodeSnapshot, ProgressEvent } from './progress-types.js';
import type { Block, OutcomeLine, ReportDoc } from './report-doc.js';
import { formatAmount, formatDate, formatDateTime, formatNumber } from './text-format.js';
import { eventAppointment, eventEncounter } from './visits.js';

/**
 * The words of each update. Written for a busy physician: what happened, when, the numbers with
 * their scale and direction, and nothing that is not in the record. Every number comes from a
 * resource the Communication cites (Observations, Goals, the CarePlan) or from the episode's own
 * visits and bookings; statements of what the practice will do next are the practice's routine.
 */
export function buildReport(
  event: ProgressEvent,
  snapshot: EpisodeSnapshot,
  options: Pick<ComposeOptions, 'timeZone'> = {},
): ReportDoc {
  const w = new Writer(event, snapshot, options.timeZone);
  w.writeEvent();
  return w.doc();
}

class Writer {
  private readonly blocks: Block[] = [];
  private readonly cited = new Map<string, Reference>();
  private readonly practice: string;

  constructor(
    private readonly event: ProgressEvent,
    private readonly snapshot: EpisodeSnapshot,
    private readonly timeZone: string | undefined,
  ) {
    this.practice = snapshot.practice.name ?? 'The practice';
  }

  doc(): ReportDoc {
    const { patient, referral } = this.snapshot;
    const dob = patient.birthDate ? ` (DOB ${formatDate(patient.birthDate)})` : '';
    const ref = (
      referral.identifier?.find((i) => i.use === 'official' && i.value) ??
      referral.identifier?.find((i) => i.value)
    )?.value;
    const written = referral.authoredOn ? ` of ${this.date(referral.authoredOn)}` : '';
    const service = referral.code?.text ?? referral.code?.coding?.find((c) => c.display)?.display;
    const phone = this.snapshot.practice.telecom?.find((t) => t.system === 'phone' && t.value)?.value;
    return {
      title: `${EVENT_DISPLAY[this.event.code]}: ${patientName(patient)}${dob}`,
      referralLine: `Your referral${written}${ref ? ` (ref. ${ref})` : ''}` + (service ? `: ${service}` : ''),
      blocks: this.blocks,
      signOff: ['Kind regards,', this.practice, ...(phone ? [phone] : [])],
      cited: [...this.cited.values()],
    };
  }

  writeEvent(): void {
    const { event } = this;
    const on = this.date(event.occurredAt);
    switch (event.code) {
      case 'referral-received':
        this.p(
          `Thank you for your referral. ${this.practice} received it on ${on}. ` +
            'We will review it and let you know whether we can accept it.',
        );
        this.advice();
        return;
      case 'referral-accepted':
        this.p(
          `${this.practice} accepted the referral on ${on}. ` +
            'We will contact the patient to book the first visit and let you know when it is booked.',
        );
        this.advice();
        return;
      case 'referral-declined': {
        this.p(`We are sorry that ${this.practice} is unable to accept this referral (decided ${on}).`);
        const reason = conceptText(event.declineReason ?? this.snapshot.task.statusReason);
        if (reason) this.p(`Reason: ${reason}.`);
        this.advice();
        this.p('Please contact us if you would like to discuss this decision.');
        return;
      }
      case 'appointment-booked': {
        const start = eventAppointment(this.snapshot, event)?.start;
        this.p(
          start
            ? `The first visit at ${this.practice} is booked for ${formatDateTime(start, this.timeZone)}.`
            : `The first visit at ${this.practice} has been booked.`,
        );
        this.advice();
        return;
      }
      case 'no-show': {
        const start = eventAppointment(this.snapshot, event)?.start;
        this.p(
          `The patient did not attend the visit booked for ${start ? formatDateTime(start, this.timeZone) : on}. ` +
            'We will contact the patient to offer another appointment.',
        );
        this.attendance(attendanceAt(this.snapshot, event));
        this.advice();
        return;
      }
      case 'initial-evaluation':
        this.p(`${this.practice} completed the initial evaluation on ${this.visitDate()}.`);
        this.clinical({ plan: true });
        return;
      case 're-evaluation':
        this.p(`${this.practice} completed a re-evaluation on ${this.visitDate()}.`);
        this.clinical({ plan: true });
        return;
      case 'progress-report': {
        const n = attendanceAt(this.snapshot, event).attended.length;
        this.p(
          `Progress report as of ${this.visitDate()}, after ${n} attended ${n === 1 ? 'visit' : 'visits'}.`,
        );
        this.clinical({ plan: false });
        return;
      }
      case 'discharge':
        this.p(`${this.practice} discharged the patient from physical therapy on ${this.visitDate()}.`);
        this.clinical({ plan: false });
        return;
      case 'cancellation': {
        const by = event.cancelledBy?.display;
        this.p(`This confirms that the referral was cancelled on ${on}${by ? ` by ${by}` : ''}.`);
        const reason = conceptText(event.cancellationReason ?? this.snapshot.task.statusReason);
        if (reason) this.p(`Reason: ${reason}.`);
        const attendance = attendanceAt(this.snapshot, event);
        if (attendance.attended.length || attendance.noShows.length) this.attendance(attendance);
        else this.p('No visits had taken place.');
        this.advice();
        return;
      }
    }
  }

  /** Outcome measures, goals, plan of care (evaluations) and attendance. */
  private clinical({ plan }: { plan: boolean }): void {
    const rows = outcomeRows(this.snapshot, this.event);
    if (rows.length) {
      this.blocks.push({
        kind: 'outcomes',
        heading: 'Outcome measures',
        rows: rows.map((r) => this.outcome(r)),
      });
    } else {
      this.p('Outcome measures: none recorded yet.');
    }
    const goals = this.snapshot.goals.filter(
      (g) => !['entered-in-error', 'rejected', 'cancelled'].includes(g.lifecycleStatus),
    );
    if (goals.length) {
      this.blocks.push({ kind: 'list', heading: 'Goals', items: goals.map((g) => this.goal(g)) });
    }
    const carePlan = plan ? currentCarePlan(this.snapshot.carePlans) : undefined;
    const items = carePlan ? planOfCareItems(carePlan) : [];
    if (carePlan && items.length) {
      this.cite(`CarePlan/${carePlan.id}`, carePlan.title ?? 'Plan of care');
      this.blocks.push({ kind: 'list', heading: 'Plan of care', items });
    }
    this.attendance(attendanceAt(this.snapshot, this.event));
    this.advice();
  }

  private outcome(row: OutcomeRow): OutcomeLine {
    const { measure } = row;
    const observationDisplay = (date: string) => `${measure.codings[0]?.display}, ${date}`;
    const latestDate = this.date(row.latest.time);
    this.cite(`Observation/${row.latest.observation.id}`, observationDisplay(latestDate));
    const line: OutcomeLine = {
      label: `${measure.name} (${[measure.abbreviation, row.site, scaleText(measure)].filter(Boolean).join('; ')})`,
      latest: `${score(measure, row.latest.value)} on ${latestDate}`,
    };
    if (row.baseline && row.change !== undefined && row.improvement !== undefined) {
      const baselineDate = this.date(row.baseline.time);
      this.cite(`Observation/${row.baseline.observation.id}`, observationDisplay(baselineDate));
      const when = row.baselineAtInitialEvaluation ? 'at the initial evaluation on' : 'first recorded on';
      line.baseline = `${score(measure, row.baseline.value)} ${when} ${baselineDate}`;
      const amount = formatAmount(Math.abs(row.change), measure.changeUnit);
      line.change =
        row.change === 0
          ? 'unchanged'
          : row.improvement > 0
            ? `improved by ${amount}`
            : `worsened by ${amount}`;
      if (row.mcidReached && measure.mcid) line.mcid = `MCID of ${formatNumber(measure.mcid.value)} reached`;
    }
    return line;
  }

  private goal(goal: Goal): string {
    const what = conceptText(goal.description) ?? 'Goal';
    this.cite(`Goal/${goal.id}`, what);
    const due = goal.target?.find((t) => t.dueDate)?.dueDate;
    const status = goal.achievementStatus
      ? achievementText(goal.achievementStatus)
      : goal.lifecycleStatus.replace(/-/g, ' ');
    return `${what}${due ? ` (target date ${this.date(due)})` : ''}: ${status}`;
  }

  private attendance(a: Attendance): void {
    const n = a.attended.length;
    const attended = a.planned
      ? `${n} of ${a.planned.count} ${a.planned.basis === 'care-plan' ? 'planned' : 'booked'} visits attended`
      : `${n} ${n === 1 ? 'visit' : 'visits'} attended`;
    if (a.planned?.basis === 'care-plan') {
      this.cite(`CarePlan/${a.planned.carePlan.id}`, a.planned.carePlan.title ?? 'Plan of care');
    }
    const dates = a.noShows
      .map((x) => (x.start ? this.date(x.start) : undefined))
      .filter((d) => d !== undefined);
    const missed =
      a.noShows.length === 0
        ? 'no missed visits'
        : `${a.noShows.length} missed ${a.noShows.length === 1 ? 'visit' : 'visits'} (no-show` +
          (dates.length ? ` on ${joinAnd(dates)})` : ')');
    this.p(`Attendance: ${attended}; ${missed}.`);
  }

  private advice(): void {
    if (this.event.advice?.trim()) this.p(`Advice: ${this.event.advice.trim()}`);
  }

  /** The date of the event's visit, or of the event itself. */
  private visitDate(): string {
    const start = eventEncounter(this.snapshot, this.event)?.period?.start;
    return this.date(start ?? this.event.occurredAt);
  }

  private date(value: string): string {
    return formatDate(value, this.timeZone);
  }

  private p(text: string): void {
    this.blocks.push({ kind: 'paragraph', text });
  }

  private cite(reference: string, display: string): void {
    if (!this.cited.has(reference)) this.cited.set(reference, { reference, display });
  }
}

export function patientName(patient: Patient): string {
  const name = patient.name?.find((n) => n.use === 'official') ?? patient.name?.[0];
  const built = [name?.given?.[0], name?.family].filter(Boolean).join(' ');
  return name?.text ?? (built || 'the patient');
}

function conceptText(concept: CodeableConcept | undefined): string | undefined {
  return concept?.coding?.find((c) => c.display)?.display ?? concept?.text;
}

/** http://terminology.hl7.org/CodeSystem/goal-achievement, in running text. */
const ACHIEVEMENT: Record<string, string> = {
  'in-progress': 'in progress',
  improving: 'improving',
  worsening: 'worsening',
  'no-change': 'no change',
  achieved: 'achieved',
  sustaining: 'sustaining',
  'not-achieved': 'not achieved',
  'no-progress': 'no progress',
  'not-attainable': 'not attainable',
};

function achievementText(concept: CodeableConcept): string {
  const coding = concept.coding?.find(
    (c) => c.system === 'http://terminology.hl7.org/CodeSystem/goal-achievement' && c.code,
  );
  return (coding && ACHIEVEMENT[coding.code as string]) ?? conceptText(concept) ?? 'not recorded';
}

function scaleText(measure: OutcomeMeasure): string {
  const direction = `${measure.better} is better`;
  if (measure.changeUnit === 'degrees') return `degrees, ${direction}`;
  const unit = measure.unit === '%' ? '%' : '';
  return `${measure.range.min}-${measure.range.max}${unit}, ${direction}`;
}

function score(measure: OutcomeMeasure, value: number): string {
  return `${formatNumber(value)}${measure.suffix}`;
}

function joinAnd(items: string[]): string {
  return items.length <= 1
    ? (items[0] ?? '')
    : `${items.slice(0, -1).join(', ')} and ${items[items.length - 1]}`;
}
