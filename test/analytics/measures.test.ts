import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Measure, MeasureReport } from '@medplum/fhirtypes';
import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generateDataset, writeDataset, type Dataset } from '../../scripts/generate-analytics-dataset.js';
import { OUTCOME_MEASURES } from '../../src/progress/outcome-measures.js';
import { publishDefinitions } from '../support/published.js';
import { sharedValidator, startTestApp, type TestApp } from '../support/test-app.js';
import {
  expectedMeasures,
  groundTruth,
  type Projection,
  type StratifierPlan,
  type Truth,
} from './expected-measures.js';

/**
 * Acceptance 1: a generated year of a practice (scripts/generate-analytics-dataset.ts, ~1,200
 * referrals from 20 referring sources) is written to the store; every Measure's MeasureReport from
 * GET /fhir/Measure/[id]/$evaluate-measure must equal, exactly (every population count, score and
 * stratum), the figures recomputed in this test from the raw resources the generator wrote
 * (expected-measures.ts, which uses nothing from src/analytics).
 */
const PROFILES = new URL('../../profiles/', import.meta.url).pathname;
const measures = readdirSync(PROFILES)
  .filter((f) => /^Measure-.*\.json$/.test(f))
  .map((f) => JSON.parse(readFileSync(join(PROFILES, f), 'utf8')) as Measure);
const plan: StratifierPlan = Object.fromEntries(
  measures.map((m) => [
    m.id as string,
    Object.fromEntries(
      (m.group ?? []).map((g) => [
        g.code?.coding?.[0]?.code as string,
        (g.stratifier ?? []).map((s) => s.code?.coding?.[0]?.code as string),
      ]),
    ),
  ]),
);
const NAME = 'https://ptreferral.dev/fhir/sid/referrer-normalised-name';
/** The two sources with neither NPI nor identifier, under the key their normalised name gives. */
const BY_NAME = { chen: `${NAME}|amy chen`, 'harbor-sports': `${NAME}|clinic harbor medicine sports` };

function project(report: MeasureReport): Record<string, Projection> {
  const populations = (list: { code?: { coding?: { code?: string }[] }; count?: number }[] | undefined) =>
    Object.fromEntries((list ?? []).map((p) => [p.code?.coding?.[0]?.code as string, p.count as number]));
  const key = (v: { coding?: { system?: string; code?: string }[]; text?: string } | undefined): string =>
    v?.coding?.[0] ? `${v.coding[0].system}|${v.coding[0].code}` : (v?.text as string);
  return Object.fromEntries(
    (report.group ?? []).map((g) => {
      const projection: Projection = {
        populations: populations(g.population),
        ...(g.measureScore ? { score: g.measureScore.value as number } : {}),
      };
      if (g.stratifier?.length) {
        projection.strata = Object.fromEntries(
          g.stratifier.map((s) => [
            s.code?.[0]?.coding?.[0]?.code as string,
            Object.fromEntries(
              (s.stratum ?? []).map((st) => [
                key(st.value),
                {
                  populations: populations(st.population),
                  ...(st.measureScore ? { score: st.measureScore.value as number } : {}),
                },
              ]),
            ),
          ]),
        );
      }
      return [g.code?.coding?.[0]?.code as string, projection];
    }),
  );
}

describe('referral-programme measures on a generated year of a practice', () => {
  let t: TestApp;
  let dataset: Dataset;
  let truth: Truth;

  beforeAll(async () => {
    t = await startTestApp();
    // The definitions are stored at start-up (src/conformance/published-definitions.ts).
    await publishDefinitions(t.store);
    dataset = generateDataset();
    await writeDataset(t.store);
    truth = groundTruth(dataset.resources, dataset.referrers, BY_NAME);
  }, 180_000);
  afterAll(async () => {
    await t?.close();
  });

  const keyOf = (reference: string): string => truth.referrerOf.get(reference)?.key as string;

  const scenarios = [
    { name: 'the whole year', start: '2025-01-01', end: '2025-12-31' },
    { name: 'the second half-year (some referrers are new)', start: '2025-07-01', end: '2025-12-31' },
    {
      name: 'Q2 for Dr. Mary Jones, asked for through her duplicate record',
      start: '2025-04-01',
      end: '2025-06-30',
      subject: 'Practitioner/prac-jones-2',
    },
    {
      name: 'the second half-year for Lakeside Orthopedics (an organisation)',
      start: '2025-07-01',
      end: '2025-12-31',
      subject: 'Organization/org-lakeside-ortho',
    },
    { name: 'a partial month, 10 to 24 March', start: '2025-03-10', end: '2025-03-24' },
  ];

  it.each(scenarios)('$name: every MeasureReport equals the independent computation', async (scenario) => {
    const source = scenario.subject
      ? scenario.subject.startsWith('Organization/')
        ? orgKey(scenario.subject)
        : keyOf(scenario.subject)
      : undefined;
    const expected = expectedMeasures(dataset.resources, truth, scenario, plan, source);
    for (const measure of measures) {
      const res = await request(t.app)
        .get(`/fhir/Measure/${measure.id}/$evaluate-measure`)
        .query({
          periodStart: scenario.start,
          periodEnd: scenario.end,
          ...(scenario.subject ? { subject: scenario.subject } : {}),
        });
      expect(res.status, `${measure.id}: ${res.text.slice(0, 300)}`).toBe(200);
      const report = res.body as MeasureReport;
      expect(report).toMatchObject({
        resourceType: 'MeasureReport',
        status: 'complete',
        type: 'summary',
        measure: measure.url,
        period: { start: scenario.start, end: scenario.end },
        ...(scenario.subject ? { subject: { reference: scenario.subject } } : {}),
      });
      expect(project(report), measure.id as string).toEqual(expected[measure.id as string]);
      const issues = sharedValidator()
        .validate(report)
        .issues.filter((i) => i.severity === 'error');
      expect(issues, `${measure.id} is valid R4`).toEqual([]);
    }
  });

  function orgKey(reference: string): string {
    const org = dataset.resources.find((r) => `${r.resourceType}/${r.id}` === reference) as {
      identifier?: { system?: string; value?: string }[];
    };
    return `${org.identifier?.[0]?.system}|${org.identifier?.[0]?.value}`;
  }

  it('counts each referrer once however the referral names them', async () => {
    const res = await request(t.app)
      .get('/fhir/Measure/pt-referral-volume/$evaluate-measure')
      .query({ periodStart: '2025-01-01', periodEnd: '2025-12-31' });
    const strata = res.body.group[0].stratifier.find(
      (s: { code: { coding: { code: string }[] }[] }) => s.code[0]?.coding[0]?.code === 'referring-source',
    ).stratum as { value: { text: string; coding: { system: string; code: string }[] } }[];
    expect(strata).toHaveLength(20);
    const jones = strata.find(
      (s) => `${s.value.coding[0]?.system}|${s.value.coding[0]?.code}` === keyOf('Practitioner/prac-jones'),
    );
    // Two Practitioner records with one NPI and a PractitionerRole: one source, under its most used name.
    expect(jones?.value.text).toBe('Dr. Mary Jones');
    expect(strata.map((s) => s.value.coding[0]?.code)).toContain('amy chen');
    expect(strata.map((s) => s.value.text)).toContain('Dr. Thomas Müller');
  });

  it('keeps the Measure definitions and the outcome-measure catalog in step', () => {
    const groups = (id: string) =>
      measures.find((m) => m.id === id)?.group?.map((g) => g.code?.coding?.[0]?.code) ?? [];
    expect(groups('pt-outcome-change')).toEqual(OUTCOME_MEASURES.map((m) => `${m.id}-mean-change`));
    expect(groups('pt-outcome-mcid')).toEqual(
      OUTCOME_MEASURES.filter((m) => m.mcid).map((m) => `${m.id}-mcid`),
    );
  });

  it('exports one CSV row per referral, with the row count announced first', async () => {
    const res = await request(t.app)
      .get('/analytics/export.csv')
      .query({ periodStart: '2025-02-01', periodEnd: '2025-02-28' });
    expect(res.status).toBe(200);
    expect(res.headers['content-type']).toMatch(/^text\/csv/);
    const expected = dataset.resources.filter(
      (r) =>
        r.resourceType === 'ServiceRequest' &&
        (r as { authoredOn?: string }).authoredOn?.startsWith('2025-02'),
    ).length;
    expect(Number(res.headers['x-total-rows'])).toBe(expected);
    const lines = res.text.trim().split('\r\n');
    expect(lines).toHaveLength(expected + 1);
    expect(lines[0]).toMatch(/^referral,authored_on,referring_source,/);
  });

  it('answers the MeasureReport as CSV, one row per group and stratum', async () => {
    const res = await request(t.app)
      .get('/analytics/measures/pt-referral-triage.csv')
      .query({ periodStart: '2025-01-01', periodEnd: '2025-12-31' });
    expect(res.status).toBe(200);
    const rows = res.text.trim().split('\r\n');
    expect(rows[0]).toBe(
      'measure,period_start,period_end,subject,group,group_display,stratifier,stratum,stratum_code,initial_population,denominator,numerator,measure_population,score,unit',
    );
    const json = await request(t.app)
      .get('/fhir/Measure/pt-referral-triage/$evaluate-measure')
      .query({ periodStart: '2025-01-01', periodEnd: '2025-12-31' });
    const acceptance = json.body.group[0];
    expect(rows[1]).toBe(
      `https://ptreferral.dev/fhir/Measure/pt-referral-triage,2025-01-01,2025-12-31,,acceptance,Acceptance rate,,,,${acceptance.population[0].count},${acceptance.population[1].count},${acceptance.population[2].count},,${acceptance.measureScore.value},1`,
    );
  });

  it('refuses bad requests with an OperationOutcome', async () => {
    const missing = await request(t.app).get('/fhir/Measure/pt-referral-triage/$evaluate-measure');
    expect(missing.status).toBe(400);
    expect(missing.body.resourceType).toBe('OperationOutcome');
    const unknown = await request(t.app)
      .get('/fhir/Measure/nope/$evaluate-measure')
      .query({ periodStart: '2025-01-01', periodEnd: '2025-01-31' });
    expect(unknown.status).toBe(404);
    const patient = await request(t.app)
      .get('/fhir/Measure/pt-referral-triage/$evaluate-measure')
      .query({ periodStart: '2025-01-01', periodEnd: '2025-01-31', subject: 'Patient/pt-000001' });
    expect(patient.status).toBe(400);
    const absent = await request(t.app)
      .get('/fhir/Measure/pt-referral-triage/$evaluate-measure')
      .query({ periodStart: '2025-01-01', periodEnd: '2025-01-31', subject: 'Practitioner/nobody' });
    expect(absent.status).toBe(404);
    const reversed = await request(t.app)
      .get('/fhir/Measure/pt-referral-triage/$evaluate-measure')
      .query({ periodStart: '2025-02-01', periodEnd: '2025-01-01' });
    expect(reversed.status).toBe(400);
  });

  it('publishes the Measures and the feedback Questionnaire', async () => {
    const measure = await request(t.app).get('/fhir/Measure/pt-referral-conversion');
    expect(measure.status).toBe(200);
    expect(measure.body.url).toBe('https://ptreferral.dev/fhir/Measure/pt-referral-conversion');
    const questionnaire = await request(t.app).get('/fhir/Questionnaire/pt-referrer-feedback');
    expect(questionnaire.status).toBe(200);
    expect(questionnaire.body.item.map((i: { linkId: string }) => i.linkId)).toEqual([
      'communication',
      'outcomes',
      'comments',
    ]);
  });
});
