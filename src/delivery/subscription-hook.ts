import type { Subscription } from '@medplum/fhirtypes';
import { matchesFilters } from '../fhir/search/match-index.js';
import { findAll } from '../rest/internal-write.js';
import type { WriteContext, WriteHook } from '../rest/write-context.js';
import type { StoredVersion } from '../store/fhir-store.js';
import {
  readSubscriptionSettings,
  REFERRAL_PROGRESS_TOPIC,
  TOPIC_RESOURCE,
  tryReadSettings,
} from './subscription-settings.js';

/** Set in a transaction's state when it queued notifications, so the worker is woken after commit. */
export const NOTIFICATIONS_QUEUED = 'delivery.queued';

/**
 * Subscriptions as write hooks:
 * - a Subscription is checked against what this server supports before it is stored, and a
 *   `requested` one is activated (https://hl7.org/fhir/R4/subscription.html#lifecycle);
 * - a new Communication that matches an active Subscription's filter gets an event and an
 *   outbox notification in the same transaction — the notification exists if and only if the
 *   Communication does, which is what makes a crash lose nothing.
 */
export function subscriptionHook(): WriteHook {
  return {
    async beforeWrite(_ctx, change) {
      if (change.resource.resourceType !== 'Subscription') return undefined;
      const subscription = change.resource as Subscription;
      if (subscription.criteria !== REFERRAL_PROGRESS_TOPIC) {
        // A classic R4 query-criteria Subscription: stored as sent, but never set up (it stays
        // `requested`): this server delivers only its topic-based progress notifications.
        return undefined;
      }
      readSubscriptionSettings(subscription);
      if (subscription.status === 'requested') {
        return { ...subscription, status: 'active' } as Subscription;
      }
      return undefined;
    },

    async afterWrite(ctx, written, previous) {
      if (!previous || previous.deleted) {
        await announceToSubscribers(ctx, written);
      }
    },
  };
}

/**
 * Queues an event for every active Subscription whose filter matches a newly created topic
 * resource. Also called by server-side writes (the progress Communications), which bypass hooks.
 */
export async function announceToSubscribers(ctx: WriteContext, written: StoredVersion): Promise<void> {
  if (written.resourceType !== TOPIC_RESOURCE || written.deleted || !written.resource) {
    return;
  }
  const subscriptions = await findAll<Subscription>(
    ctx,
    'Subscription',
    `status=active&criteria:exact=${encodeURIComponent(REFERRAL_PROGRESS_TOPIC)}`,
    1000,
  );
  for (const subscription of subscriptions) {
    const settings = tryReadSettings(subscription);
    if (settings && matchesFilters(written.resource, settings.filters)) {
      await ctx.tx.appendSubscriptionEvent(
        subscription.id as string,
        `${written.resourceType}/${written.id}/_history/${written.versionId}`,
        written.lastUpdated,
      );
      markQueued(ctx);
    }
  }
}

function markQueued(ctx: WriteContext): void {
  ctx.state.set(NOTIFICATIONS_QUEUED, true);
}
