import type { Resource } from '@medplum/fhirtypes';
import type { OutboxNotification, StoredVersion, SubscriptionEvent } from '../fhir-store.js';

/**
 * Database rows as both dialects select them, and their mapping to the store's types. Each
 * dialect's SQL names its columns so (PostgreSQL selects `content_text AS content`, the exact
 * JSON written, not the JSONB copy).
 */
export interface VersionRow {
  resource_type: string;
  id: string;
  version_id: number;
  last_updated: string;
  deleted: number;
  content: string | null;
}

export function toStoredVersion(row: VersionRow): StoredVersion {
  return {
    resourceType: row.resource_type,
    id: row.id,
    versionId: String(row.version_id),
    lastUpdated: row.last_updated,
    deleted: row.deleted === 1,
    resource: row.content ? parseContent(row.content) : undefined,
  };
}

export function parseContent(content: string): Resource {
  return JSON.parse(content) as Resource;
}

/** A stored versionId is a positive 32-bit integer; anything else names no version. */
const MAX_VERSION_ID = 2 ** 31 - 1;

export function parseVersionId(versionId: string): number | undefined {
  if (!/^\d{1,15}$/.test(versionId) || Number(versionId) > MAX_VERSION_ID) {
    return undefined;
  }
  return Number(versionId);
}

/** A leased notification joined with its event; `attempts` already counts the lease just taken. */
export interface OutboxRow {
  /** BIGINT on PostgreSQL, which node-postgres answers as a string. */
  id: number | string;
  subscription_id: string;
  event_number: number;
  attempts: number;
  created_ms: number;
  focus: string;
  occurred_at: string;
}

export function toOutboxNotification(row: OutboxRow): OutboxNotification {
  return {
    ...toSubscriptionEvent(row),
    id: Number(row.id),
    attempts: row.attempts,
    createdMs: row.created_ms,
  };
}

export interface EventRow {
  subscription_id: string;
  event_number: number;
  focus: string;
  occurred_at: string;
}

export function toSubscriptionEvent(row: EventRow): SubscriptionEvent {
  return {
    subscriptionId: row.subscription_id,
    eventNumber: row.event_number,
    focus: row.focus,
    occurredAt: row.occurred_at,
  };
}
