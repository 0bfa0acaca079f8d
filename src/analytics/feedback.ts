import type { QuestionnaireResponse, QuestionnaireResponseItem } from '@medplum/fhirtypes';
import { instantMs } from './period.js';
import { resolveReferrer, type ReferrerDirectory, type ReferrerIdentity } from './referrer.js';

/**
 * Referrer feedback: answers to the Questionnaire the service publishes
 * (profiles/Questionnaire-pt-referrer-feedback.json). Only completed or amended responses count;
 * the referrer is the response's author (else its source), normalised like a referral's requester.
 */
export const FEEDBACK_QUESTIONNAIRE = 'https://ptreferral.dev/fhir/Questionnaire/pt-referrer-feedback';
export const FEEDBACK_ITEMS = {
  communication: 'communication',
  outcomes: 'outcomes',
  comments: 'comments',
} as const;

export interface FeedbackFact {
  id: string;
  authoredMs: number;
  referrer: ReferrerIdentity;
  /** 1 (very dissatisfied) … 5 (very satisfied). */
  communication?: number;
  outcomes?: number;
  comment?: string;
}

export function isFeedbackResponse(response: QuestionnaireResponse): boolean {
  return (
    response.questionnaire?.split('|')[0] === FEEDBACK_QUESTIONNAIRE &&
    (response.status === 'completed' || response.status === 'amended')
  );
}

export function feedbackFacts(
  responses: QuestionnaireResponse[],
  directory: ReferrerDirectory,
): FeedbackFact[] {
  const out: FeedbackFact[] = [];
  for (const response of responses) {
    const authoredMs = instantMs(response.authored);
    if (!response.id || authoredMs === undefined || !isFeedbackResponse(response)) continue;
    const items = flatten(response.item ?? []);
    const communication = score(items.get(FEEDBACK_ITEMS.communication));
    const outcomes = score(items.get(FEEDBACK_ITEMS.outcomes));
    const comment = items.get(FEEDBACK_ITEMS.comments)?.answer?.[0]?.valueString?.trim();
    out.push({
      id: response.id,
      authoredMs,
      referrer: resolveReferrer(response.author ?? response.source, directory),
      ...(communication !== undefined ? { communication } : {}),
      ...(outcomes !== undefined ? { outcomes } : {}),
      ...(comment ? { comment } : {}),
    });
  }
  return out;
}

function flatten(items: QuestionnaireResponseItem[]): Map<string, QuestionnaireResponseItem> {
  const map = new Map<string, QuestionnaireResponseItem>();
  const walk = (list: QuestionnaireResponseItem[]): void => {
    for (const item of list) {
      if (!map.has(item.linkId)) map.set(item.linkId, item);
      walk(item.item ?? []);
    }
  };
  walk(items);
  return map;
}

/** A 1-5 rating, answered as an integer or as a coding whose code is the number. */
function score(item: QuestionnaireResponseItem | undefined): number | undefined {
  const answer = item?.answer?.[0];
  const value =
    answer?.valueInteger ?? (answer?.valueCoding?.code ? Number(answer.valueCoding.code) : undefined);
  return value !== undefined && Number.isInteger(value) && value >= 1 && value <= 5 ? value : undefined;
}
