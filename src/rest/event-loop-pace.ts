import { setImmediate } from 'node:timers/promises';

/**
 * Long request work (a Bundle of thousands of entries) gives the event loop back every few
 * milliseconds, so other requests are answered meanwhile instead of after it. Awaiting a store
 * call is not enough: better-sqlite3 is synchronous, and an already-resolved promise never lets
 * timers or sockets run (https://nodejs.org/en/learn/asynchronous-work/event-loop-timers-and-nexttick).
 */
export const YIELD_EVERY_MS = 20;

/** A function to await between units of work: it yields once `everyMs` have passed since the last yield. */
export function eventLoopPace(everyMs = YIELD_EVERY_MS): () => Promise<void> {
  let last = performance.now();
  return async () => {
    if (performance.now() - last >= everyMs) {
      await setImmediate();
      last = performance.now();
    }
  };
}
