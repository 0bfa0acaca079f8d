import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { createRequire } from 'node:module';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

/**
 * Child processes for the benchmarks: the built service and the baseline server. Every process
 * started here is tracked and killed when the benchmark ends, also on error or Ctrl-C, so a failed
 * run never leaves a server holding a port or a database open.
 */

export const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const HOST = '127.0.0.1';
const running = new Set<ChildProcess>();

export interface Server {
  url: string;
  pid: number;
  stop(): Promise<void>;
}

/** Compiles src/ to dist/ exactly as `npm run build` does, so the benchmark measures the shipped code. */
export function buildService(): void {
  if (process.env.BENCH_SKIP_BUILD === '1') {
    return;
  }
  const tsc = createRequire(import.meta.url).resolve('typescript/bin/tsc');
  execFileSync(process.execPath, [tsc, '-p', 'tsconfig.build.json'], { cwd: ROOT, stdio: 'inherit' });
}

/** Starts `node dist/main.js` on the given database, bound to loopback only. */
export function startService(databaseUrl: string): Promise<Server> {
  return startProcess('service', [join(ROOT, 'dist', 'main.js')], {
    DATABASE_URL: databaseUrl,
    LOG_LEVEL: process.env.BENCH_LOG_LEVEL ?? 'warn',
    // These benchmarks measure the FHIR server; authentication has its own (npm run bench:auth).
    AUTH: 'off',
    DELIVERY_WORKER: 'off',
  });
}

/** Starts the bare Express JSON server of bench/baseline-server.ts (through tsx's loader). */
export function startBaseline(): Promise<Server> {
  return startProcess('baseline', ['--import', 'tsx', join(ROOT, 'bench', 'baseline-server.ts')], {});
}

async function startProcess(name: string, args: string[], env: Record<string, string>): Promise<Server> {
  const port = await freePort();
  const child = spawn(process.execPath, args, {
    cwd: ROOT,
    env: { ...process.env, ...env, PORT: String(port), HOST },
    stdio: ['ignore', 'inherit', 'inherit'],
  });
  running.add(child);
  child.once('exit', () => running.delete(child));
  const url = `http://${HOST}:${port}`;
  try {
    await waitUntilHealthy(url, child, name);
  } catch (err) {
    await stopChild(child);
    throw err;
  }
  return { url, pid: child.pid ?? -1, stop: () => stopChild(child) };
}

/** Asks the OS for an unused port; the tiny race until the child binds it is acceptable here. */
function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const probe = createServer();
    probe.once('error', reject);
    probe.listen(0, HOST, () => {
      const address = probe.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      probe.close(() => resolve(port));
    });
  });
}

async function waitUntilHealthy(url: string, child: ChildProcess, name: string): Promise<void> {
  // Loading the FHIR definitions takes a second or two; 30 s means something is wrong.
  for (let attempt = 0; attempt < 300; attempt++) {
    if (child.exitCode !== null) {
      throw new Error(`${name} exited with code ${child.exitCode} before becoming healthy`);
    }
    try {
      const res = await fetch(`${url}/healthz`);
      if (res.ok) {
        return;
      }
    } catch {
      // Not listening yet.
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`${name} did not answer /healthz within 30 s`);
}

/** SIGTERM (graceful: the service closes its store), then SIGKILL if it hangs. */
function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) {
    return Promise.resolve();
  }
  return new Promise((resolve) => {
    const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
    child.once('exit', () => {
      clearTimeout(timer);
      resolve();
    });
    child.kill('SIGTERM');
  });
}

/** Kills whatever is still running; registered once per benchmark process. */
export function killAllOnExit(): void {
  const killAll = (): void => {
    for (const child of running) {
      child.kill('SIGKILL');
    }
  };
  process.once('exit', killAll);
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.once(signal, () => {
      killAll();
      process.exit(130);
    });
  }
}
