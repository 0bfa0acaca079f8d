import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { freeTcpPort } from './postgres-cluster.js';
import { ROOT } from './processes.js';

/**
 * The built service (`node dist/main.js`, as `npm start` runs it) for the PostgreSQL benchmarks:
 * loopback only, AUTH=off (the benchmarks measure the FHIR work, not token checks; the service
 * refuses AUTH=off under NODE_ENV=production), logs at warn. Killed on exit, also on Ctrl-C.
 */
export interface BuiltService {
  url: string;
  pid: number;
  stop(): Promise<void>;
}

const running = new Set<ChildProcess>();
let hooked = false;

function killAllOnExit(): void {
  if (hooked) return;
  hooked = true;
  process.once('exit', () => {
    for (const child of running) child.kill('SIGKILL');
  });
}

export async function startBuiltService(
  databaseUrl: string,
  env: Record<string, string> = {},
): Promise<BuiltService> {
  killAllOnExit();
  const port = await freeTcpPort();
  const child = spawn(process.execPath, [join(ROOT, 'dist', 'main.js')], {
    cwd: ROOT,
    env: {
      ...process.env,
      NODE_ENV: 'development',
      AUTH: 'off',
      LOG_LEVEL: process.env.BENCH_LOG_LEVEL ?? 'warn',
      DATABASE_URL: databaseUrl,
      HOST: '127.0.0.1',
      PORT: String(port),
      ...env,
    },
    // stdout carries the AUTH=off banner; errors go to stderr, which the benchmark shows.
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  running.add(child);
  child.once('exit', () => running.delete(child));
  const url = `http://127.0.0.1:${port}`;
  const stop = (): Promise<void> =>
    child.exitCode !== null || child.signalCode !== null
      ? Promise.resolve()
      : new Promise((resolve) => {
          const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
          child.once('exit', () => {
            clearTimeout(timer);
            resolve();
          });
          child.kill('SIGTERM');
        });
  for (let attempt = 0; ; attempt++) {
    if (child.exitCode !== null) throw new Error(`the service exited with code ${child.exitCode}`);
    try {
      if ((await fetch(`${url}/readyz`)).ok) break;
    } catch {
      // not listening yet
    }
    if (attempt > 600) {
      await stop();
      throw new Error('the service did not become ready within 60 s');
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  return { url, pid: child.pid ?? -1, stop };
}
