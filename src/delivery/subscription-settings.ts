import type { Subscription } from '@medplum/fhirtypes';
import { FhirError, type IssueInput } from '../fhir/errors.js';
import { REFERRAL_PROGRESS_TOPIC } from '../fhir/canonical-urls.js';
import { parseSearch } from '../fhir/search/parse-search.js';
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

export interface SubscriptionSettings {
  filters: SearchFilter[];
  endpoint: string;
  content: PayloadContent;
  headers: string[];
  secret?: string;
  heartbeatSeconds?: number;
  timeoutSeconds?: number;
}

function extension(
  subscription:
    | {
        extension?: {
          url: string;
          valueString?: string;
          valueCode?: string;
          valueUnsignedInt?: number;
          valuePositiveInt?: number;
        }[];
      }
    | undefined,
  url: string,
) {
  return subscription?.extension?.find((e) => e.url === url);
}

/** Reads and checks a Subscription's settings; every problem is reported at once (422). */
export function readSubscriptionSettings(subscription: Subscription): SubscriptionSettings {
  const problems: IssueInput[] = [];
  const problem = (message: string, expression: string): void => {
    problems.push({ code: 'business-rule', message, expression });
  };
  if (subscription.criteria !== REFERRAL_PROGRESS_TOPIC) {
    problem(`Subscription.criteria must be the topic ${REFERRAL_PROGRESS_TOPIC}`, 'Subscription.criteria');
  }
  const filterText = extension(primitiveElement(subscription, 'criteria'), EXT.filterCriteria)?.valueString;
  let filters: SearchFilter[] = [];
  if (!filterText) {
    problem(
      `A filter is required (extension ${EXT.filterCriteria} on Subscription.criteria), e.g. Communication?recipient=Practitioner/123`,
      'Subscription._criteria',
    );
  } else {
    const [type, query = ''] = filterText.split('?');
    const params = [...new URLSearchParams(query)];
    if (type !== TOPIC_RESOURCE || params.length === 0) {
      problem(
        `The filter must be a ${TOPIC_RESOURCE} search, e.g. Communication?recipient=Practitioner/123`,
        'Subscription._criteria',
      );
    } else if (params.some(([name]) => !ALLOWED_FILTERS.has(name.split(':')[0] as string))) {
      problem(`The filter may use only ${[...ALLOWED_FILTERS].join(', ')}`, 'Subscription._criteria');
    } else {
      try {
        filters = parseSearch(TOPIC_RESOURCE, params, { strict: true }).query.filters;
      } catch (err) {
        if (!(err instanceof FhirError)) throw err;
        problem(`The filter is not a valid search: ${err.message}`, 'Subscription._criteria');
      }
    }
  }
  const channel = subscription.channel;
  if (channel?.type !== 'rest-hook') {
    problem('Only the rest-hook channel is supported', 'Subscription.channel.type');
  }
  const endpoint = channel?.endpoint ?? '';
  if (!/^https?:\/\/[^\s]+$/.test(endpoint) || !URL.canParse(endpoint)) {
    problem('Subscription.channel.endpoint must be an http(s) URL', 'Subscription.channel.endpoint');
  }
  // A header fetch would refuse makes every attempt fail before sending: refuse it here instead.
  if ((channel?.header ?? []).some((header) => !isSendableHeader(header))) {
    problem(
      'Each Subscription.channel.header must be "Name: value" with a valid HTTP name and value',
      'Subscription.channel.header',
    );
  }
  if (channel?.payload && channel.payload !== 'application/fhir+json') {
    problem('Only application/fhir+json payloads are supported', 'Subscription.channel.payload');
  }
  const content = (extension(primitiveElement(channel, 'payload'), EXT.payloadContent)?.valueCode ??
    'id-only') as PayloadContent;
  if (!['empty', 'id-only', 'full-resource'].includes(content)) {
    problem('Payload content must be empty, id-only or full-resource', 'Subscription.channel._payload');
  }
  if (problems.length > 0) {
    throw new FhirError(problems[0] as IssueInput, problems.slice(1));
  }
  return {
    filters,
    endpoint,
    content,
    headers: channel?.header ?? [],
    secret: extension(subscription, EXT.signingSecret)?.valueString,
    heartbeatSeconds: extension(channel as never, EXT.heartbeatPeriod)?.valueUnsignedInt,
    timeoutSeconds: extension(channel as never, EXT.timeout)?.valueUnsignedInt,
  };
}

function isSendableHeader(header: string): boolean {
  const i = header.indexOf(':');
  if (i <= 0) return false;
  try {
    new Headers([[header.slice(0, i).trim(), header.slice(i + 1).trim()]]);
    return true;
  } catch {
    return false;
  }
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
