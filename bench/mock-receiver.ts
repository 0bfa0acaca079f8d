/**
 * A mock referrer endpoint: a real HTTP server that receives the service's rest-hook
 * notifications as a referring practice's system would. It verifies each notification's HMAC
 * signature, deduplicates Communications by their identifier (as receivers are asked to), and
 * records what it got. Its behaviour can be switched at run time, for fault tests: answer 2xx,
 * answer an error status (e.g. 503, 400), or hang past the sender's timeout.
 *
 * Library: `startMockReceiver(options)`. CLI (for a separate process, e.g. in fault tests):
 *   tsx bench/mock-receiver.ts --port 0 --secret s3cret
 * prints `{"listening":<port>}` on stdout, then one JSON line per notification received; it
 * takes commands on stdin, one JSON per line: {"mode":"ok"|"status"|"hang","status":503}.
 */
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createInterface } from 'node:readline';
import { pathToFileURL } from 'node:url';
import type { Bundle, Communication, Parameters } from '@medplum/fhirtypes';
import { SIGNATURE_HEADER, verifySignature } from '../src/delivery/signature.js';

export type ReceiverMode =
  { mode: 'ok' } | { mode: 'status'; status: number; retryAfter?: string } | { mode: 'hang' };

export interface ReceivedNotification {
  type: string;
  subscription?: string;
  eventNumbers: number[];
  communicationIdentifiers: string[];
  signatureValid: boolean;
  receivedAt: number;
}

export interface MockReceiver {
  port: number;
  url: string;
  /** Every notification accepted (answered 2xx), in arrival order. */
  received: ReceivedNotification[];
  /** Communication identifiers seen, each once (the receiver's dedupe). */
  unique: Map<string, Communication | undefined>;
  duplicates: number;
  /** Requests answered with an error or left hanging. */
  refused: number;
  setMode(mode: ReceiverMode): void;
  close(): Promise<void>;
}

export interface MockReceiverOptions {
  port?: number;
  secret?: string;
  onNotification?: (n: ReceivedNotification) => void;
}

export async function startMockReceiver(options: MockReceiverOptions = {}): Promise<MockReceiver> {
  let mode: ReceiverMode = { mode: 'ok' };
  const hanging = new Set<IncomingMessage>();
  const receiver: Omit<MockReceiver, 'port' | 'url'> & { port: number; url: string } = {
    port: 0,
    url: '',
    received: [],
    unique: new Map(),
    duplicates: 0,
    refused: 0,
    setMode(next) {
      mode = next;
    },
    close: async () => {
      for (const req of hanging) req.socket.destroy();
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
    },
  };
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks).toString('utf8');
      if (mode.mode === 'hang') {
        receiver.refused++;
        hanging.add(req);
        return; // never answer: the sender's timeout must fire
      }
      if (mode.mode === 'status') {
        receiver.refused++;
        res.writeHead(mode.status, mode.retryAfter ? { 'retry-after': mode.retryAfter } : {}).end();
        return;
      }
      const signatureValid = options.secret
        ? verifySignature(
            options.secret,
            body,
            req.headers[SIGNATURE_HEADER] as string | undefined,
            Math.floor(Date.now() / 1000),
          )
        : true;
      if (!signatureValid) {
        receiver.refused++;
        res.writeHead(401).end();
        return;
      }
      const notification = parseNotification(body);
      for (const [identifier, communication] of notification.communications) {
        if (receiver.unique.has(identifier)) receiver.duplicates++;
        else receiver.unique.set(identifier, communication);
      }
      const record: ReceivedNotification = {
        type: notification.type,
        subscription: notification.subscription,
        eventNumbers: notification.eventNumbers,
        communicationIdentifiers: [...notification.communications.keys()],
        signatureValid,
        receivedAt: Date.now(),
      };
      receiver.received.push(record);
      options.onNotification?.(record);
      res.writeHead(200).end();
    });
  });
  await new Promise<void>((resolve) => server.listen(options.port ?? 0, '127.0.0.1', resolve));
  receiver.port = (server.address() as AddressInfo).port;
  receiver.url = `http://127.0.0.1:${receiver.port}/notify`;
  return receiver;
}

function parseNotification(body: string): {
  type: string;
  subscription?: string;
  eventNumbers: number[];
  communications: Map<string, Communication | undefined>;
} {
  const bundle = JSON.parse(body) as Bundle;
  const status = bundle.entry?.[0]?.resource as Parameters | undefined;
  const param = (name: string) => status?.parameter?.find((p) => p.name === name);
  const events = status?.parameter?.filter((p) => p.name === 'notification-event') ?? [];
  const communications = new Map<string, Communication | undefined>();
  for (const entry of bundle.entry?.slice(1) ?? []) {
    const resource = entry.resource as Communication | undefined;
    const id = resource?.identifier?.[0];
    if (resource?.resourceType === 'Communication' && id?.value)
      communications.set(`${id.system}|${id.value}`, resource);
  }
  // id-only payloads name the focus; dedupe on it when no resource is carried.
  for (const event of events) {
    const focus = event.part?.find((p) => p.name === 'focus')?.valueReference?.reference;
    if (focus && communications.size === 0) communications.set(focus, undefined);
  }
  return {
    type: param('type')?.valueCode ?? 'unknown',
    subscription: param('subscription')?.valueReference?.reference,
    eventNumbers: events.map((e) => Number(e.part?.find((p) => p.name === 'event-number')?.valueString)),
    communications,
  };
}

async function cli(): Promise<void> {
  const arg = (name: string): string | undefined => {
    const i = process.argv.indexOf(`--${name}`);
    return i > 0 ? process.argv[i + 1] : undefined;
  };
  const receiver = await startMockReceiver({
    port: Number(arg('port') ?? 0),
    secret: arg('secret'),
    onNotification: (n) => process.stdout.write(`${JSON.stringify(n)}\n`),
  });
  process.stdout.write(`${JSON.stringify({ listening: receiver.port })}\n`);
  createInterface({ input: process.stdin }).on('line', (line) => {
    try {
      receiver.setMode(JSON.parse(line) as ReceiverMode);
    } catch {
      // ignore malformed commands
    }
  });
  const stop = (): void => void receiver.close().then(() => process.exit(0));
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  void cli();
}
