import type { Communication, CommunicationPayload } from '@medplum/fhirtypes';
import { describe, expect, it } from 'vitest';
import { composeProgressCommunication } from '../../src/progress/index.js';
import { sharedValidator } from '../support/test-app.js';
import { EVENTS, snapshotAt, STAGE_NAMES, type Stage } from './knee-oa-episode.js';

const PROFILE = 'https://ptreferral.dev/fhir/StructureDefinition/pt-progress-communication';
const EVENT_SYSTEM = 'https://ptreferral.dev/fhir/CodeSystem/pt-referral-event';

/** When each update is composed: a few minutes after its event. */
const SENT: Record<Stage, string> = {
  received: '2026-03-02T15:41:02Z',
  accepted: '2026-03-03T14:05:40Z',
  declined: '2026-03-03T14:06:10Z',
  booked: '2026-03-03T16:31:00Z',
  'initial-evaluation': '2026-03-09T16:02:00Z',
  'no-show': '2026-03-23T15:31:00Z',
  're-evaluation': '2026-03-30T16:03:00Z',
  'progress-report': '2026-04-13T16:04:00Z',
  discharge: '2026-04-20T16:05:00Z',
  cancelled: '2026-03-14T10:00:30Z',
};

function compose(stage: Stage, options: { timeZone?: string } = {}): Communication {
  return composeProgressCommunication(EVENTS[stage], snapshotAt(stage), {
    id: `comm-${stage}`,
    now: SENT[stage],
    ...options,
  });
}

const SIGN_OFF = ['Kind regards,', 'Riverside Physical Therapy', '(319) 555-0188'];
const REFERRAL_LINE =
  'Your referral of 2 Mar 2026 (ref. CVFM-RF-26-03117): Physical therapy: exercise therapy for right knee osteoarthritis';

/** Paragraphs separated by blank lines, as the summary is laid out. */
function text(title: string, ...paragraphs: (string | string[])[]): string {
  return [[title, REFERRAL_LINE], ...paragraphs, SIGN_OFF]
    .map((p) => (Array.isArray(p) ? p.join('\n') : p))
    .join('\n\n');
}

const PLAN = [
  'Plan of care:',
  '- Therapeutic exercise, manual therapy and gait training: twice a week for 6 weeks (12 visits)',
  '- Home exercise programme: quadriceps strengthening and knee range-of-motion exercises: daily',
];
const WALK = 'Walk 30 minutes on level ground with right knee pain of 3/10 or less (target date 20 Apr 2026)';
const STAIRS = 'Climb a flight of 12 stairs step-over-step without a handrail (target date 20 Apr 2026)';
const NPRS = 'Numeric Pain Rating Scale (NPRS; 0-10, lower is better)';
const LEFS = 'Lower Extremity Functional Scale (LEFS; 0-80, higher is better)';
const ROM = 'Knee flexion range of motion (Right knee; degrees, higher is better)';

type Cited = [reference: string, display: string];
const CARE_PLAN: Cited = ['CarePlan/careplan-1', 'Physical therapy plan of care: right knee osteoarthritis'];
const GOALS: Cited[] = [
  ['Goal/goal-walk', 'Walk 30 minutes on level ground with right knee pain of 3/10 or less'],
  ['Goal/goal-stairs', 'Climb a flight of 12 stairs step-over-step without a handrail'],
];
function measured(visit: string, date: string): Cited[] {
  return [
    [`Observation/obs-nprs-${visit}`, `Numeric Pain Rating Scale (NPRS), ${date}`],
    [`Observation/obs-lefs-${visit}`, `Lower Extremity Functional Scale (LEFS), ${date}`],
    [`Observation/obs-rom-${visit}`, `Knee flexion range of motion, ${date}`],
  ];
}
/** Latest then initial-evaluation Observation of each measure, in catalog order. */
function measuredSince(visit: string, date: string): Cited[] {
  const latest = measured(visit, date);
  const initial = measured('01', '9 Mar 2026');
  return latest.flatMap((l, i) => [l, initial[i] as Cited]);
}

interface Expected {
  code: string;
  display: string;
  identifier: string;
  summary: string;
  cited: Cited[];
  encounter?: string;
}

/** The exact Communication; only the HTML bytes are checked apart (below). */
function expected(stage: Stage, e: Expected): Communication {
  return {
    resourceType: 'Communication',
    id: `comm-${stage}`,
    meta: { profile: [PROFILE] },
    identifier: [{ system: 'https://ptreferral.dev/fhir/communication-id', value: e.identifier }],
    basedOn: [{ reference: 'ServiceRequest/referral-1' }],
    status: 'completed',
    category: [{ coding: [{ system: EVENT_SYSTEM, code: e.code, display: e.display }], text: e.display }],
    subject: { reference: 'Patient/harold-whitfield', display: 'Harold Whitfield' },
    about: [{ reference: 'EpisodeOfCare/episode-1' }],
    ...(e.encounter ? { encounter: { reference: e.encounter } } : {}),
    sent: SENT[stage],
    recipient: [{ reference: 'Practitioner/priya-raman', display: 'Priya Raman, MD' }],
    sender: { reference: 'Organization/practice', display: 'Riverside Physical Therapy' },
    payload: [
      { contentString: e.summary },
      {
        contentAttachment: {
          contentType: 'text/html',
          data: expect.any(String) as unknown as string,
          title: e.summary.split('\n')[0] as string,
          creation: SENT[stage],
        },
      },
      ...e.cited.map(([reference, display]) => ({ contentReference: { reference, display } })),
    ],
  };
}

const EXPECTED: Record<Stage, Expected> = {
  received: {
    code: 'referral-received',
    display: 'Referral received',
    identifier: 'episode-1/referral-received/Task/task-1/_history/1',
    summary: text(
      'Referral received: Harold Whitfield (DOB 2 Apr 1961)',
      'Thank you for your referral. Riverside Physical Therapy received it on 2 Mar 2026. ' +
        'We will review it and let you know whether we can accept it.',
    ),
    cited: [],
  },
  accepted: {
    code: 'referral-accepted',
    display: 'Referral accepted',
    identifier: 'episode-1/referral-accepted/Task/task-1/_history/2',
    summary: text(
      'Referral accepted: Harold Whitfield (DOB 2 Apr 1961)',
      'Riverside Physical Therapy accepted the referral on 3 Mar 2026. ' +
        'We will contact the patient to book the first visit and let you know when it is booked.',
    ),
    cited: [],
  },
  declined: {
    code: 'referral-declined',
    display: 'Referral declined',
    identifier: 'episode-1/referral-declined/Task/task-1/_history/2',
    summary: text(
      'Referral declined: Harold Whitfield (DOB 2 Apr 1961)',
      'We are sorry that Riverside Physical Therapy is unable to accept this referral (decided 3 Mar 2026).',
      'Reason: No capacity.',
      'Advice: Cedar Valley Hospital Outpatient Rehabilitation accepts knee osteoarthritis referrals and ' +
        'currently offers a first visit within two weeks.',
      'Please contact us if you would like to discuss this decision.',
    ),
    cited: [],
  },
  booked: {
    code: 'appointment-booked',
    display: 'First appointment booked',
    identifier: 'episode-1/appointment-booked/Appointment/appt-01/_history/1',
    summary: text(
      'First appointment booked: Harold Whitfield (DOB 2 Apr 1961)',
      'The first visit at Riverside Physical Therapy is booked for 9 Mar 2026 15:00 UTC.',
    ),
    cited: [],
  },
  'initial-evaluation': {
    code: 'initial-evaluation',
    display: 'Initial evaluation',
    identifier: 'episode-1/initial-evaluation/Encounter/enc-01/_history/3',
    encounter: 'Encounter/enc-01',
    summary: text(
      'Initial evaluation: Harold Whitfield (DOB 2 Apr 1961)',
      'Riverside Physical Therapy completed the initial evaluation on 9 Mar 2026.',
      [
        'Outcome measures:',
        `- ${NPRS}: 6/10 on 9 Mar 2026`,
        `- ${LEFS}: 38/80 on 9 Mar 2026`,
        `- ${ROM}: 105° on 9 Mar 2026`,
      ],
      ['Goals:', `- ${WALK}: in progress`, `- ${STAIRS}: in progress`],
      PLAN,
      'Attendance: 1 of 12 planned visits attended; no missed visits.',
    ),
    cited: [...measured('01', '9 Mar 2026'), ...GOALS, CARE_PLAN],
  },
  'no-show': {
    code: 'no-show',
    display: 'No-show',
    identifier: 'episode-1/no-show/Appointment/appt-noshow/_history/2',
    summary: text(
      'No-show: Harold Whitfield (DOB 2 Apr 1961)',
      'The patient did not attend the visit booked for 23 Mar 2026 15:00 UTC. ' +
        'We will contact the patient to offer another appointment.',
      'Attendance: 4 of 12 planned visits attended; 1 missed visit (no-show on 23 Mar 2026).',
    ),
    cited: [CARE_PLAN],
  },
  're-evaluation': {
    code: 're-evaluation',
    display: 'Re-evaluation',
    identifier: 'episode-1/re-evaluation/Encounter/enc-06/_history/2',
    encounter: 'Encounter/enc-06',
    summary: text(
      'Re-evaluation: Harold Whitfield (DOB 2 Apr 1961)',
      'Riverside Physical Therapy completed a re-evaluation on 30 Mar 2026.',
      [
        'Outcome measures:',
        // NPRS improved by 1 of the 2 points needed: no flag; LEFS by exactly its MCID of 9: flagged.
        `- ${NPRS}: 5/10 on 30 Mar 2026; 6/10 at the initial evaluation on 9 Mar 2026; improved by 1 point`,
        `- ${LEFS}: 47/80 on 30 Mar 2026; 38/80 at the initial evaluation on 9 Mar 2026; ` +
          'improved by 9 points (MCID of 9 reached)',
        `- ${ROM}: 115° on 30 Mar 2026; 105° at the initial evaluation on 9 Mar 2026; improved by 10°`,
      ],
      ['Goals:', `- ${WALK}: improving`, `- ${STAIRS}: in progress`],
      PLAN,
      'Attendance: 6 of 12 planned visits attended; 1 missed visit (no-show on 23 Mar 2026).',
    ),
    cited: [...measuredSince('06', '30 Mar 2026'), ...GOALS, CARE_PLAN],
  },
  'progress-report': {
    code: 'progress-report',
    display: 'Progress report',
    identifier: 'episode-1/progress-report/Encounter/enc-10/_history/2',
    encounter: 'Encounter/enc-10',
    summary: text(
      'Progress report: Harold Whitfield (DOB 2 Apr 1961)',
      'Progress report as of 13 Apr 2026, after 10 attended visits.',
      [
        'Outcome measures:',
        `- ${NPRS}: 3/10 on 13 Apr 2026; 6/10 at the initial evaluation on 9 Mar 2026; ` +
          'improved by 3 points (MCID of 2 reached)',
        `- ${LEFS}: 56/80 on 13 Apr 2026; 38/80 at the initial evaluation on 9 Mar 2026; ` +
          'improved by 18 points (MCID of 9 reached)',
        // Range of motion has no MCID: the change is reported without a flag.
        `- ${ROM}: 120° on 13 Apr 2026; 105° at the initial evaluation on 9 Mar 2026; improved by 15°`,
      ],
      ['Goals:', `- ${WALK}: improving`, `- ${STAIRS}: improving`],
      'Attendance: 10 of 12 planned visits attended; 1 missed visit (no-show on 23 Mar 2026).',
    ),
    cited: [...measuredSince('10', '13 Apr 2026'), ...GOALS, CARE_PLAN],
  },
  discharge: {
    code: 'discharge',
    display: 'Discharge',
    identifier: 'episode-1/discharge/Encounter/enc-12/_history/2',
    encounter: 'Encounter/enc-12',
    summary: text(
      'Discharge: Harold Whitfield (DOB 2 Apr 1961)',
      'Riverside Physical Therapy discharged the patient from physical therapy on 20 Apr 2026.',
      [
        'Outcome measures:',
        `- ${NPRS}: 2/10 on 20 Apr 2026; 6/10 at the initial evaluation on 9 Mar 2026; ` +
          'improved by 4 points (MCID of 2 reached)',
        `- ${LEFS}: 62/80 on 20 Apr 2026; 38/80 at the initial evaluation on 9 Mar 2026; ` +
          'improved by 24 points (MCID of 9 reached)',
        `- ${ROM}: 125° on 20 Apr 2026; 105° at the initial evaluation on 9 Mar 2026; improved by 20°`,
      ],
      ['Goals:', `- ${WALK}: achieved`, `- ${STAIRS}: improving`],
      'Attendance: 12 of 12 planned visits attended; 1 missed visit (no-show on 23 Mar 2026).',
      'Advice: Continue the home exercise programme three times a week.',
    ),
    cited: [...measuredSince('12', '20 Apr 2026'), ...GOALS, CARE_PLAN],
  },
  cancelled: {
    code: 'cancellation',
    display: 'Referral cancelled',
    identifier: 'episode-1/cancellation/Task/task-1/_history/5',
    summary: text(
      'Referral cancelled: Harold Whitfield (DOB 2 Apr 1961)',
      'This confirms that the referral was cancelled on 14 Mar 2026 by Priya Raman, MD.',
      'Reason: Patient moved out of the area.',
      'Attendance: 2 of 12 planned visits attended; no missed visits.',
    ),
    cited: [CARE_PLAN],
  },
};

function html(communication: Communication): string {
  const attachment = communication.payload?.find((p) => p.contentAttachment)?.contentAttachment;
  return Buffer.from(attachment?.data ?? '', 'base64').toString('utf8');
}

/** The text a reader sees: tags dropped, entities decoded, whitespace collapsed. */
function visibleText(document: string): string {
  return document
    .replace(/<style>[\s\S]*?<\/style>/g, ' ')
    .replace(/<[^>]*>/g, ' ')
    .replace(/&lt;/g, '<')
    .replace(/&gt;/g, '>')
    .replace(/&quot;/g, '"')
    .replace(/&#39;/g, "'")
    .replace(/&amp;/g, '&')
    .replace(/\s+/g, ' ');
}

/** The facts of one summary line: outcome lines split into value, baseline, change and MCID flag. */
function facts(line: string): string[] {
  const body = line.replace(/^- /, '').replace(/:$/, '');
  if (!/ is better\): /.test(body)) return [body];
  return body
    .replace(/ \((MCID of [\d.]+ reached)\)$/, '; $1')
    .split(/: |; (?=\d+(?:\.\d+)?(?:\/|%|°)|improved|worsened|unchanged|MCID)/);
}

describe('composeProgressCommunication', () => {
  it.each(STAGE_NAMES)('%s: the exact Communication, summary and cited evidence', (stage) => {
    expect(compose(stage)).toEqual(expected(stage, EXPECTED[stage]));
  });

  it.each(STAGE_NAMES)('%s: valid R4 and valid against the progress-communication profile', (stage) => {
    const communication = compose(stage);
    const result = sharedValidator().validate(communication, { profiles: [PROFILE] });
    expect(result.issues.filter((i) => i.severity === 'error' || i.severity === 'fatal')).toEqual([]);
    expect(result.failure).toBeUndefined();
    expect(sharedValidator().validate(communication).failure).toBeUndefined();
  });

  it('is checked for real: without the plain-text summary or the identifier it fails the profile', () => {
    const communication = compose('re-evaluation');
    const noSummary = { ...communication, payload: communication.payload?.slice(1) };
    expect(sharedValidator().validate(noSummary).failure).toBe(422);
    const noIdentifier = { ...communication, identifier: undefined };
    expect(sharedValidator().validate(noIdentifier).failure).toBe(422);
  });

  it.each(STAGE_NAMES)(
    '%s: the HTML report is a complete document stating every fact of the summary',
    (stage) => {
      const communication = compose(stage);
      const document = html(communication);
      expect(document.startsWith('<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">')).toBe(
        true,
      );
      expect(document.endsWith('</body>\n</html>\n')).toBe(true);
      const seen = visibleText(document);
      const summary = communication.payload?.[0]?.contentString as string;
      for (const line of summary.split('\n').filter((l) => l.trim())) {
        for (const fact of facts(line)) expect(seen, line).toContain(fact);
      }
    },
  );

  it('renders the re-evaluation as exactly this HTML, measures in a table', () => {
    const row = (measure: string, latest: string, initial: string, change: string): string =>
      `<tr><td>${measure}</td><td>${latest}</td><td>${initial}</td><td>${change}</td></tr>`;
    expect(html(compose('re-evaluation'))).toBe(
      [
        '<!DOCTYPE html>',
        '<html lang="en">',
        '<head>',
        '<meta charset="utf-8">',
        '<title>Re-evaluation: Harold Whitfield (DOB 2 Apr 1961)</title>',
        '<style>body{font-family:sans-serif;max-width:48em}table{border-collapse:collapse}' +
          'th,td{border:1px solid #999;padding:4px 8px;text-align:left;vertical-align:top}</style>',
        '</head>',
        '<body>',
        '<h1>Re-evaluation: Harold Whitfield (DOB 2 Apr 1961)</h1>',
        `<p>${REFERRAL_LINE}</p>`,
        '<p>Riverside Physical Therapy completed a re-evaluation on 30 Mar 2026.</p>',
        '<h2>Outcome measures</h2>',
        '<table>',
        '<thead><tr><th>Measure</th><th>Latest</th><th>Initial</th><th>Change</th></tr></thead>',
        '<tbody>',
        row(
          NPRS,
          '5/10 on 30 Mar 2026',
          '6/10 at the initial evaluation on 9 Mar 2026',
          'improved by 1 point',
        ),
        row(
          LEFS,
          '47/80 on 30 Mar 2026',
          '38/80 at the initial evaluation on 9 Mar 2026',
          'improved by 9 points (MCID of 9 reached)',
        ),
        row(ROM, '115° on 30 Mar 2026', '105° at the initial evaluation on 9 Mar 2026', 'improved by 10°'),
        '</tbody>',
        '</table>',
        '<h2>Goals</h2>',
        `<ul><li>${WALK}: improving</li><li>${STAIRS}: in progress</li></ul>`,
        '<h2>Plan of care</h2>',
        '<ul><li>Therapeutic exercise, manual therapy and gait training: twice a week for 6 weeks (12 visits)</li>' +
          '<li>Home exercise programme: quadriceps strengthening and knee range-of-motion exercises: daily</li></ul>',
        '<p>Attendance: 6 of 12 planned visits attended; 1 missed visit (no-show on 23 Mar 2026).</p>',
        '<p>Kind regards,<br>Riverside Physical Therapy<br>(319) 555-0188</p>',
        '</body>',
        '</html>',
        '',
      ].join('\n'),
    );
  });

  it('escapes every string from the record in the HTML: names, goals, advice, practice', () => {
    const snapshot = snapshotAt('discharge');
    snapshot.patient = {
      ...snapshot.patient,
      name: [{ use: 'official', family: 'Whitfield<script>alert("x")</script>', given: ["O'Brien"] }],
    };
    snapshot.practice = { ...snapshot.practice, name: 'Riverside PT & <i>Rehab</i>' };
    snapshot.goals = [
      {
        ...(snapshot.goals[0] as (typeof snapshot.goals)[number]),
        description: { text: 'Stairs <b>without</b> rail' },
      },
    ];
    const event = { ...EVENTS.discharge, advice: '<img src=x onerror=alert(1)> keep walking' };
    const communication = composeProgressCommunication(event, snapshot, { id: 'c', now: SENT.discharge });
    const document = html(communication);

    const tags = [...document.matchAll(/<\/?([!a-zA-Z][a-zA-Z0-9]*)/g)].map((m) =>
      (m[1] as string).toLowerCase(),
    );
    const allowed = [
      '!doctype',
      'html',
      'head',
      'meta',
      'title',
      'style',
      'body',
      'h1',
      'h2',
      'p',
      'br',
      'ul',
      'li',
    ];
    expect(new Set(tags)).toEqual(new Set([...allowed, 'table', 'thead', 'tbody', 'tr', 'th', 'td']));
    expect(document).not.toMatch(/<script|<img|<b>|<i>/);
    expect(document).toContain(
      '<h1>Discharge: O&#39;Brien Whitfield&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; (DOB 2 Apr 1961)</h1>',
    );
    expect(document).toContain(
      '<li>Stairs &lt;b&gt;without&lt;/b&gt; rail (target date 20 Apr 2026): achieved</li>',
    );
    expect(document).toContain('<p>Advice: &lt;img src=x onerror=alert(1)&gt; keep walking</p>');
    expect(document).toContain('Kind regards,<br>Riverside PT &amp; &lt;i&gt;Rehab&lt;/i&gt;<br>');
    // The plain-text summary carries the same strings as they are: it is text, not markup.
    expect(communication.payload?.[0]?.contentString).toContain(
      `Discharge: O'Brien Whitfield<script>alert("x")</script> (DOB 2 Apr 1961)`,
    );
    expect(sharedValidator().validate(communication).failure).toBeUndefined();
  });

  it('is pure: the same inputs give the same Communication, and the inputs are not changed', () => {
    for (const stage of STAGE_NAMES) {
      const snapshot = snapshotAt(stage);
      const before = structuredClone(snapshot);
      const event = structuredClone(EVENTS[stage]);
      const options = { id: 'same', now: SENT[stage] };
      const first = composeProgressCommunication(event, snapshot, options);
      const second = composeProgressCommunication(event, snapshot, options);
      expect(JSON.stringify(second)).toBe(JSON.stringify(first));
      expect(snapshot).toEqual(before);
      expect(event).toEqual(EVENTS[stage]);
    }
  });

  it('keeps the identifier when the same event is composed again later, under another id', () => {
    const first = compose('re-evaluation');
    const again = composeProgressCommunication(EVENTS['re-evaluation'], snapshotAt('re-evaluation'), {
      id: 'retry-7',
      now: '2026-03-31T08:00:00Z',
    });
    expect(again.identifier).toEqual(first.identifier);
    expect(again.sent).toBe('2026-03-31T08:00:00Z');
    // A version in the reference itself counts as the version.
    const versioned = composeProgressCommunication(
      {
        ...EVENTS['re-evaluation'],
        source: { reference: 'Encounter/enc-06/_history/2' },
        sourceVersion: undefined,
      },
      snapshotAt('re-evaluation'),
      { id: 'x', now: SENT['re-evaluation'] },
    );
    expect(versioned.identifier).toEqual(first.identifier);
    // Another version of the source is another event.
    const next = composeProgressCommunication(
      { ...EVENTS['re-evaluation'], sourceVersion: '3' },
      snapshotAt('re-evaluation'),
      { id: 'x', now: SENT['re-evaluation'] },
    );
    expect(next.identifier?.[0]?.value).toBe('episode-1/re-evaluation/Encounter/enc-06/_history/3');
  });

  it('describes the episode as of its event: later visits and measures in the snapshot change nothing', () => {
    const later = snapshotAt('discharge');
    const atEvaluation = snapshotAt('initial-evaluation');
    const snapshot = { ...atEvaluation, encounters: later.encounters, observations: later.observations };
    const options = { id: 'comm-initial-evaluation', now: SENT['initial-evaluation'] };
    expect(composeProgressCommunication(EVENTS['initial-evaluation'], snapshot, options)).toEqual(
      compose('initial-evaluation'),
    );
  });

  it('gives times in the practice time zone when asked', () => {
    const summary = (c: Communication) => (c.payload?.[0] as CommunicationPayload).contentString;
    expect(summary(compose('booked', { timeZone: 'America/Chicago' }))).toContain(
      'The first visit at Riverside Physical Therapy is booked for 9 Mar 2026 10:00 CDT.',
    );
    expect(summary(compose('no-show', { timeZone: 'America/Chicago' }))).toContain(
      'did not attend the visit booked for 23 Mar 2026 10:00 CDT.',
    );
  });

  it('finds the booked or missed appointment in the snapshot when the event does not carry it', () => {
    const { appointment: _carried, ...event } = EVENTS.booked;
    const communication = composeProgressCommunication(event, snapshotAt('booked'), {
      id: 'comm-booked',
      now: SENT.booked,
    });
    expect(communication).toEqual(compose('booked'));
  });

  it('refuses a referral without a requester: there is no one to send the update to', () => {
    const snapshot = snapshotAt('accepted');
    snapshot.referral = { ...snapshot.referral, requester: undefined };
    expect(() =>
      composeProgressCommunication(EVENTS.accepted, snapshot, { id: 'c', now: SENT.accepted }),
    ).toThrow(/ServiceRequest\/referral-1 has no requester/);
  });
});
