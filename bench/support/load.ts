import autocannon, { type Request, type Result } from 'autocannon';

/**
 * Measurement helpers: autocannon for throughput under concurrency, and a sequential loop for
 * latency of a single request at a time (sub-millisecond resolution, which autocannon's
 * integer-millisecond histogram lacks).
 */
export interface LoadFigures {
  requestsPerSecond: number;
  p50Ms: number;
  p99Ms: number;
  requests: number;
  errors: number;
  non2xx: number;
  /** Count per HTTP status, to tell a fast error from a fast answer. */
  statusCodes: Record<string, number>;
}

export interface LoadOptions {
  url: string;
  connections: number;
  seconds: number;
  requests: Request[];
}

export async function runLoad(options: LoadOptions): Promise<LoadFigures> {
  const result: Result = await autocannon({
    url: options.url,
    connections: options.connections,
    duration: options.seconds,
    timeout: 30,
    requests: options.requests,
  });
  return {
    requestsPerSecond: result.requests.total / result.duration,
    p50Ms: result.latency.p50,
    p99Ms: result.latency.p99,
    requests: result.requests.total,
    errors: result.errors + result.timeouts,
    non2xx: result.non2xx,
    statusCodes: Object.fromEntries(
      Object.entries(result.statusCodeStats).map(([status, stat]) => [status, stat.count]),
    ),
  };
}

export interface LatencyFigures {
  p50Ms: number;
  p99Ms: number;
  meanMs: number;
  samples: number;
}

/**
 * Sends up to `samples` GETs one after the other (after a short warm-up) over a keep-alive
 * connection and reports their latency distribution; stops early after `maxSeconds` so a slow
 * query cannot stretch the run. `pathFor(i)` varies the query so no single row is hot.
 */
export async function measureSequential(
  baseUrl: string,
  pathFor: (i: number) => string,
  samples: number,
  maxSeconds: number,
  check: (status: number, body: string) => void = () => {},
): Promise<LatencyFigures> {
  const warmup = Math.min(30, samples);
  const times: number[] = [];
  const deadline = performance.now() + maxSeconds * 1000;
  for (let i = 0; i < warmup + samples && (times.length < 20 || performance.now() < deadline); i++) {
    const started = performance.now();
    const res = await fetch(`${baseUrl}${pathFor(i)}`, { headers: { accept: 'application/fhir+json' } });
    const body = await res.text();
    const elapsed = performance.now() - started;
    check(res.status, body);
    if (i >= warmup) {
      times.push(elapsed);
    }
  }
  times.sort((a, b) => a - b);
  return {
    p50Ms: percentile(times, 50),
    p99Ms: percentile(times, 99),
    meanMs: times.reduce((a, b) => a + b, 0) / times.length,
    samples: times.length,
  };
}

/** Nearest-rank percentile of an ascending list. */
export function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) {
    return Number.NaN;
  }
  const rank = Math.ceil((p / 100) * sorted.length);
  return sorted[Math.min(sorted.length, Math.max(1, rank)) - 1] ?? Number.NaN;
}
