import type { Coding, Observation } from '@medplum/fhirtypes';
import { LOINC, OUTCOME_MEASURE_SYSTEM } from './progress-codes.js';

/**
 * The physical-therapy outcome measures the service recognises in Observation.code, with the
 * minimal clinically important difference (MCID) used to flag a change to the referrer.
 *
 * Codings: every measure has a code in profiles/CodeSystem-pt-outcome-measure.json; a LOINC code is
 * listed only where it was verified against LOINC's own page for the code:
 * - 72514-3 "Pain severity - 0-10 verbal numeric rating [Score] - Reported" (NPRS), verified;
 * - 97909-6 "Oswestry disability index score ODI", verified (loinc.org/97909-6, added in LOINC 2.70;
 *   the panel is 97908-8, not used here).
 * LEFS, QuickDASH, PSFS and range of motion: no LOINC code could be verified offline, so none is
 * listed; add one here and in profiles/ValueSet-pt-outcome-measure.json once checked on loinc.org.
 */
export type OutcomeMeasureId =
  'nprs' | 'lefs' | 'odi' | 'quickdash' | 'psfs' | 'knee-flexion-rom' | 'shoulder-flexion-rom';

export interface OutcomeMeasure {
  id: OutcomeMeasureId;
  /** Full name, as the referrer reads it. */
  name: string;
  abbreviation?: string;
  /** UCUM unit of the value. */
  unit: string;
  /** The scale's range; for range of motion, a plausibility bound (values outside are not reported). */
  range: { min: number; max: number };
  better: 'higher' | 'lower';
  /** Change in the better direction that is flagged as clinically important; none for range of motion. */
  mcid?: { value: number; source: string };
  /** Any of these in Observation.code identifies the measure. */
  codings: Required<Pick<Coding, 'system' | 'code' | 'display'>>[];
  /** How a value reads: 6 → '6/10', 34 → '34%', 105 → '105°'. */
  suffix: string;
  /** The unit of a change: points on a scale, or degrees. */
  changeUnit: 'points' | 'degrees';
}

const service = (code: OutcomeMeasureId, display: string) => ({
  system: OUTCOME_MEASURE_SYSTEM,
  code,
  display,
});

export const OUTCOME_MEASURES: readonly OutcomeMeasure[] = [
  {
    id: 'nprs',
    name: 'Numeric Pain Rating Scale',
    abbreviation: 'NPRS',
    unit: '{score}',
    range: { min: 0, max: 10 },
    better: 'lower',
    mcid: {
      value: 2,
      // Farrar JT, Young JP, LaMoreaux L, Werth JL, Poole RM. Clinical importance of changes in chronic
      // pain intensity measured on an 11-point numerical pain rating scale. Pain 2001;94(2):149-158
      // (about 2 points or 30%); Childs JD, Piva SR, Fritz JM. Responsiveness of the numeric pain
      // rating scale in patients with low back pain. Spine 2005;30(11):1331-1334 (2 points).
      // Mintken et al. 2009 found 1.1 in shoulder pain; the more common, stricter 2 is used.
      source: 'Farrar JT et al., Pain 2001;94:149-158; Childs JD et al., Spine 2005;30:1331-1334',
    },
    codings: [
      service('nprs', 'Numeric Pain Rating Scale (NPRS)'),
      {
        system: LOINC,
        code: '72514-3',
        display: 'Pain severity - 0-10 verbal numeric rating [Score] - Reported',
      },
    ],
    suffix: '/10',
    changeUnit: 'points',
  },
  {
    id: 'lefs',
    name: 'Lower Extremity Functional Scale',
    abbreviation: 'LEFS',
    unit: '{score}',
    range: { min: 0, max: 80 },
    better: 'higher',
    mcid: {
      value: 9,
      // Binkley JM, Stratford PW, Lott SA, Riddle DL. The Lower Extremity Functional Scale (LEFS):
      // scale development, measurement properties, and clinical application. Phys Ther
      // 1999;79(4):371-383 (MCID and 90% minimal detectable change both 9 points).
      source: 'Binkley JM et al., Phys Ther 1999;79:371-383',
    },
    codings: [service('lefs', 'Lower Extremity Functional Scale (LEFS)')],
    suffix: '/80',
    changeUnit: 'points',
  },
  {
    id: 'odi',
    name: 'Oswestry Disability Index',
    abbreviation: 'ODI',
    unit: '%',
    range: { min: 0, max: 100 },
    better: 'lower',
    mcid: {
      value: 10,
      // Ostelo RW, Deyo RA, Stratford P, et al. Interpreting change scores for pain and functional
      // status in low back pain: towards international consensus regarding minimal important change.
      // Spine 2008;33(1):90-94 (10 points on the 0-100 ODI, or 30% from baseline; the absolute
      // threshold is used).
      source: 'Ostelo RW et al., Spine 2008;33:90-94',
    },
    codings: [
      service('odi', 'Oswestry Disability Index (ODI)'),
      { system: LOINC, code: '97909-6', display: 'Oswestry disability index score ODI' },
    ],
    suffix: '%',
    changeUnit: 'points',
  },
  {
    id: 'quickdash',
    name: 'QuickDASH',
    unit: '{score}',
    range: { min: 0, max: 100 },
    better: 'lower',
    mcid: {
      value: 15.91,
      // Franchignoni F, Vercelli S, Giordano A, Sartorio F, Bravini E, Ferriero G. Minimal clinically
      // important difference of the DASH and its shortened version (QuickDASH). J Orthop Sports Phys
      // Ther 2014;44(1):30-39: 15.91 points in 255 patients after physical therapy. Mintken PE, Glynn P,
      // Cleland JA, J Shoulder Elbow Surg 2009;18(6):920-926, found 8.0 in shoulder pain; the higher
      // value is used so a flag is not raised for a change some patients would not notice.
      source: 'Franchignoni F et al., J Orthop Sports Phys Ther 2014;44:30-39',
    },
    codings: [service('quickdash', 'QuickDASH')],
    suffix: '/100',
    changeUnit: 'points',
  },
  {
    id: 'psfs',
    name: 'Patient-Specific Functional Scale',
    abbreviation: 'PSFS, mean of activities',
    unit: '{score}',
    range: { min: 0, max: 10 },
    better: 'higher',
    mcid: {
      value: 2,
      // Stratford P, Gill C, Westaway M, Binkley J. Assessing disability and change on individual
      // patients: a report of a patient specific measure. Physiother Can 1995;47(4):258-263 (2 points
      // for the mean score, 3 for a single activity); reviewed in Horn KK et al., J Orthop Sports Phys
      // Ther 2012;42(1):30-42, and consistent with Rysstad T et al., BMC Musculoskelet Disord
      // 2020;21:328 (1.9-2.0 in shoulder pain).
      source: 'Stratford P et al., Physiother Can 1995;47:258-263; Horn KK et al., JOSPT 2012;42:30-42',
    },
    codings: [service('psfs', 'Patient-Specific Functional Scale (PSFS)')],
    suffix: '/10',
    changeUnit: 'points',
  },
  // Range of motion: no MCID applies across joints, conditions and measurers, so a change is reported
  // without an MCID flag; the referrer judges it against the goal.
  {
    id: 'knee-flexion-rom',
    name: 'Knee flexion range of motion',
    unit: 'deg',
    range: { min: 0, max: 160 },
    better: 'higher',
    codings: [service('knee-flexion-rom', 'Knee flexion range of motion')],
    suffix: '°',
    changeUnit: 'degrees',
  },
  {
    id: 'shoulder-flexion-rom',
    name: 'Shoulder flexion range of motion',
    unit: 'deg',
    range: { min: 0, max: 180 },
    better: 'higher',
    codings: [service('shoulder-flexion-rom', 'Shoulder flexion range of motion')],
    suffix: '°',
    changeUnit: 'degrees',
  },
];

/** The catalog entry whose coding appears in the Observation's code, if any. */
export function measureOf(observation: Observation): OutcomeMeasure | undefined {
  const codings = observation.code?.coding ?? [];
  return OUTCOME_MEASURES.find((m) =>
    m.codings.some((k) => codings.some((c) => c.system === k.system && c.code === k.code)),
  );
}

/** One reportable value of an outcome measure. */
export interface Measurement {
  measure: OutcomeMeasure;
  observation: Observation;
  value: number;
  /** effective[x] (or issued), as recorded. */
  time: string;
  /** Observation.bodySite, for measures taken on one side (range of motion). */
  site?: string;
}

/** Only results that stand: preliminary, cancelled and entered-in-error ones are not reported. */
const REPORTABLE = new Set(['final', 'amended', 'corrected']);

export function measurementOf(observation: Observation): Measurement | undefined {
  const measure = measureOf(observation);
  if (!measure || !REPORTABLE.has(observation.status)) return undefined;
  const value = observation.valueQuantity?.value ?? observation.valueInteger;
  const time =
    observation.effectiveDateTime ??
    observation.effectiveInstant ??
    observation.effectivePeriod?.start ??
    observation.issued;
  if (value === undefined || time === undefined) return undefined;
  // A value off the scale is a recording error; reporting it would not be defensible.
  if (value < measure.range.min || value > measure.range.max) return undefined;
  const site = observation.bodySite?.text ?? observation.bodySite?.coding?.find((c) => c.display)?.display;
  return { measure, observation, value, time, ...(site ? { site } : {}) };
}
