import { randomUUID } from 'node:crypto';
import type {
  Bundle,
  BundleEntry,
  Parameters,
  ParametersParameter,
  Resource,
  Subscription,
} from '@medplum/fhirtypes';
import type { SubscriptionEvent } from '../store/fhir-store.js';
import {
  REFERRAL_PROGRESS_TOPIC,
  SUBSCRIPTION_STATUS_PROFILE,
  type PayloadContent,
} from './subscription-settings.js';

/**
 * Notification Bundles of the Subscriptions Backport IG for R4: a `history` Bundle whose first
 * entry is the SubscriptionStatus (as Parameters, the R4 form), followed by the focus resources
 * when the payload is full-resource. The same builder answers `$status` and `$events`, so a
 * receiver sees one shape whether it is pushed to or asks.
 * See: https://hl7.org/fhir/uv/subscriptions-backport/STU1.1/notifications.html
 */
export type NotificationType =
  'event-notification' | 'heartbeat' | 'handshake' | 'query-event' | 'query-status';

export interface NotificationInput {
  baseUrl: string;
  subscription: Subscription;
  type: NotificationType;
  /** Events since the subscription started, as `events-since-subscription-start`. */
  eventCount: number;
  events: { event: SubscriptionEvent; resource?: Resource }[];
  content: PayloadContent;
  now: string;
  id?: string;
}

export function buildNotificationBundle(input: NotificationInput): Bundle {
  const { baseUrl, subscription } = input;
  const subscriptionUrl = `${baseUrl}/Subscription/${subscription.id}`;
  const status: Parameters = {
    resourceType: 'Parameters',
    meta: { profile: [SUBSCRIPTION_STATUS_PROFILE] },
    parameter: [
      { name: 'subscription', valueReference: { reference: subscriptionUrl } },
      { name: 'topic', valueCanonical: REFERRAL_PROGRESS_TOPIC },
      { name: 'status', valueCode: subscription.status },
      { name: 'type', valueCode: input.type },
      // R4 has no integer64: the IG carries event numbers as strings.
      { name: 'events-since-subscription-start', valueString: String(input.eventCount) },
      ...input.events.map(({ event }) => notificationEvent(baseUrl, event, input.content)),
      ...(subscription.error ? [{ name: 'error', valueCodeableConcept: { text: subscription.error } }] : []),
    ],
  };
  const entries: BundleEntry[] = [
    {
      fullUrl: `urn:uuid:${randomUUID()}`,
      resource: status,
      request: { method: 'GET', url: `${subscriptionUrl}/$status` },
      response: { status: '200' },
    },
  ];
  if (input.content === 'full-resource') {
    for (const { event, resource } of input.events) {
      if (!resource) continue;
      const [type, id] = event.focus.split('/');
      entries.push({
        fullUrl: `${baseUrl}/${type}/${id}`,
        resource,
        request: {
          method: resource.meta?.versionId === '1' ? 'POST' : 'PUT',
          url: resource.meta?.versionId === '1' ? `${type}` : `${type}/${id}`,
        },
        response: { status: resource.meta?.versionId === '1' ? '201' : '200' },
      });
    }
  }
  return {
    resourceType: 'Bundle',
    id: input.id ?? randomUUID(),
    type: 'history',
    timestamp: input.now,
    entry: entries,
  };
}

function notificationEvent(
  baseUrl: string,
  event: SubscriptionEvent,
  content: PayloadContent,
): ParametersParameter {
  const [type, id] = event.focus.split('/');
  return {
    name: 'notification-event',
    part: [
      { name: 'event-number', valueString: String(event.eventNumber) },
      { name: 'timestamp', valueInstant: event.occurredAt },
      ...(content === 'empty'
        ? []
        : [{ name: 'focus', valueReference: { reference: `${baseUrl}/${type}/${id}` } }]),
    ],
  };
}
