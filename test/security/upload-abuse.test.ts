import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { JWK } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { signClientAssertion, tokenRequestBody } from '../../src/auth/client-keys.js';
import { DEV_CLIENT_ID } from '../../src/auth/dev-client.js';
import { patient } from '../http/http-helpers.js';
import { startServiceProcess } from '../support/delivery-processes.js';
import { listenSecureApp, type ListeningSecureApp } from '../support/secure-app.js';

/**
 * Issue 11, item 8: no request can kill the process. Oversized uploads (declared or chunked) and
 * uploads cut off mid-body are sent over raw sockets (supertest cannot abort mid-body) to a real
 * listening composed service with the audit trail on. Each gets 413 or is dropped; afterwards a
 * normal request succeeds and nothing was thrown out of any listener (an exception there would
 * reach the process as `uncaughtException`, which in production ends the process).
 */
const LIMIT = 16 * 1024;
let t: ListeningSecureApp;
let token: string;
let port: number;
const uncaught: unknown[] = [];
const onUncaught = (err: unknown): void => {
  uncaught.push(err);
};

beforeAll(async () => {
  process.on('uncaughtException', onUncaught);
  process.on('unhandledRejection', onUncaught);
  t = await listenSecureApp({ bodyLimitBytes: LIMIT, auditDelayMs: 10 });
  token = await t.token('practice');
  port = Number(new URL(t.origin).port);
});
afterAll(async () => {
  await t?.close();
  process.off('uncaughtException', onUncaught);
  process.off('unhandledRejection', onUncaught);
});

/** The status line of what the server answered, or 'dropped' when it closed without an answer. */
function rawRequest(
  write: (socket: Socket) => void,
  abortAfterMs?: number,
  to: number = port,
): Promise<number | 'dropped'> {
  return new Promise((resolve) => {
    const socket = connect(to, '127.0.0.1');
    let answer = '';
    let settled = false;
    const done = (): void => {
      if (settled) return;
      settled = true;
      const status = /^HTTP\/1\.1 (\d{3})/.exec(answer)?.[1];
      socket.destroy();
      resolve(status ? Number(status) : 'dropped');
    };
    socket.on('data', (chunk: Buffer) => {
      answer += chunk.toString('latin1');
      if (/\r\n\r\n/.test(answer)) done();
    });
    socket.on('error', done);
    socket.on('close', done);
    socket.on('connect', () => {
      write(socket);
      if (abortAfterMs !== undefined) setTimeout(() => socket.destroy(), abortAfterMs);
    });
  });
}

const head = (extra: string, to = port, bearer = token): string =>
  `POST /fhir/Patient HTTP/1.1\r\nHost: 127.0.0.1:${to}\r\nAuthorization: Bearer ${bearer}\r\n` +
  `Content-Type: application/fhir+json\r\n${extra}\r\n`;

/** Whether a process with this pid still exists (signal 0 only checks). */
function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

const filler = Buffer.alloc(4096, 'a');

function writeQuietly(socket: Socket, data: string | Buffer): void {
  if (!socket.destroyed) socket.write(data, () => undefined);
}

/**
 * 100 uploads in a row, in turn: declared too large, chunked past the limit, fixed length cut off
 * mid-body, chunked cut off mid-body. What each got: a status, or 'dropped'.
 */
async function hundredBadUploads(to: number, bearer: string): Promise<(number | 'dropped')[]> {
  const outcomes: (number | 'dropped')[] = [];
  const h = (extra: string): string => head(extra, to, bearer);
  for (let i = 0; i < 100; i++) {
    const kind = i % 4;
    if (kind === 0) {
      // Declared too large: answered before the body is read.
      outcomes.push(
        await rawRequest(
          (s) => {
            writeQuietly(s, h(`Content-Length: ${LIMIT * 4}\r\n`));
            for (let k = 0; k < 4; k++) writeQuietly(s, filler);
          },
          undefined,
          to,
        ),
      );
    } else if (kind === 1) {
      // Chunked, growing past the limit while it is read.
      outcomes.push(
        await rawRequest(
          (s) => {
            writeQuietly(s, h('Transfer-Encoding: chunked\r\n'));
            for (let k = 0; k < (LIMIT / filler.length) * 2; k++) {
              writeQuietly(s, `${filler.length.toString(16)}\r\n`);
              writeQuietly(s, filler);
              writeQuietly(s, '\r\n');
            }
          },
          undefined,
          to,
        ),
      );
    } else if (kind === 2) {
      // Fixed length, cut off mid-body.
      outcomes.push(
        await rawRequest(
          (s) => {
            writeQuietly(s, h(`Content-Length: ${LIMIT - 10}\r\n`));
            writeQuietly(s, filler);
          },
          20,
          to,
        ),
      );
    } else {
      // Chunked, cut off mid-body (after part of the limit, before the terminating chunk).
      outcomes.push(
        await rawRequest(
          (s) => {
            writeQuietly(s, h('Transfer-Encoding: chunked\r\n'));
            writeQuietly(s, `${filler.length.toString(16)}\r\n`);
            writeQuietly(s, filler);
            writeQuietly(s, '\r\n');
          },
          20,
          to,
        ),
      );
    }
  }
  return outcomes;
}

describe('oversized and aborted uploads', () => {
  it('100 oversized (fixed-length and chunked) and aborted uploads in a row each get 413 or are dropped, and the service keeps serving', async () => {
    const outcomes = await hundredBadUploads(port, token);
    for (const outcome of outcomes) expect([413, 'dropped']).toContain(outcome);
    expect(outcomes.filter((o) => o === 413).length).toBeGreaterThanOrEqual(25);
    // Let every 'finish'/'close' listener and the audit batches run.
    await new Promise((resolve) => setTimeout(resolve, 200));
    await t.audit.flush();

    const res = await t.fhir('POST', '/fhir/Patient', { token, body: patient() });
    expect(res.status).toBe(201);
    expect(t.server.listening).toBe(true);
    expect(uncaught.map((e) => String((e as Error)?.stack ?? e))).toEqual([]);
    // A client that went away is the client's doing: no 500 was logged for any of them.
    expect(t.logs.filter((l) => l.msg === 'request failed')).toEqual([]);
  });

  it('the service process (src/main.ts, audit on) survives them: alive and serving afterwards', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'upload-abuse-'));
    const service = await startServiceProcess({
      AUTH: 'on',
      DATABASE_URL: 'sqlite::memory:',
      DEV_CLIENT_DIR: join(dir, 'dev-client'),
      SIGNING_KEYS_FILE: join(dir, 'signing-keys.json'),
      BODY_LIMIT_BYTES: String(LIMIT),
      DELIVERY_WORKER: 'off',
    });
    try {
      const to = Number(new URL(service.origin).port);
      const privateJwk = JSON.parse(
        readFileSync(join(dir, 'dev-client', `${DEV_CLIENT_ID}.private.jwk.json`), 'utf8'),
      ) as JWK;
      const assertion = await signClientAssertion(DEV_CLIENT_ID, privateJwk, `${service.origin}/auth/token`);
      const tokenRes = await fetch(`${service.origin}/auth/token`, {
        method: 'POST',
        body: tokenRequestBody(assertion),
      });
      expect(tokenRes.status).toBe(200);
      const bearer = ((await tokenRes.json()) as { access_token: string }).access_token;

      const outcomes = await hundredBadUploads(to, bearer);
      for (const outcome of outcomes) expect([413, 'dropped']).toContain(outcome);
      // The audit trail writes its batch ~100 ms later: a crash there would come now.
      await new Promise((resolve) => setTimeout(resolve, 500));
      expect(isAlive(service.pid), service.output()).toBe(true);
      const res = await fetch(`${service.fhirBase}/Patient`, {
        method: 'POST',
        headers: { authorization: `Bearer ${bearer}`, 'content-type': 'application/fhir+json' },
        body: JSON.stringify(patient()),
      });
      expect(res.status, service.output()).toBe(201);
    } finally {
      await service.kill();
      rmSync(dir, { recursive: true, force: true });
    }
  }, 60_000);
});
