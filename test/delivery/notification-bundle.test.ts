import type {
  Bundle,
  Communication,
  Parameters,
  ParametersParameter,
  Subscription,
} from '@medplum/fhirtypes';
import { describe, expect, it } from 'vitest';
import { buildNotificationBundle, type NotificationInput } from '../../src/delivery/notification-bundle.js';
import {
  REFERRAL_PROGRESS_TOPIC,
  SUBSCRIPTION_STATUS_PROFILE,
} from '../../src/delivery/subscription-settings.js';
import type { SubscriptionEvent } from '../../src/store/fhir-store.js';

/**
 * Notification Bundles per the Subscriptions Backport IG (STU1.1, R4 form): a `history` Bundle
 * whose first entry is a SubscriptionStatus as Parameters, then the focus resources when the
 * payload is full-resource.
 */

const BASE = 'https://fhir.example.org/fhir';
const NOW = '2026-11-03T10:00:05.000Z';
const subscription: Subscription = {
  resourceType: 'Subscription',
  id: 'sub-1',
  status: 'active',
  reason: 'progress',
  criteria: REFERRAL_PROGRESS_TOPIC,
  channel: { type: 'rest-hook', endpoint: 'https://referrer.example.org/hook' },
};
const communication = (id: string, versionId = '1'): Communication => ({
  resourceType: 'Communication',
  id,
  meta: { versionId, lastUpdated: '2026-11-03T10:00:00.000Z' },
  status: 'completed',
  identifier: [{ system: 'https://ptreferral.dev/fhir/communication-id', value: id }],
});
const event = (eventNumber: number, id: string, versionId = '1'): SubscriptionEvent => ({
  subscriptionId: 'sub-1',
  eventNumber,
  focus: `Communication/${id}/_history/${versionId}`,
  occurredAt: `2026-11-03T10:00:0${eventNumber}.000Z`,
});

function build(overrides: Partial<NotificationInput> = {}): Bundle {
  return buildNotificationBundle({
    baseUrl: BASE,
    subscription,
    type: 'event-notification',
    eventCount: 1,
    events: [{ event: event(1, 'c1'), resource: communication('c1') }],
    content: 'full-resource',
    now: NOW,
    ...overrides,
  });
}

function statusOf(bundle: Bundle): Parameters {
  const status = bundle.entry?.[0]?.resource as Parameters;
  expect(status.resourceType).toBe('Parameters');
  return status;
}

function params(bundle: Bundle, name: string): ParametersParameter[] {
  return statusOf(bundle).parameter?.filter((p) => p.name === name) ?? [];
}

function part(parameter: ParametersParameter | undefined, name: string): ParametersParameter | undefined {
  return parameter?.part?.find((p) => p.name === name);
}

describe('notification Bundle', () => {
  it('is a history Bundle with an id and a timestamp', () => {
    const bundle = build({ id: 'fixed-id' });
    expect(bundle).toMatchObject({ resourceType: 'Bundle', id: 'fixed-id', type: 'history', timestamp: NOW });
    expect(build().id).toMatch(/^[0-9a-f-]{36}$/);
    expect(build().id).not.toBe(build().id);
  });

  it('starts with a SubscriptionStatus (Parameters, backport-subscription-status-r4)', () => {
    const bundle = build();
    const first = bundle.entry?.[0];
    expect(first?.fullUrl).toMatch(/^urn:uuid:[0-9a-f-]{36}$/);
    expect(first?.request).toEqual({ method: 'GET', url: `${BASE}/Subscription/sub-1/$status` });
    expect(first?.response).toEqual({ status: '200' });
    expect(statusOf(bundle).meta?.profile).toEqual([SUBSCRIPTION_STATUS_PROFILE]);
  });

  it('the status carries subscription, topic, status, type and events-since-subscription-start', () => {
    const bundle = build({
      eventCount: 7,
      events: [{ event: event(7, 'c7'), resource: communication('c7') }],
    });
    const names = statusOf(bundle).parameter?.map((p) => p.name);
    expect(names).toEqual([
      'subscription',
      'topic',
      'status',
      'type',
      'events-since-subscription-start',
      'notification-event',
    ]);
    expect(params(bundle, 'subscription')[0]?.valueReference).toEqual({
      reference: `${BASE}/Subscription/sub-1`,
    });
    expect(params(bundle, 'topic')[0]?.valueCanonical).toBe(REFERRAL_PROGRESS_TOPIC);
    expect(params(bundle, 'status')[0]?.valueCode).toBe('active');
    expect(params(bundle, 'type')[0]?.valueCode).toBe('event-notification');
    // R4 has no integer64: the IG carries event counts and numbers as strings.
    expect(params(bundle, 'events-since-subscription-start')[0]?.valueString).toBe('7');
  });

  it('a notification-event names the event number, its timestamp and the focus', () => {
    const bundle = build({
      eventCount: 3,
      events: [{ event: event(3, 'c3'), resource: communication('c3') }],
    });
    const [notificationEvent] = params(bundle, 'notification-event');
    expect(part(notificationEvent, 'event-number')?.valueString).toBe('3');
    expect(part(notificationEvent, 'timestamp')?.valueInstant).toBe('2026-11-03T10:00:03.000Z');
    // The focus is the resource's URL (not the version), absolute on the base.
    expect(part(notificationEvent, 'focus')?.valueReference).toEqual({
      reference: `${BASE}/Communication/c3`,
    });
  });

  it('full-resource adds each focus resource as an entry after the status', () => {
    const bundle = build({
      eventCount: 2,
      events: [
        { event: event(1, 'c1'), resource: communication('c1') },
        { event: event(2, 'c2', '2'), resource: communication('c2', '2') },
      ],
    });
    expect(bundle.entry).toHaveLength(3);
    expect(bundle.entry?.[1]).toEqual({
      fullUrl: `${BASE}/Communication/c1`,
      resource: communication('c1'),
      request: { method: 'POST', url: 'Communication' },
      response: { status: '201' },
    });
    // A later version is announced as an update.
    expect(bundle.entry?.[2]).toMatchObject({
      fullUrl: `${BASE}/Communication/c2`,
      request: { method: 'PUT', url: 'Communication/c2' },
      response: { status: '200' },
    });
    expect(params(bundle, 'notification-event').map((p) => part(p, 'event-number')?.valueString)).toEqual([
      '1',
      '2',
    ]);
  });

  it('full-resource leaves out a focus that could not be read, but still announces its event', () => {
    const bundle = build({ events: [{ event: event(1, 'gone') }] });
    expect(bundle.entry).toHaveLength(1);
    expect(params(bundle, 'notification-event')).toHaveLength(1);
  });

  it('id-only names the focus but carries no resource', () => {
    const bundle = build({ content: 'id-only' });
    expect(bundle.entry).toHaveLength(1);
    const [notificationEvent] = params(bundle, 'notification-event');
    expect(part(notificationEvent, 'focus')?.valueReference?.reference).toBe(`${BASE}/Communication/c1`);
  });

  it('empty omits the focus and every resource', () => {
    const bundle = build({ content: 'empty' });
    expect(bundle.entry).toHaveLength(1);
    const [notificationEvent] = params(bundle, 'notification-event');
    expect(notificationEvent?.part?.map((p) => p.name)).toEqual(['event-number', 'timestamp']);
    expect(JSON.stringify(bundle)).not.toContain('Communication/c1');
  });

  it('a heartbeat or query-status has no notification-event', () => {
    for (const type of ['heartbeat', 'query-status', 'handshake'] as const) {
      const bundle = build({ type, eventCount: 12, events: [] });
      expect(params(bundle, 'type')[0]?.valueCode).toBe(type);
      expect(params(bundle, 'notification-event')).toEqual([]);
      expect(params(bundle, 'events-since-subscription-start')[0]?.valueString).toBe('12');
      expect(bundle.entry).toHaveLength(1);
    }
  });

  it('a subscription in error reports its status and the error', () => {
    const bundle = build({
      subscription: { ...subscription, status: 'error', error: 'Delivery stopped: HTTP 410' },
      type: 'query-status',
      events: [],
    });
    expect(params(bundle, 'status')[0]?.valueCode).toBe('error');
    expect(params(bundle, 'error')[0]?.valueCodeableConcept).toEqual({ text: 'Delivery stopped: HTTP 410' });
  });

  it('is plain JSON: it survives a round trip unchanged', () => {
    const bundle = build();
    expect(JSON.parse(JSON.stringify(bundle))).toEqual(bundle);
  });
});
