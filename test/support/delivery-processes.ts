import { spawn, type ChildProcess } from 'node:child_process';
import { createServer } from 'node:net';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import type { ReceivedNotification, ReceiverMode } from '../../bench/mock-receiver.js';

/**
 * Child processes for the delivery fault tests: the mock receiver (bench/mock-receiver.ts) and the
 * service itself (src/main.ts). Both run as `node --import tsx <file>` — the same as `npx tsx
 * <file>` but in ONE process: tsx's CLI runs the script in a grandchild, so a SIGKILL sent to it
 * would kill the wrapper and orphan the real server. Every process started here is tracked;
 * `killAllChildren()` (afterEach/afterAll) SIGKILLs whatever is left, even after a failure.
 */

export const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const running = new Set<ChildProcess>();

/**
 * The parent's environment without what would configure the child behind the test's back: the
 * service's own settings, and vitest's BASE_URL ('/', which the service would refuse).
 */
function childEnv(env: Record<string, string>): NodeJS.ProcessEnv {
  const inherited = Object.fromEntries(
    Object.entries(process.env).filter(
      ([name]) =>
        !/^(DATABASE_URL|PORT|HOST|BASE_URL|LOG_LEVEL|AUTH|AUTH_.*|DELIVERY_.*|PRACTICE_.*|BODY_LIMIT_BYTES|PROGRESS_.*)$/.test(
          name,
        ),
    ),
  );
  return { ...inherited, ...env };
}

function startNode(file: string, args: string[], env: Record<string, string>): ChildProcess {
  const child = spawn(process.execPath, ['--import', 'tsx', file, ...args], {
    cwd: ROOT,
    env: childEnv(env),
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  running.add(child);
  child.once('exit', () => running.delete(child));
  return child;
}

/** SIGKILLs every child still running and waits for each to exit. */
export async function killAllChildren(): Promise<void> {
  await Promise.all([...running].map((child) => killChild(child)));
}

export function killChild(child: ChildProcess, signal: NodeJS.Signals = 'SIGKILL'): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
    }, 5_000);
    child.once('exit', () => {
      clearTimeout(timer);
      resolve();
    });
    child.kill(signal);
  });
}

/** An unused loopback port (the tiny race until someone binds it is acceptable in tests). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const probe = createServer();
    probe.once('error', reject);
    probe.listen(0, '127.0.0.1', () => {
      const address = probe.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      probe.close(() => resolve(port));
    });
  });
}

export interface ReceiverProcess {
  port: number;
  url: string;
  pid: number;
  /** Every notification the receiver accepted (it prints one JSON line each), in arrival order. */
  received: ReceivedNotification[];
  /** Communication identifiers, each counted once, as the receiver dedupes. */
  unique: Set<string>;
  /** Notifications carrying an identifier already seen. */
  duplicates: number;
  setMode(mode: ReceiverMode): void;
  stop(): Promise<void>;
}

/** Starts `bench/mock-receiver.ts` in its own process and resolves once it listens. */
export async function startReceiverProcess(
  options: { port?: number; secret?: string; timeoutMs?: number } = {},
): Promise<ReceiverProcess> {
  const child = startNode(
    'bench/mock-receiver.ts',
    ['--port', String(options.port ?? 0), ...(options.secret ? ['--secret', options.secret] : [])],
    {},
  );
  let stderr = '';
  child.stderr?.on('data', (c: Buffer) => (stderr += c.toString()));
  const state: Omit<ReceiverProcess, 'port' | 'url'> = {
    pid: child.pid ?? -1,
    received: [],
    unique: new Set(),
    duplicates: 0,
    setMode: (mode) => {
      child.stdin?.write(`${JSON.stringify(mode)}\n`);
    },
    stop: () => killChild(child, 'SIGTERM'),
  };
  const port = await new Promise<number>((resolve, reject) => {
    const timer = setTimeout(() => {
      void killChild(child);
      reject(new Error(`the receiver did not start within ${options.timeoutMs ?? 15_000} ms: ${stderr}`));
    }, options.timeoutMs ?? 15_000);
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`the receiver exited (${code}) before listening: ${stderr}`));
    });
    createInterface({ input: child.stdout! }).on('line', (line) => {
      let message: unknown;
      try {
        message = JSON.parse(line);
      } catch {
        return;
      }
      if (typeof message === 'object' && message && 'listening' in message) {
        clearTimeout(timer);
        resolve(Number((message as { listening: number }).listening));
        return;
      }
      const notification = message as ReceivedNotification;
      state.received.push(notification);
      for (const id of notification.communicationIdentifiers) {
        if (state.unique.has(id)) state.duplicates++;
        else state.unique.add(id);
      }
    });
  });
  return { ...state, port, url: `http://127.0.0.1:${port}/notify` };
}

export interface ServiceProcess {
  pid: number;
  origin: string;
  fhirBase: string;
  /** What the service wrote on stdout and stderr, for failure messages. */
  output(): string;
  kill(signal?: NodeJS.Signals): Promise<void>;
}

/** Starts the service (`src/main.ts`) with `env` and resolves once /healthz answers. */
export async function startServiceProcess(
  env: Record<string, string>,
  timeoutMs = 30_000,
): Promise<ServiceProcess> {
  const port = env.PORT ?? String(await freePort());
  // AUTH=off: these tests are about delivery, not tokens (the service refuses it in production).
  const child = startNode('src/main.ts', [], {
    HOST: '127.0.0.1',
    LOG_LEVEL: 'warn',
    AUTH: 'off',
    ...env,
    PORT: port,
  });
  let output = '';
  child.stdout?.on('data', (c: Buffer) => (output += c.toString()));
  child.stderr?.on('data', (c: Buffer) => (output += c.toString()));
  const origin = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (child.exitCode !== null || child.signalCode !== null) {
      throw new Error(
        `the service exited (${child.exitCode ?? child.signalCode}) before answering: ${output}`,
      );
    }
    try {
      const res = await fetch(`${origin}/healthz`, { signal: AbortSignal.timeout(1_000) });
      if (res.ok) break;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) {
      await killChild(child);
      throw new Error(`the service did not answer /healthz within ${timeoutMs} ms: ${output}`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  return {
    pid: child.pid ?? -1,
    origin,
    fhirBase: `${origin}/fhir`,
    output: () => output,
    kill: (signal = 'SIGKILL') => killChild(child, signal),
  };
}
