import type { Subscription } from '@medplum/fhirtypes';
import { FhirError, type IssueInput } from '../fhir/errors.js';
import { REFERRAL_PROGRESS_TOPIC } from '../fhir/canonical-urls.js';
import { parseSearch } from '../fhir/search/parse-search.js';
import { headerName, headerProblem, MAX_CHANNEL_HEADERS } from './channel-headers.js';
import type { SearchFilter } from '../fhir/search/search-query.js';

/**
 * Topic-based subscriptions as the Subscriptions R5 Backport IG defines them for R4
 * (https://hl7.org/fhir/uv/subscriptions-backport/STU1.1/): `Subscription.criteria` is the topic's
 * canonical URL, the filter travels in an extension, and so do the payload content, heartbeat and
 * timeout. This service publishes one topic: the progress Communications to referrers.
 */
export const BACKPORT = 'http://hl7.org/fhir/uv/subscriptions-backport/StructureDefinition';
export const EXT = {
  filterCriteria: `${BACKPORT}/backport-filter-criteria`,
  payloadContent: `${BACKPORT}/backport-payload-content`,
  heartbeatPeriod: `${BACKPORT}/backport-heartbeat-period`,
  timeout: `${BACKPORT}/backport-timeout`,
  maxCount: `${BACKPORT}/backport-max-count`,
  /** The service's own: the shared secret the receiver uses to verify each notification's HMAC. */
  signingSecret: 'https://ptreferral.dev/fhir/StructureDefinition/subscription-signing-secret',
} as const;
export const SUBSCRIPTION_STATUS_PROFILE = `${BACKPORT}/backport-subscription-status-r4`;
export const BACKPORT_SUBSCRIPTION_PROFILE = `${BACKPORT}/backport-subscription`;

export { REFERRAL_PROGRESS_TOPIC };
/** The topic fires when a Communication is created; filters are Communication search parameters. */
export const TOPIC_RESOURCE = 'Communication';
const ALLOWED_FILTERS = new Set([
  'recipient',
  'category',
  'subject',
  'based-on',
  'sender',
  'patient',
  'identifier',
]);

export type PayloadContent = 'empty' | 'id-only' | 'full-resource';

/**
 * The longest a receiver may take to answer one notification (`backport-timeout`, seconds). A
 * larger value is refused: one attempt holds a delivery slot for at most this long.
 */
export const MAX_TIMEOUT_SECONDS = 30;
/** The shortest `backport-heartbeat-period` accepted (seconds): a heartbeat is a liveness hint, not a poll. */
export const MIN_HEARTBEAT_SECONDS = 60;

/**
 * A Subscription as the server reads it — once, by `readSubscriptionSettings` — for every
 * decision: who may own it (subscription-ownership.ts), which Communications it matches and how
 * it is found for them (announce-communication.ts, subscription-index.ts), where and how it is
 * delivered (delivery-worker.ts).
 */
export interface SubscriptionSettings {
  filters: SearchFilter[];
  /**
   * The values of the filter's `recipient` parameters, as `Type/id` (or the literal reference,
   * or `?/id` for a bare id), in order; empty when the filter has no recipient.
   */
  recipients: string[];
  /**
   * Index keys that every matching Communication's recipients must include one of (the first
   * recipient parameter's values); `undefined` when the filter does not restrict recipients so.
   */
  recipientKeys?: string[];
  endpoint: string;
  content: PayloadContent;
  headers: string[];
  secret?: string;
  heartbeatSeconds?: number;
  timeoutSeconds?: number;
}

interface Extended {
  extension?: {
    url: string;
    valueString?: string;
    valueCode?: string;
    valueUnsignedInt?: number;
    valuePositiveInt?: number;
  }[];
}

/** Every extension of `owner` with `url` (several of one are ambiguous: refused). */
function extensions(owner: Extended | undefined, url: string) {
  return (owner?.extension ?? []).filter((e) => e.url === url);
}

/** Whether the Subscription says it is topic-based (Backport IG), whatever its `criteria` says. */
export function isTopicBased(subscription: Subscription): boolean {
  if (subscription.criteria === REFERRAL_PROGRESS_TOPIC) return true;
  if ((subscription.meta?.profile ?? []).includes(BACKPORT_SUBSCRIPTION_PROFILE)) return true;
  const backport = (owner: unknown): boolean =>
    ((owner as Extended | undefined)?.extension ?? []).some((e) => e.url.startsWith(`${BACKPORT}/`));
  const channel = subscription.channel as unknown as Record<string, unknown> | undefined;
  return (
    backport(subscription) ||
    backport(primitiveElement(subscription, 'criteria')) ||
    backport(channel) ||
    backport(primitiveElement(channel, 'payload'))
  );
}

const memo = new WeakMap<object, SubscriptionSettings | FhirError>();

/**
 * Reads and checks a Subscription's settings; every problem is reported at once (422). Anything
 * the server could read two ways is refused rather than guessed: several filters (or payload
 * contents, timeouts, heartbeats, secrets), a filter outside `Subscription._criteria`, a
 * `criteria` other than the topic on a Subscription that is otherwise topic-based, parameters or
 * text the filter grammar does not hold. The result is remembered per resource object, so the
 * handlers of one write decide on the same value.
 */
export function readSubscriptionSettings(subscription: Subscription): SubscriptionSettings {
  const known = memo.get(subscription);
  if (known instanceof FhirError) throw known;
  if (known) return known;
  try {
    const settings = parseSettings(subscription);
    memo.set(subscription, settings);
    return settings;
  } catch (err) {
    if (err instanceof FhirError) memo.set(subscription, err);
    throw err;
  }
}

function parseSettings(subscription: Subscription): SubscriptionSettings {
  const problems: IssueInput[] = [];
  const problem = (message: string, expression: string): void => {
    problems.push({ code: 'business-rule', message, expression });
  };
  if (subscription.criteria !== REFERRAL_PROGRESS_TOPIC) {
    problem(`Subscription.criteria must be the topic ${REFERRAL_PROGRESS_TOPIC}`, 'Subscription.criteria');
  }
  const channel = subscription.channel;
  const channelElement = channel as unknown as Extended | undefined;
  const payloadElement = primitiveElement(channel, 'payload') as Extended | undefined;
  const criteriaElement = primitiveElement(subscription, 'criteria') as Extended | undefined;
  // The Backport IG puts the filter on `_criteria` only; one found anywhere else is a second reading.
  for (const [owner, where] of [
    [subscription as Extended, 'Subscription.extension'],
    [channelElement, 'Subscription.channel.extension'],
    [payloadElement, 'Subscription.channel._payload.extension'],
  ] as const) {
    if (extensions(owner, EXT.filterCriteria).length > 0) {
      problem(`The filter (${EXT.filterCriteria}) belongs on Subscription._criteria only`, where);
    }
  }
  const single = (owner: Extended | undefined, url: string, where: string) => {
    const found = extensions(owner, url);
    if (found.length > 1) problem(`Only one ${url} extension is allowed`, where);
    return found.length === 1 ? found[0] : undefined;
  };
  const filterText = single(criteriaElement, EXT.filterCriteria, 'Subscription._criteria')?.valueString;
  let filters: SearchFilter[] = [];
  if (!filterText) {
    problem(
      `A filter is required (extension ${EXT.filterCriteria} on Subscription.criteria), e.g. Communication?recipient=Practitioner/123`,
      'Subscription._criteria',
    );
  } else {
    const [type, query = '', ...rest] = filterText.split('?');
    const params = [...new URLSearchParams(query)];
    if (type !== TOPIC_RESOURCE || params.length === 0 || rest.length > 0 || /[#\s]/.test(filterText)) {
      problem(
        `The filter must be one ${TOPIC_RESOURCE} search, e.g. Communication?recipient=Practitioner/123`,
        'Subscription._criteria',
      );
    } else if (params.some(([name]) => !ALLOWED_FILTERS.has(name.split(':')[0] as string))) {
      problem(`The filter may use only ${[...ALLOWED_FILTERS].join(', ')}`, 'Subscription._criteria');
    } else {
      try {
        const parsed = parseSearch(TOPIC_RESOURCE, params, { strict: true });
        filters = parsed.query.filters;
        // Anything parseSearch set aside (a control parameter, a sort) is not part of a filter.
        if (filters.length !== params.length) {
          problem('The filter may hold only search parameters', 'Subscription._criteria');
        }
      } catch (err) {
        if (!(err instanceof FhirError)) throw err;
        problem(`The filter is not a valid search: ${err.message}`, 'Subscription._criteria');
      }
    }
  }
  if (channel?.type !== 'rest-hook') {
    problem('Only the rest-hook channel is supported', 'Subscription.channel.type');
  }
  const endpoint = channel?.endpoint ?? '';
  if (!/^https?:\/\/[^\s]+$/.test(endpoint) || !URL.canParse(endpoint)) {
    problem('Subscription.channel.endpoint must be an http(s) URL', 'Subscription.channel.endpoint');
  }
  const headers = channel?.header ?? [];
  // A header fetch would refuse makes every attempt fail before sending: refuse it here instead.
  const headerProblems = headers.map(headerProblem).filter((p) => p !== undefined);
  if (headerProblems.length > 0) {
    problem(`Each Subscription.channel.header ${headerProblems[0]}`, 'Subscription.channel.header');
  }
  const names = headers.map(headerName);
  if (headers.length > MAX_CHANNEL_HEADERS || new Set(names).size !== names.length) {
    problem(
      `Subscription.channel.header holds at most ${MAX_CHANNEL_HEADERS} headers, each name once`,
      'Subscription.channel.header',
    );
  }
  if (channel?.payload && channel.payload !== 'application/fhir+json') {
    problem('Only application/fhir+json payloads are supported', 'Subscription.channel.payload');
  }
  const content = (single(payloadElement, EXT.payloadContent, 'Subscription.channel._payload')?.valueCode ??
    'id-only') as PayloadContent;
  if (!['empty', 'id-only', 'full-resource'].includes(content)) {
    problem('Payload content must be empty, id-only or full-resource', 'Subscription.channel._payload');
  }
  const timeoutSeconds = single(
    channelElement,
    EXT.timeout,
    'Subscription.channel.extension',
  )?.valueUnsignedInt;
  if (
    timeoutSeconds !== undefined &&
    !(Number.isInteger(timeoutSeconds) && timeoutSeconds >= 1 && timeoutSeconds <= MAX_TIMEOUT_SECONDS)
  ) {
    problem(`backport-timeout must be 1 to ${MAX_TIMEOUT_SECONDS} seconds`, 'Subscription.channel.extension');
  }
  const heartbeatSeconds = single(
    channelElement,
    EXT.heartbeatPeriod,
    'Subscription.channel.extension',
  )?.valueUnsignedInt;
  if (
    heartbeatSeconds !== undefined &&
    !(Number.isInteger(heartbeatSeconds) && heartbeatSeconds >= MIN_HEARTBEAT_SECONDS)
  ) {
    problem(
      `backport-heartbeat-period must be at least ${MIN_HEARTBEAT_SECONDS} seconds`,
      'Subscription.channel.extension',
    );
  }
  const secret = single(subscription as Extended, EXT.signingSecret, 'Subscription.extension')?.valueString;
  if (problems.length > 0) {
    throw new FhirError(problems[0] as IssueInput, problems.slice(1));
  }
  const recipientFilters = filters.filter((f) => f.kind === 'reference' && f.code === 'recipient');
  const keysOf = (f: SearchFilter): string[] =>
    f.kind === 'reference'
      ? f.values.map(
          (v) => v.reference ?? (v.targetType ? `${v.targetType}/${v.targetId}` : `?/${v.targetId}`),
        )
      : [];
  const firstKeys = recipientFilters[0] ? keysOf(recipientFilters[0]) : undefined;
  return {
    filters,
    recipients: recipientFilters.flatMap(keysOf),
    // A bare id matches that id under any type: no key names every such recipient.
    recipientKeys: firstKeys?.some((k) => k.startsWith('?/')) ? undefined : firstKeys,
    endpoint,
    content,
    headers,
    ...(secret !== undefined ? { secret } : {}),
    ...(heartbeatSeconds !== undefined ? { heartbeatSeconds } : {}),
    ...(timeoutSeconds !== undefined ? { timeoutSeconds } : {}),
  };
}

export function tryReadSettings(subscription: Subscription): SubscriptionSettings | undefined {
  try {
    return readSubscriptionSettings(subscription);
  } catch {
    return undefined;
  }
}

/** The `_element` sibling that carries a primitive's extensions (https://hl7.org/fhir/R4/json.html#primitive). */
function primitiveElement(owner: object | undefined, name: string): never {
  return (owner as Record<string, unknown> | undefined)?.[`_${name}`] as never;
}
