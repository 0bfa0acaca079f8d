import type { NotificationResult } from '../fhir-store.js';

/** The outbox keeps this much of a delivery error (a receiver's answer can be any size). */
const MAX_ERROR_LENGTH = 500;

export function errorText(error: string): string {
  return error.slice(0, MAX_ERROR_LENGTH);
}

/**
 * Which outbox update records a delivery attempt's result, and its parameters in the order each
 * dialect's statement binds them: the new values, then the notification id.
 */
export type NotificationUpdate =
  | { kind: 'delivered'; params: [deliveredMs: number, id: number] }
  | { kind: 'retry'; params: [nextAttemptMs: number, error: string, id: number] }
  | { kind: 'failed'; params: [error: string, id: number] };

export function notificationUpdate(id: number, result: NotificationResult): NotificationUpdate {
  switch (result.status) {
    case 'delivered':
      return { kind: 'delivered', params: [result.atMs, id] };
    case 'retry':
      return { kind: 'retry', params: [result.nextAttemptMs, errorText(result.error), id] };
    case 'failed':
      return { kind: 'failed', params: [errorText(result.error), id] };
  }
}
