import type { AuditEvent } from '@medplum/fhirtypes';

/**
 * Failed authentications are audited per address, status and window, not per request: a flood of
 * bad tokens must not become a flood of rows (issue 11, item 10). The first failure of a window is
 * kept as the window's event; later ones only count. When the window closes the event is written
 * with `period` (first to last attempt, https://hl7.org/fhir/R4/auditevent-definitions.html#AuditEvent.period)
 * and the count as an entity detail `failed-attempts`. At most `capacity` windows are open; past
 * it, they are all closed early (written), so memory stays bounded and nothing is lost.
 */
export const FAILED_ATTEMPTS_DETAIL = 'failed-attempts';

interface OpenWindow {
  event: AuditEvent;
  count: number;
  first: string;
  last: string;
}

export class CoalescedFailures {
  private readonly open = new Map<string, OpenWindow>();

  constructor(private readonly capacity = 10_000) {}

  get size(): number {
    return this.open.size;
  }

  /** Counts `event` into its key's window; true when the caller should close the windows now. */
  add(key: string, event: AuditEvent): boolean {
    const at = event.recorded;
    const window = this.open.get(key);
    if (window) {
      window.count += 1;
      window.last = at;
    } else {
      this.open.set(key, { event, count: 1, first: at, last: at });
    }
    return this.open.size >= this.capacity;
  }

  /** Closes every open window: one event each, carrying its count. */
  drain(): AuditEvent[] {
    const events = [...this.open.values()].map((w) => closed(w));
    this.open.clear();
    return events;
  }
}

function closed(window: OpenWindow): AuditEvent {
  const [first, ...rest] = window.event.entity ?? [{}];
  return {
    ...window.event,
    period: { start: window.first, end: window.last },
    entity: [
      {
        ...first,
        detail: [
          ...(first?.detail ?? []),
          { type: FAILED_ATTEMPTS_DETAIL, valueString: String(window.count) },
        ],
      },
      ...rest,
    ],
  };
}
