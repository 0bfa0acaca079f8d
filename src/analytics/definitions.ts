import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Measure, Questionnaire } from '@medplum/fhirtypes';
import { GROUPS, STRATIFIERS } from './measures/index.js';

/**
 * The Measures and the feedback Questionnaire the service publishes: profiles/Measure-*.json and
 * profiles/Questionnaire-*.json, read once. Every group and stratifier code a Measure names must
 * have a computation (measures/index.ts); a mismatch fails at load rather than at evaluation.
 */
export const DEFINITIONS_DIR = new URL('../../profiles/', import.meta.url).pathname;

export interface AnalyticsDefinitions {
  measures: Map<string, Measure>;
  questionnaires: Map<string, Questionnaire>;
}

let cached: AnalyticsDefinitions | undefined;

export function analyticsDefinitions(dir = DEFINITIONS_DIR): AnalyticsDefinitions {
  if (dir === DEFINITIONS_DIR && cached) return cached;
  const measures = new Map<string, Measure>();
  const questionnaires = new Map<string, Questionnaire>();
  for (const file of readdirSync(dir).sort()) {
    if (/^Measure-.*\.json$/.test(file)) {
      const measure = JSON.parse(readFileSync(join(dir, file), 'utf8')) as Measure;
      checkMeasure(measure, file);
      measures.set(measure.id as string, measure);
    } else if (/^Questionnaire-.*\.json$/.test(file)) {
      const questionnaire = JSON.parse(readFileSync(join(dir, file), 'utf8')) as Questionnaire;
      questionnaires.set(questionnaire.id as string, questionnaire);
    }
  }
  const result = { measures, questionnaires };
  if (dir === DEFINITIONS_DIR) cached = result;
  return result;
}

export function groupCode(group: { code?: { coding?: { code?: string }[] } }): string | undefined {
  return group.code?.coding?.[0]?.code;
}

function checkMeasure(measure: Measure, file: string): void {
  if (measure.resourceType !== 'Measure' || !measure.id || !measure.url) {
    throw new Error(`${file} is not a Measure with an id and a url`);
  }
  for (const group of measure.group ?? []) {
    const code = groupCode(group);
    if (!code || !GROUPS[code]) throw new Error(`${file}: group '${code}' has no computation`);
    for (const stratifier of group.stratifier ?? []) {
      const s = groupCode(stratifier);
      if (!s || !STRATIFIERS[s]) throw new Error(`${file}: stratifier '${s}' has no computation`);
    }
  }
}
