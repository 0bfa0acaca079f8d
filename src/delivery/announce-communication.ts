import type { WriteHandler } from '../rest/unit-of-work.js';
import { candidateSubscriptions } from './subscription-index.js';
import { TOPIC_RESOURCE, tryReadSettings } from './subscription-settings.js';
import { matchesFilters } from '../fhir/search/match-index.js';

/**
 * A new Communication that matches an active Subscription's filter gets an event and an outbox
 * notification in the same transaction — the notification exists if and only if the
 * Communication does, which is what makes a crash lose nothing. It runs because a Communication
 * was written by the practice's side (the workflow, `$progress-report`, a practice or admin
 * client); after commit the delivery worker is woken once.
 *
 * The topic is the practice's progress updates to referrers: a Communication a referrer client
 * wrote is never announced as one, whatever it names as sender (the signed notification would
 * otherwise speak for the practice). Candidates come from the Subscriptions' recipient index
 * (subscription-index.ts), every one of them, and each is decided on its one reading.
 */
export function announceCommunication(wake?: () => void): WriteHandler {
  return {
    name: 'delivery.announce-communication',
    phase: 'after-store',
    order: 100,
    types: [TOPIC_RESOURCE],
    actions: ['create'],
    async run(uow, change) {
      const written = change.written;
      if (!written?.resource) return;
      if (change.origin === 'client' && uow.auth?.role === 'referrer') return;
      for (const subscription of await candidateSubscriptions(uow, written.resource)) {
        const settings = tryReadSettings(subscription);
        if (settings && matchesFilters(written.resource, settings.filters)) {
          await uow.system.appendSubscriptionEvent(
            subscription.id as string,
            `${written.resourceType}/${written.id}/_history/${written.versionId}`,
            written.lastUpdated,
          );
          if (wake) uow.defer('after-commit', wake, { key: 'delivery.wake-worker' });
        }
      }
    },
  };
}
