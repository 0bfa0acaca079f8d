import type { Server } from 'node:http';
import type { Express } from 'express';
import request, { type Response } from 'supertest';
import type { AuditTrail } from '../../src/auth/audit-trail.js';
import {
  generateClientKeys,
  registration,
  signClientAssertion,
  tokenRequestBody,
  type ClientKeyPair,
} from '../../src/auth/client-keys.js';
import type { ClientRegistration, Role } from '../../src/auth/clients.js';
import { KeyRing } from '../../src/auth/key-ring.js';
import { TokenService } from '../../src/auth/token-service.js';
import { compose, type Composition } from '../../src/compose.js';
import type { FhirStore } from '../../src/store/fhir-store.js';
import { FHIR_JSON, sharedValidator } from './test-app.js';
import { captureLogs, testConfig } from './test-config.js';

/**
 * The app with security on, composed by src/compose.ts as src/main.ts composes it: a real KeyRing,
 * a real TokenService over a registry of real ES384 client keys, the AuditTrail, and a logger
 * whose every line (all levels) is captured for the log-canary checks. No mocks: tokens are got
 * through POST /auth/token with signed client assertions, exactly as a backend service does.
 *
 * Standard clients (see CLIENTS): an admin, a practice client, and two referrers acting for
 * different practitioners and clinics. All four are registered with `system/*.cruds`, so what a
 * referrer cannot see is hidden by isolation, not by its scopes; narrower tokens are asked for
 * with `scope`.
 */
export const PUBLIC_ORIGIN = 'https://referrals.example.test';

export const REFERRER_A = {
  clientId: 'referrer-a',
  practitioner: 'Practitioner/dr-a',
  organization: 'Organization/clinic-a',
} as const;
export const REFERRER_B = {
  clientId: 'referrer-b',
  practitioner: 'Practitioner/dr-b',
  organization: 'Organization/clinic-b',
} as const;

export const CLIENTS: { id: string; role: Role; scope: string; actsFor: string[] }[] = [
  { id: 'admin', role: 'admin', scope: 'system/*.cruds', actsFor: [] },
  { id: 'practice', role: 'practice', scope: 'system/*.cruds', actsFor: [] },
  {
    id: REFERRER_A.clientId,
    role: 'referrer',
    scope: 'system/*.cruds',
    actsFor: [REFERRER_A.organization, REFERRER_A.practitioner],
  },
  {
    id: REFERRER_B.clientId,
    role: 'referrer',
    scope: 'system/*.cruds',
    actsFor: [REFERRER_B.organization, REFERRER_B.practitioner],
  },
];

export interface SentRequest {
  method: string;
  path: string;
  status: number;
}

export interface RequestOptions {
  token?: string;
  body?: unknown;
  headers?: Record<string, string>;
}

export interface SecureApp {
  app: Express;
  store: FhirStore;
  keys: KeyRing;
  tokens: TokenService;
  audit: AuditTrail;
  /** The composed service (src/compose.ts) the app belongs to. */
  service: Composition;
  /** The registry the TokenService reads: `register()` adds to it. */
  clients: Map<string, ClientRegistration>;
  /** Private and public keys of every registered client, by client id. */
  clientKeys: Map<string, ClientKeyPair>;
  /** The token URL assertions must name as `aud`. */
  tokenUrl: string;
  /** Every log line the app wrote (level trace and up), parsed. */
  logs: Record<string, unknown>[];
  /** Every request made through `fhir()`, with its answer's status, in order. */
  sent: SentRequest[];
  /** Milliseconds added to the TokenService's clock (to expire tokens without waiting). */
  clock: { offsetMs: number };
  register(id: string, role: Role, scope: string, actsFor?: string[]): Promise<ClientKeyPair>;
  /** POST /auth/token with `form` as the body (urlencoded). */
  tokenRequest(form: URLSearchParams | Record<string, string>): Promise<Response>;
  /** A fresh assertion for `clientId`, signed with its registered key, `aud` the token URL. */
  assertion(clientId: string, lifetimeSeconds?: number): Promise<string>;
  /** An access token for `clientId` (optionally narrowed to `scope`); fails the test if refused. */
  token(clientId: string, scope?: string): Promise<string>;
  /** A FHIR request with `token` as bearer (none when omitted), recorded in `sent`. */
  fhir(method: string, path: string, options?: RequestOptions): Promise<Response>;
  /** Sends every later request to `origin` (a listening server) instead of the app in process. */
  listening(origin: string): void;
  close(): Promise<void>;
}

export interface SecureAppOptions {
  databaseUrl?: string;
  rateLimitPerMinute?: number;
  /** The public origin of the token URL; `null` derives it from each request's Host. */
  publicOrigin?: string | null;
  /** The AuditTrail's batching delay (ms). */
  auditDelayMs?: number;
  tokenTtlSeconds?: number;
  bodyLimitBytes?: number;
}

export async function startSecureApp(options: SecureAppOptions = {}): Promise<SecureApp> {
  const { logs, sink } = captureLogs();
  const clients = new Map<string, ClientRegistration>();
  const clientKeys = new Map<string, ClientKeyPair>();
  const register = async (id: string, role: Role, scope: string, actsFor: string[] = []) => {
    const keys = await generateClientKeys();
    clients.set(id, registration(id, keys, role, scope, actsFor));
    clientKeys.set(id, keys);
    return keys;
  };
  for (const c of CLIENTS) await register(c.id, c.role, c.scope, c.actsFor);

  const keys = await KeyRing.create();
  const clock = { offsetMs: 0 };
  const publicOrigin = options.publicOrigin === null ? undefined : (options.publicOrigin ?? PUBLIC_ORIGIN);
  const tokens = new TokenService({
    clients,
    keys,
    issuer: publicOrigin ?? 'urn:pt-referral-fhir',
    tokenTtlSeconds: options.tokenTtlSeconds ?? 300,
    now: () => Date.now() + clock.offsetMs,
  });
  const service = await compose(
    testConfig({
      DATABASE_URL: options.databaseUrl,
      LOG_LEVEL: 'trace',
      BODY_LIMIT_BYTES: options.bodyLimitBytes === undefined ? undefined : String(options.bodyLimitBytes),
    }),
    {
      logSink: sink,
      validator: sharedValidator(),
      version: 'test',
      security: { tokens, rateLimitPerMinute: options.rateLimitPerMinute ?? 1_000_000, publicOrigin },
      audit: { delayMs: options.auditDelayMs ?? 100 },
    },
  );
  const { app, store } = service;
  const audit = service.audit as AuditTrail;
  // Where requests go (the app, or once listening its origin) and the token URL assertions name.
  const conn: { target: Express | string; tokenUrl: string } = {
    target: app,
    tokenUrl: `${publicOrigin ?? 'http://unknown.invalid'}/auth/token`,
  };
  const sent: SentRequest[] = [];

  const tokenRequest = (form: URLSearchParams | Record<string, string>): Promise<Response> =>
    request(conn.target)
      .post('/auth/token')
      .set('content-type', 'application/x-www-form-urlencoded')
      .send(new URLSearchParams(form).toString());
  const assertion = (clientId: string, lifetimeSeconds?: number): Promise<string> => {
    const keyPair = clientKeys.get(clientId);
    if (!keyPair) throw new Error(`no keys for client ${clientId}`);
    return signClientAssertion(clientId, keyPair.privateJwk, conn.tokenUrl, lifetimeSeconds);
  };
  const token = async (clientId: string, scope?: string): Promise<string> => {
    const res = await tokenRequest(tokenRequestBody(await assertion(clientId), scope));
    if (res.status !== 200) {
      throw new Error(`token for ${clientId} refused: ${res.status} ${JSON.stringify(res.body)}`);
    }
    return (res.body as { access_token: string }).access_token;
  };
  const fhir = async (method: string, path: string, o: RequestOptions = {}): Promise<Response> => {
    let req = request(conn.target)[method.toLowerCase() as 'get'](path).set('accept', FHIR_JSON);
    if (o.token) req = req.set('authorization', `Bearer ${o.token}`);
    if (o.headers) req = req.set(o.headers);
    if (o.body !== undefined) {
      req = req
        .set('content-type', o.headers?.['content-type'] ?? FHIR_JSON)
        .send(typeof o.body === 'string' ? o.body : JSON.stringify(o.body));
    }
    const res = await req;
    sent.push({ method, path, status: res.status });
    return res;
  };

  return {
    app,
    store,
    keys,
    tokens,
    audit,
    service,
    clients,
    clientKeys,
    get tokenUrl() {
      return conn.tokenUrl;
    },
    logs,
    sent,
    clock,
    register,
    tokenRequest,
    assertion,
    token,
    fhir,
    listening: (origin: string) => {
      conn.target = origin;
      if (!publicOrigin) conn.tokenUrl = `${origin}/auth/token`;
    },
    close: () => service.close(),
  };
}

export interface ListeningSecureApp extends SecureApp {
  origin: string;
  fhirBase: string;
  server: Server;
}

/** The secure app listening on an ephemeral port of 127.0.0.1, for real HTTP clients. */
export async function listenSecureApp(options: SecureAppOptions = {}): Promise<ListeningSecureApp> {
  const t = await startSecureApp(options);
  const { server, origin, fhirBase } = await t.service.start();
  t.listening(origin);
  return { ...t, server, origin, fhirBase };
}

/** The `details.coding[0].code` of an OperationOutcome answer (the service's stable error code). */
export function errorCode(res: Response): string | undefined {
  return (res.body as { issue?: { details?: { coding?: { code?: string }[] } }[] })?.issue?.[0]?.details
    ?.coding?.[0]?.code;
}
