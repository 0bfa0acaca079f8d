import { connect, type Socket } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { compose, type Composition } from '../../src/compose.js';
import { sharedValidator } from '../support/test-app.js';
import { captureLogs, testConfig } from '../support/test-config.js';

/**
 * Idle connections are closed (issue 11, item 21): a client that opens sockets and sends nothing,
 * a header that never ends, or keeps a connection open after its answer must not hold the
 * server's sockets for ever (slowloris). The bounds are configured short here; production defaults
 * are in src/config/config.ts.
 */
const HEADERS_TIMEOUT_MS = 600;
const KEEP_ALIVE_TIMEOUT_MS = 300;

/** Milliseconds until the server closes `socket` (after `send`), or Infinity past `waitMs`. */
function closedAfter(socket: Socket, send: string, waitMs: number): Promise<{ ms: number; data: string }> {
  return new Promise((resolve) => {
    const start = performance.now();
    let data = '';
    const timer = setTimeout(() => {
      socket.destroy();
      resolve({ ms: Infinity, data });
    }, waitMs);
    socket.on('data', (chunk) => {
      data += String(chunk);
    });
    socket.on('close', () => {
      clearTimeout(timer);
      resolve({ ms: performance.now() - start, data });
    });
    socket.on('error', () => undefined);
    if (send) socket.write(send);
  });
}

describe('idle connections are closed', () => {
  let service: Composition;
  let port: number;

  beforeAll(async () => {
    service = await compose(
      testConfig({
        HTTP_HEADERS_TIMEOUT_MS: String(HEADERS_TIMEOUT_MS),
        HTTP_KEEP_ALIVE_TIMEOUT_MS: String(KEEP_ALIVE_TIMEOUT_MS),
      }),
      { logSink: captureLogs().sink, validator: sharedValidator(), audit: false, version: 'test' },
    );
    port = (await service.start()).port;
  });
  afterAll(async () => {
    await service.close();
  });

  async function open(): Promise<Socket> {
    const socket = connect(port, '127.0.0.1');
    await new Promise((resolve) => socket.once('connect', resolve));
    return socket;
  }

  it('closes a connection that sends nothing within the headers timeout', async () => {
    const { ms } = await closedAfter(await open(), '', 10_000);
    expect(ms).toBeLessThan(HEADERS_TIMEOUT_MS + 2_000);
  });

  it('closes a connection whose header never ends within the headers timeout', async () => {
    const { ms } = await closedAfter(
      await open(),
      'GET /fhir/metadata HTTP/1.1\r\nHost: x\r\nX-Slow: a',
      10_000,
    );
    expect(ms).toBeLessThan(HEADERS_TIMEOUT_MS + 2_000);
  });

  it('closes a kept-alive connection idle after its answer within the keep-alive timeout', async () => {
    const { ms, data } = await closedAfter(
      await open(),
      'GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: keep-alive\r\n\r\n',
      10_000,
    );
    expect(data).toMatch(/^HTTP\/1\.1 200/);
    expect(data).toMatch(/Keep-Alive: timeout=\d+/i);
    expect(ms).toBeLessThan(KEEP_ALIVE_TIMEOUT_MS + 2_000);
  });
});
