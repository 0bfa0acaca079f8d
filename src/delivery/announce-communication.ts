import type { Subscription } from '@medplum/fhirtypes';
import { matchesFilters } from '../fhir/search/match-index.js';
import { findAll } from '../rest/internal-write.js';
import type { WriteHandler } from '../rest/unit-of-work.js';
import { REFERRAL_PROGRESS_TOPIC, TOPIC_RESOURCE, tryReadSettings } from './subscription-settings.js';

/**
 * A new Communication that matches an active Subscription's filter gets an event and an outbox
 * notification in the same transaction — the notification exists if and only if the
 * Communication does, which is what makes a crash lose nothing. It runs because a Communication
 * was written, whoever wrote it (a client, the workflow, `$progress-report`); after commit the
 * delivery worker is woken once.
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
      const subscriptions = await findAll<Subscription>(
        uow,
        'Subscription',
        `status=active&criteria:exact=${encodeURIComponent(REFERRAL_PROGRESS_TOPIC)}`,
        1000,
      );
      for (const subscription of subscriptions) {
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
