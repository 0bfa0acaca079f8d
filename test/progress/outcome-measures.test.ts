import { readFileSync } from 'node:fs';
import type { CodeSystem, Encounter, Observation, ValueSet } from '@medplum/fhirtypes';
import { describe, expect, it } from 'vitest';
import {
  composeProgressCommunication,
  ENCOUNTER_TYPE_SYSTEM,
  EVENT_DISPLAY,
  measureOf,
  measurementOf,
  OUTCOME_MEASURE_SYSTEM,
  OUTCOME_MEASURES,
  outcomeRows,
  type EpisodeSnapshot,
} from '../../src/progress/index.js';
import { EVENTS, snapshotAt } from './knee-oa-episode.js';

const profile = <T>(file: string): T =>
  JSON.parse(readFileSync(new URL(`../../profiles/${file}`, import.meta.url), 'utf8')) as T;

describe('the outcome-measure catalog', () => {
  it('lists each measure with its scale, direction and MCID (none for range of motion)', () => {
    expect(
      OUTCOME_MEASURES.map((m) => [m.id, m.range.min, m.range.max, m.unit, m.better, m.mcid?.value]),
    ).toEqual([
      ['nprs', 0, 10, '{score}', 'lower', 2],
      ['lefs', 0, 80, '{score}', 'higher', 9],
      ['odi', 0, 100, '%', 'lower', 10],
      ['quickdash', 0, 100, '{score}', 'lower', 15.91],
      ['psfs', 0, 10, '{score}', 'higher', 2],
      ['knee-flexion-rom', 0, 160, 'deg', 'higher', undefined],
      ['shoulder-flexion-rom', 0, 180, 'deg', 'higher', undefined],
    ]);
    for (const m of OUTCOME_MEASURES.filter((x) => x.mcid)) expect(m.mcid?.source).toMatch(/\d{4}/);
  });

  it('uses exactly the codes of profiles/CodeSystem-pt-outcome-measure.json, with the same displays', () => {
    const cs = profile<CodeSystem>('CodeSystem-pt-outcome-measure.json');
    expect(cs.url).toBe(OUTCOME_MEASURE_SYSTEM);
    const service = OUTCOME_MEASURES.map((m) => m.codings.find((c) => c.system === OUTCOME_MEASURE_SYSTEM));
    expect(service.map((c) => [c?.code, c?.display])).toEqual(cs.concept?.map((c) => [c.code, c.display]));
  });

  it('lists only the verified LOINC codes, the same in the catalog and the ValueSet', () => {
    const vs = profile<ValueSet>('ValueSet-pt-outcome-measure.json');
    const loinc = vs.compose?.include.find((i) => i.system === 'http://loinc.org')?.concept;
    const catalog = OUTCOME_MEASURES.flatMap((m) => m.codings.filter((c) => c.system === 'http://loinc.org'));
    expect(catalog.map((c) => [c.code, c.display])).toEqual(loinc?.map((c) => [c.code, c.display]));
    expect(catalog.map((c) => c.code)).toEqual(['72514-3', '97909-6']);
  });

  it('keeps the event displays and visit types the same as their CodeSystems', () => {
    const events = profile<CodeSystem>('CodeSystem-pt-referral-event.json');
    expect(Object.entries(EVENT_DISPLAY)).toEqual(events.concept?.map((c) => [c.code, c.display]));
    const visits = profile<CodeSystem>('CodeSystem-pt-encounter-type.json');
    expect(visits.url).toBe(ENCOUNTER_TYPE_SYSTEM);
    expect(visits.concept?.map((c) => c.code)).toEqual([
      'initial-evaluation',
      're-evaluation',
      'treatment',
      'discharge',
    ]);
  });
});

function obs(
  coding: { system: string; code: string },
  value: number,
  extra: Partial<Observation> = {},
): Observation {
  return {
    resourceType: 'Observation',
    id: `o-${coding.code}-${value}`,
    status: 'final',
    code: { coding: [coding] },
    subject: { reference: 'Patient/harold-whitfield' },
    effectiveDateTime: '2026-03-09T15:20:00Z',
    valueQuantity: { value },
    ...extra,
  };
}
const service = (code: string) => ({ system: OUTCOME_MEASURE_SYSTEM, code });

describe('recognising an Observation', () => {
  it('accepts the LOINC coding or the service coding', () => {
    expect(measureOf(obs({ system: 'http://loinc.org', code: '72514-3' }, 4))?.id).toBe('nprs');
    expect(measureOf(obs(service('nprs'), 4))?.id).toBe('nprs');
    expect(measureOf(obs({ system: 'http://loinc.org', code: '97909-6' }, 30))?.id).toBe('odi');
    expect(measureOf(obs(service('quickdash'), 30))?.id).toBe('quickdash');
    expect(measureOf(obs({ system: 'http://loinc.org', code: '39156-5' }, 31))).toBeUndefined();
    // A code from another system that happens to match is not the measure.
    expect(measureOf(obs({ system: 'http://example.org/codes', code: 'lefs' }, 31))).toBeUndefined();
  });

  it('reports only standing results, on the scale, with a time', () => {
    expect(measurementOf(obs(service('lefs'), 38))?.value).toBe(38);
    expect(
      measurementOf(obs(service('lefs'), 38, { valueQuantity: undefined, valueInteger: 40 }))?.value,
    ).toBe(40);
    expect(measurementOf(obs(service('lefs'), 38, { status: 'amended' }))).toBeDefined();
    expect(measurementOf(obs(service('lefs'), 38, { status: 'preliminary' }))).toBeUndefined();
    expect(measurementOf(obs(service('lefs'), 38, { status: 'entered-in-error' }))).toBeUndefined();
    expect(measurementOf(obs(service('lefs'), 81))).toBeUndefined();
    expect(measurementOf(obs(service('nprs'), -1))).toBeUndefined();
    expect(measurementOf(obs(service('lefs'), 38, { effectiveDateTime: undefined }))).toBeUndefined();
    expect(
      measurementOf(
        obs(service('lefs'), 38, { effectiveDateTime: undefined, issued: '2026-03-09T16:00:00Z' }),
      )?.time,
    ).toBe('2026-03-09T16:00:00Z');
  });
});

/** The re-evaluation snapshot with other Observations: IE on 9 Mar (enc-01), event on 30 Mar. */
function withObservations(observations: Observation[], encounters?: Encounter[]): EpisodeSnapshot {
  const snapshot = snapshotAt('re-evaluation');
  return { ...snapshot, observations, ...(encounters ? { encounters } : {}) };
}
const atIe = { encounter: { reference: 'Encounter/enc-01' }, effectiveDateTime: '2026-03-09T15:20:00Z' };
const atRe = { encounter: { reference: 'Encounter/enc-06' }, effectiveDateTime: '2026-03-30T15:20:00Z' };

function summaryLines(snapshot: EpisodeSnapshot): string[] {
  const c = composeProgressCommunication(EVENTS['re-evaluation'], snapshot, {
    id: 'c',
    now: '2026-03-30T16:03:00Z',
  });
  return (c.payload?.[0]?.contentString as string).split('\n').filter((l) => / is better\): /.test(l));
}

describe('change since the initial evaluation and the MCID flag', () => {
  it('flags an improvement that reaches the MCID in the better direction, after rounding to 2 decimals', () => {
    const snapshot = withObservations([
      obs(service('quickdash'), 45.45, { ...atIe, id: 'qd-1' }),
      obs(service('quickdash'), 29.55, { ...atRe, id: 'qd-2' }), // 15.90: just short of 15.91
      obs(service('odi'), 40, { ...atIe, id: 'odi-1' }),
      obs(service('odi'), 30, { ...atRe, id: 'odi-2' }), // 10 lower: reached
      obs(service('psfs'), 3.3, { ...atIe, id: 'psfs-1' }),
      obs(service('psfs'), 5.3, { ...atRe, id: 'psfs-2' }), // 1.9999999999999996 in floating point: 2
    ]);
    expect(summaryLines(snapshot)).toEqual([
      '- Oswestry Disability Index (ODI; 0-100%, lower is better): 30% on 30 Mar 2026; ' +
        '40% at the initial evaluation on 9 Mar 2026; improved by 10 points (MCID of 10 reached)',
      '- QuickDASH (0-100, lower is better): 29.55/100 on 30 Mar 2026; ' +
        '45.45/100 at the initial evaluation on 9 Mar 2026; improved by 15.9 points',
      '- Patient-Specific Functional Scale (PSFS, mean of activities; 0-10, higher is better): 5.3/10 on 30 Mar 2026; ' +
        '3.3/10 at the initial evaluation on 9 Mar 2026; improved by 2 points (MCID of 2 reached)',
    ]);
    const quick = outcomeRows(
      withObservations([
        obs(service('quickdash'), 47.73, { ...atIe, id: 'qd-1' }),
        obs(service('quickdash'), 31.82, { ...atRe, id: 'qd-2' }),
      ]),
      EVENTS['re-evaluation'],
    );
    expect(quick.map((r) => [r.improvement, r.mcidReached])).toEqual([[15.91, true]]);
  });

  it('reports a change for the worse, or none, without a flag; range of motion is never flagged', () => {
    const snapshot = withObservations([
      obs(service('odi'), 40, { ...atIe, id: 'odi-1' }),
      obs(service('odi'), 52, { ...atRe, id: 'odi-2' }),
      obs(service('lefs'), 38, { ...atIe, id: 'lefs-1' }),
      obs(service('lefs'), 38, { ...atRe, id: 'lefs-2' }),
      obs(service('knee-flexion-rom'), 90, { ...atIe, id: 'rom-1' }),
      obs(service('knee-flexion-rom'), 140, { ...atRe, id: 'rom-2' }),
    ]);
    expect(summaryLines(snapshot)).toEqual([
      '- Lower Extremity Functional Scale (LEFS; 0-80, higher is better): 38/80 on 30 Mar 2026; ' +
        '38/80 at the initial evaluation on 9 Mar 2026; unchanged',
      '- Oswestry Disability Index (ODI; 0-100%, lower is better): 52% on 30 Mar 2026; ' +
        '40% at the initial evaluation on 9 Mar 2026; worsened by 12 points',
      '- Knee flexion range of motion (degrees, higher is better): 140° on 30 Mar 2026; ' +
        '90° at the initial evaluation on 9 Mar 2026; improved by 50°',
    ]);
  });

  it('takes the value recorded in the initial evaluation visit as the baseline, before an earlier one', () => {
    const fromReferrer = obs(service('nprs'), 7, {
      id: 'gp',
      effectiveDateTime: '2026-03-02T09:05:00-06:00',
    });
    const rows = outcomeRows(
      withObservations([
        fromReferrer,
        obs(service('nprs'), 6, { ...atIe, id: 'ie' }),
        obs(service('nprs'), 4, { ...atRe, id: 're' }),
      ]),
      EVENTS['re-evaluation'],
    );
    expect(rows.map((r) => [r.baseline?.observation.id, r.baselineAtInitialEvaluation, r.change])).toEqual([
      ['ie', true, -2],
    ]);
  });

  it('otherwise the earliest value at or before the initial evaluation, or the earliest of all', () => {
    const waitingRoom = obs(service('lefs'), 36, {
      id: 'waiting-room',
      effectiveDateTime: '2026-03-09T14:45:00Z',
    });
    const fromReferrer = obs(service('lefs'), 35, {
      id: 'gp',
      effectiveDateTime: '2026-03-02T09:05:00-06:00',
    });
    const later = obs(service('lefs'), 47, { ...atRe, id: 're' });
    const lines = (observations: Observation[], encounters?: Encounter[]) =>
      summaryLines(withObservations(observations, encounters));
    expect(lines([waitingRoom, later])).toEqual([
      '- Lower Extremity Functional Scale (LEFS; 0-80, higher is better): 47/80 on 30 Mar 2026; ' +
        '36/80 at the initial evaluation on 9 Mar 2026; improved by 11 points (MCID of 9 reached)',
    ]);
    expect(lines([fromReferrer, waitingRoom, later])).toEqual([
      '- Lower Extremity Functional Scale (LEFS; 0-80, higher is better): 47/80 on 30 Mar 2026; ' +
        '35/80 first recorded on 2 Mar 2026; improved by 12 points (MCID of 9 reached)',
    ]);
    // No visit typed as the initial evaluation: the first value recorded.
    const untyped = snapshotAt('re-evaluation').encounters.map((e) => ({ ...e, type: undefined }));
    expect(lines([waitingRoom, later], untyped)).toEqual([
      '- Lower Extremity Functional Scale (LEFS; 0-80, higher is better): 47/80 on 30 Mar 2026; ' +
        '36/80 first recorded on 9 Mar 2026; improved by 11 points (MCID of 9 reached)',
    ]);
  });

  it("keeps left and right apart, and leaves out another patient's Observations", () => {
    const side = (text: string) => ({ bodySite: { text } });
    const rows = outcomeRows(
      withObservations([
        obs(service('knee-flexion-rom'), 100, { ...atIe, ...side('Right knee'), id: 'r1' }),
        obs(service('knee-flexion-rom'), 135, { ...atIe, ...side('Left knee'), id: 'l1' }),
        obs(service('knee-flexion-rom'), 118, { ...atRe, ...side('Right knee'), id: 'r2' }),
        obs(service('lefs'), 70, { ...atRe, id: 'someone-else', subject: { reference: 'Patient/other' } }),
      ]),
      EVENTS['re-evaluation'],
    );
    expect(rows.map((r) => [r.site, r.latest.value, r.change])).toEqual([
      ['Left knee', 135, undefined],
      ['Right knee', 118, 18],
    ]);
  });
});
