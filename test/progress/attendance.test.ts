import type { Appointment, CarePlan, Encounter } from '@medplum/fhirtypes';
import { describe, expect, it } from 'vitest';
import { currentCarePlan, plannedVisits, timingVisits } from '../../src/progress/plan-of-care.js';
import {
  attendanceAt,
  composeProgressCommunication,
  countAttendedVisits,
  isProgressReportDue,
} from '../../src/progress/index.js';
import { carePlan, EVENTS, snapshotAt } from './knee-oa-episode.js';

describe('isProgressReportDue', () => {
  it.each([
    [0, 10, false],
    [1, 10, false],
    [9, 10, false],
    [10, 10, true],
    [11, 10, false],
    [20, 10, true],
    [1, 1, true],
    [6, 3, true],
  ])('%i attended visits, every %i visits: %s', (attended, every, due) => {
    expect(isProgressReportDue(attended, every)).toBe(due);
  });

  it('refuses a cadence or a count that is not a whole number of visits', () => {
    expect(() => isProgressReportDue(5, 0)).toThrow(RangeError);
    expect(() => isProgressReportDue(5, 2.5)).toThrow(RangeError);
    expect(() => isProgressReportDue(-1, 10)).toThrow(RangeError);
    expect(() => isProgressReportDue(Number.NaN, 10)).toThrow(RangeError);
  });

  it('is due at the 10th attended visit of the knee episode, counted as the composer counts', () => {
    const attended = countAttendedVisits(snapshotAt('progress-report'), EVENTS['progress-report']);
    expect(attended).toBe(10);
    expect(isProgressReportDue(attended, 10)).toBe(true);
    expect(
      isProgressReportDue(countAttendedVisits(snapshotAt('re-evaluation'), EVENTS['re-evaluation']), 10),
    ).toBe(false);
  });
});

describe('planned visits from the plan of care', () => {
  it.each([
    ['a count', { count: 8 }, 8],
    [
      '2 a week for 6 weeks',
      { frequency: 2, period: 1, periodUnit: 'wk', boundsDuration: { value: 6, code: 'wk' } },
      12,
    ],
    [
      '3 a week for 4 weeks',
      { frequency: 3, period: 1, periodUnit: 'wk', boundsDuration: { value: 4, code: 'wk' } },
      12,
    ],
    [
      'once a week for 2 months',
      { frequency: 1, period: 1, periodUnit: 'wk', boundsDuration: { value: 2, code: 'mo' } },
      9,
    ],
    [
      'units as words',
      { frequency: 2, period: 1, periodUnit: 'wk', boundsDuration: { value: 6, unit: 'weeks' } },
      12,
    ],
    [
      '2 a week over a 6-week period',
      { frequency: 2, period: 1, periodUnit: 'wk', boundsPeriod: { start: '2026-03-09', end: '2026-04-20' } },
      12,
    ],
    ['no bounds', { frequency: 2, period: 1, periodUnit: 'wk' }, undefined],
    [
      'hourly',
      { frequency: 1, period: 1, periodUnit: 'h', boundsDuration: { value: 6, code: 'wk' } },
      undefined,
    ],
  ] as const)('%s', (_name, repeat, visits) => {
    expect(timingVisits(repeat as never)).toBe(visits);
  });

  it('counts the activities marked as appointments, not the home programme', () => {
    const plan = carePlan();
    expect(plannedVisits(plan)).toBe(12);
    const daily = structuredClone(plan);
    (
      daily.activity?.[1]?.detail as NonNullable<NonNullable<CarePlan['activity']>[number]['detail']>
    ).scheduledTiming = {
      repeat: { frequency: 1, period: 1, periodUnit: 'd', boundsDuration: { value: 6, code: 'wk' } },
    };
    expect(plannedVisits(daily)).toBe(12);
  });

  it('takes the plan in force: active before completed, then the newest', () => {
    const old = { ...carePlan(), id: 'old', created: '2026-03-01T10:00:00Z' };
    const revised = { ...carePlan(), id: 'revised', created: '2026-03-30T16:00:00Z' };
    const done = { ...carePlan('completed'), id: 'done', created: '2026-04-01T10:00:00Z' };
    const revoked = { ...carePlan('revoked'), id: 'revoked', created: '2026-04-02T10:00:00Z' };
    expect(currentCarePlan([old, done, revised, revoked])?.id).toBe('revised');
    expect(currentCarePlan([done, revoked])?.id).toBe('done');
    expect(currentCarePlan([revoked])).toBeUndefined();
  });
});

describe('attendance', () => {
  const event = EVENTS['re-evaluation'];

  it('counts visits of the referral or the episode that were held, up to the event', () => {
    const snapshot = snapshotAt('re-evaluation');
    const [first] = snapshot.encounters as [Encounter];
    const visit = (id: string, changes: Partial<Encounter>): Encounter => ({ ...first, id, ...changes });
    snapshot.encounters.push(
      visit('episode-only', { basedOn: undefined, period: { start: '2026-03-27T15:00:00Z' } }),
      visit('in-progress', { status: 'in-progress', period: { start: '2026-03-30T17:00:00Z' } }),
      visit('other-referral', { basedOn: [{ reference: 'ServiceRequest/other' }], episodeOfCare: undefined }),
      visit('cancelled', { status: 'cancelled' }),
      visit('planned', { status: 'planned' }),
      visit('after-the-event', { period: { start: '2026-04-02T15:00:00Z' } }),
    );
    const attended = attendanceAt(snapshot, event).attended.map((e) => e.id);
    expect(attended).toEqual(['enc-01', 'enc-02', 'enc-03', 'enc-04', 'enc-05', 'episode-only', 'enc-06']);
    // The in-progress visit after the event's time counts when it is the event's own visit.
    const own = { ...event, encounter: { reference: 'Encounter/in-progress' } };
    expect(attendanceAt(snapshot, own).attended.map((e) => e.id)).toContain('in-progress');
  });

  it('counts booked visits as planned when there is no plan of care, and no-shows up to the event', () => {
    const snapshot = { ...snapshotAt('re-evaluation'), carePlans: [] };
    const [first] = snapshot.appointments as [Appointment];
    snapshot.appointments.push(
      { ...first, id: 'next-week', status: 'booked', start: '2026-04-06T15:00:00Z' },
      { ...first, id: 'called-off', status: 'cancelled', start: '2026-04-09T15:00:00Z' },
      { ...first, id: 'later-noshow', status: 'noshow', start: '2026-04-13T15:00:00Z' },
    );
    const attendance = attendanceAt(snapshot, event);
    // 6 fulfilled + the missed one + visit 7 booked + next week + the later no-show; not the cancelled one.
    expect(attendance.planned).toEqual({ count: 10, basis: 'appointments' });
    expect(attendance.noShows.map((a) => a.id)).toEqual(['appt-noshow']);
    const summary = composeProgressCommunication(event, snapshot, { id: 'c', now: '2026-03-30T16:03:00Z' })
      .payload?.[0]?.contentString;
    expect(summary).toContain(
      'Attendance: 6 of 10 booked visits attended; 1 missed visit (no-show on 23 Mar 2026).',
    );
    expect(summary).not.toContain('Plan of care');
  });

  it('says what it knows when neither a plan nor bookings give a planned number', () => {
    const snapshot = { ...snapshotAt('cancelled'), carePlans: [], appointments: [] };
    const summary = composeProgressCommunication(EVENTS.cancelled, snapshot, {
      id: 'c',
      now: '2026-03-14T10:00:30Z',
    }).payload?.[0]?.contentString;
    expect(summary).toContain('\n\nAttendance: 2 visits attended; no missed visits.\n\n');
    const none = { ...snapshot, encounters: [] };
    expect(
      composeProgressCommunication(EVENTS.cancelled, none, { id: 'c', now: '2026-03-14T10:00:30Z' })
        .payload?.[0]?.contentString,
    ).toContain('\n\nNo visits had taken place.\n\n');
  });
});
