import { execFile, execFileSync, spawnSync } from 'node:child_process';
import { chownSync, existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/**
 * A throwaway PostgreSQL cluster of its own (initdb + pg_ctl, as scripts/start-test-postgres.sh
 * does), for what must not touch the shared test server: a test that stops and restarts the
 * server, and benchmarks that want their own settings (durable commits, a bigger cache).
 * When run as root the server runs as the `postgres` OS user (initdb and postgres refuse root).
 * The data directory is removed by `destroy()`.
 */
export interface PostgresCluster {
  port: number;
  dir: string;
  /** `postgres://postgres@127.0.0.1:<port>/<database>` */
  url: string;
  /** `pg_ctl stop` with the given mode (fast: clean, immediate: as after a crash); waits for it. */
  stop(mode?: 'smart' | 'fast' | 'immediate'): Promise<void>;
  /** `pg_ctl start`; resolves once the server accepts connections. */
  start(): Promise<void>;
  isRunning(): boolean;
  /** Stops the server (immediate) and removes its data directory. */
  destroy(): void;
}

export interface ClusterOptions {
  database?: string;
  /** Extra `-c name=value` server settings. */
  settings?: Record<string, string | number>;
  port?: number;
}

/** The directory holding pg_ctl: PG_BIN, the newest /usr/lib/postgresql/<v>/bin, or the PATH. */
export function postgresBin(): string | undefined {
  if (process.env.PG_BIN) return process.env.PG_BIN;
  const root = '/usr/lib/postgresql';
  if (existsSync(root)) {
    const versions = readdirSync(root)
      .filter((v) => existsSync(join(root, v, 'bin', 'pg_ctl')))
      .sort((x, y) => Number(y) - Number(x));
    if (versions[0]) return join(root, versions[0], 'bin');
  }
  const which = spawnSync('sh', ['-c', 'command -v pg_ctl'], { encoding: 'utf8' });
  return which.status === 0 ? join(which.stdout.trim(), '..') : undefined;
}

const isRoot = (): boolean => typeof process.getuid === 'function' && process.getuid() === 0;
const OWNER = process.env.PG_OS_USER ?? 'postgres';

function ownerCommand(bin: string, args: string[]): [string, string[]] {
  return isRoot() ? ['runuser', ['-u', OWNER, '--', bin, ...args]] : [bin, args];
}

/** Runs a server binary as the cluster's owner, without blocking the event loop. */
function asOwner(bin: string, args: string[]): Promise<string> {
  const [file, argv] = ownerCommand(bin, args);
  return new Promise((resolve, reject) => {
    execFile(file, argv, { encoding: 'utf8' }, (err, stdout, stderr) => {
      if (err) reject(Object.assign(err, { stderr }));
      else resolve(stdout);
    });
  });
}

function asOwnerSync(bin: string, args: string[]): void {
  const [file, argv] = ownerCommand(bin, args);
  execFileSync(file, argv, { stdio: 'ignore' });
}

export function freeTcpPort(): Promise<number> {
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

export async function startPostgresCluster(options: ClusterOptions = {}): Promise<PostgresCluster> {
  const bin = postgresBin();
  if (!bin) throw new Error('PostgreSQL server binaries not found (install postgresql, or set PG_BIN)');
  const port = options.port ?? (await freeTcpPort());
  const database = options.database ?? 'referrals';
  const dir = mkdtempSync(join(tmpdir(), 'fhir-pg-cluster-'));
  if (isRoot()) {
    const id = (flag: string): number =>
      Number(execFileSync('id', [flag, OWNER], { encoding: 'utf8' }).trim());
    chownSync(dir, id('-u'), id('-g'));
  }
  const data = join(dir, 'data');
  const settings: Record<string, string | number> = {
    listen_addresses: '127.0.0.1',
    port,
    unix_socket_directories: dir,
    max_connections: 200,
    ...options.settings,
  };
  const serverOptions = Object.entries(settings)
    .map(([k, v]) => `-c ${k}=${v}`)
    .join(' ');
  const pgCtl = (...args: string[]): Promise<string> => asOwner(join(bin, 'pg_ctl'), ['-D', data, ...args]);
  let running = false;
  const cluster: PostgresCluster = {
    port,
    dir,
    url: `postgres://postgres@127.0.0.1:${port}/${database}`,
    async start() {
      await pgCtl('-l', join(dir, 'server.log'), '-w', '-t', '60', '-o', serverOptions, 'start');
      running = true;
    },
    async stop(mode = 'fast') {
      await pgCtl('-m', mode, '-w', '-t', '60', 'stop');
      running = false;
    },
    isRunning: () => running,
    // Synchronous, so it also works from an exit handler.
    destroy() {
      if (existsSync(join(data, 'postmaster.pid'))) {
        try {
          asOwnerSync(join(bin, 'pg_ctl'), ['-D', data, '-m', 'immediate', '-w', '-t', '30', 'stop']);
        } catch {
          // already stopped
        }
      }
      running = false;
      rmSync(dir, { recursive: true, force: true });
    },
  };
  try {
    await asOwner(join(bin, 'initdb'), [
      '-D',
      data,
      '-U',
      'postgres',
      '--auth=trust',
      '--encoding=UTF8',
      '--locale=C.UTF-8',
      '--no-sync',
    ]);
    await cluster.start();
    await asOwner(join(bin, 'createdb'), ['-h', dir, '-p', String(port), '-U', 'postgres', database]);
  } catch (err) {
    cluster.destroy();
    const e = err as Error & { stderr?: string };
    throw new Error(`could not start a PostgreSQL cluster: ${e.stderr ?? e.message}`, { cause: err });
  }
  return cluster;
}
