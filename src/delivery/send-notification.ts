import { lookup as dnsLookup, type LookupAddress } from 'node:dns';
import http from 'node:http';
import https from 'node:https';
import { isIP, type LookupFunction, type Socket } from 'node:net';
import type { EndpointRules } from './endpoint-policy.js';
import type { AttemptOutcome } from './retry-policy.js';

/**
 * One POST of a notification, over node:http(s) so that the address decision is made where the
 * connection is made: the agents' `lookup` answers only addresses the rules allow
 * (endpoint-policy.ts), an IP literal is checked before connecting (no lookup happens for it),
 * and each new socket's remote address is checked once connected. Redirects are not followed.
 * The whole attempt — connect, TLS, answer, its body — is bounded by `timeoutMs`.
 */
export type NotificationSender = (
  endpoint: string,
  headers: Record<string, string>,
  body: string,
  timeoutMs: number,
) => Promise<AttemptOutcome>;

/** Receivers answer with little; more than this is not read (the status is what counts). */
const MAX_ANSWER_BYTES = 64 * 1024;

class BlockedAddress extends Error {
  override name = 'BlockedAddress';
}

export function createNotificationSender(rules: EndpointRules): NotificationSender & { close(): void } {
  const lookup: LookupFunction = (hostname, options, callback) => {
    dnsLookup(hostname, { ...options, all: true }, (err, addresses: LookupAddress[]) => {
      if (err) return callback(err, '', 4);
      const allowed = addresses.filter((a) => rules.mayConnect(a.address, hostname));
      if (allowed.length === 0) return callback(new BlockedAddress(), '', 4);
      if ((options as { all?: boolean }).all)
        return (callback as never as (e: null, a: LookupAddress[]) => void)(null, allowed);
      const first = allowed[0] as LookupAddress;
      callback(null, first.address, first.family);
    });
  };
  const agents = {
    'http:': new http.Agent({ keepAlive: true, lookup }),
    'https:': new https.Agent({ keepAlive: true, lookup }),
  };
  const send: NotificationSender = (endpoint, headers, body, timeoutMs) =>
    new Promise<AttemptOutcome>((resolve) => {
      const url = new URL(endpoint);
      const host = url.hostname.replace(/^\[|\]$/g, '');
      const agent = agents[url.protocol as 'http:' | 'https:'];
      if (!agent) return resolve({ kind: 'blocked', error: 'not an http(s) endpoint' });
      if (isIP(host) !== 0 && !rules.mayConnect(host, host)) {
        return resolve({ kind: 'blocked', error: 'the endpoint address is not allowed' });
      }
      let settled = false;
      const finish = (outcome: AttemptOutcome): void => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        resolve(outcome);
      };
      const req = (url.protocol === 'https:' ? https : http).request(url, {
        method: 'POST',
        agent,
        headers: { ...headers, 'content-length': Buffer.byteLength(body) },
      });
      const timer = setTimeout(() => {
        finish({ kind: 'network', error: `no answer within ${timeoutMs} ms` });
        req.destroy();
      }, timeoutMs);
      req.on('socket', (socket: Socket) => {
        // A fresh connection: the address it reached must be one the rules allow (a kept-alive
        // socket was checked when it connected).
        if (!socket.connecting) return;
        socket.once('connect', () => {
          const remote = socket.remoteAddress ?? '';
          if (!rules.mayConnect(remote, host)) req.destroy(new BlockedAddress());
        });
      });
      req.on('error', (err: Error & { code?: string }) => {
        if (err instanceof BlockedAddress || err.name === 'BlockedAddress') {
          finish({ kind: 'blocked', error: 'the endpoint resolves to an address that is not allowed' });
        } else {
          finish({ kind: 'network', error: err.code ?? err.name });
        }
      });
      req.on('response', (res) => {
        let read = 0;
        const done = (): void =>
          finish({
            kind: 'http',
            status: res.statusCode ?? 0,
            retryAfter: header(res.headers['retry-after']),
          });
        res.on('data', (chunk: Buffer) => {
          read += chunk.length;
          if (read > MAX_ANSWER_BYTES) {
            done();
            res.destroy();
          }
        });
        res.on('end', done);
        res.on('error', done);
        res.on('close', done);
      });
      req.end(body);
    });
  return Object.assign(send, {
    close() {
      agents['http:'].destroy();
      agents['https:'].destroy();
    },
  });
}

function header(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value[0] : value;
}
