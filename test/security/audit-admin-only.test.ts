import type { AuditEvent, Bundle, Patient } from '@medplum/fhirtypes';
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { patient } from '../http/http-helpers.js';
import { readFixture, toMessage } from '../referral/referral-fixtures.js';
import { testStoreUrl } from '../support/postgres.js';
import { PUBLIC_ORIGIN, startSecureApp, type SecureApp } from '../support/secure-app.js';

/**
 * Issue 11, item 11: AuditEvents are admin-only on every path — top-level read, search and
 * history, batch and transaction entries, `_include`/`_revinclude` from other types — and
 * append-only for everyone: no client creates, updates or deletes one, whatever the entry URL says,
 * admin included. Each path with each role, on the store of TEST_DATABASE_URL (SQLite by default).
 */
let t: SecureApp;
const tokens: Record<'admin' | 'practice' | 'referrer', string> = { admin: '', practice: '', referrer: '' };
let patientId: string;
let auditId: string;
const canary = `forged-${randomUUID()}`;

const forged = (id?: string): AuditEvent => ({
  resourceType: 'AuditEvent',
  ...(id ? { id } : {}),
  type: { system: 'http://terminology.hl7.org/CodeSystem/audit-event-type', code: 'rest' },
  recorded: new Date().toISOString(),
  agent: [{ requestor: true, who: { display: canary } }],
  source: { observer: { display: canary } },
  entity: [{ what: { reference: `Patient/${patientId}` } }],
});

const bundle = (type: 'batch' | 'transaction', entry: Bundle['entry']): Bundle => ({
  resourceType: 'Bundle',
  type,
  entry,
});

/** Every AuditEvent in the store, read without any client view. */
async function storedAuditEvents(): Promise<AuditEvent[]> {
  await t.audit.flush();
  const found = await t.store.search({
    resourceType: 'AuditEvent',
    filters: [],
    sort: [],
    count: 10_000,
    offset: 0,
    total: false,
  });
  return found.resources as AuditEvent[];
}

async function expectNoForgery(): Promise<void> {
  const events = await storedAuditEvents();
  expect(events.filter((e) => JSON.stringify(e).includes(canary))).toEqual([]);
  // The server's own record is unchanged (version 1, not deleted).
  const own = await t.store.read('AuditEvent', auditId);
  expect(own?.deleted ?? false).toBe(false);
  expect(own?.versionId).toBe('1');
}

beforeAll(async () => {
  t = await startSecureApp({
    databaseUrl: testStoreUrl(process.env.TEST_DATABASE_URL ?? 'sqlite::memory:'),
    auditDelayMs: 10,
  });
  tokens.admin = await t.token('admin');
  tokens.practice = await t.token('practice');
  tokens.referrer = await t.token('referrer-a');
  patientId = (
    (await t.fhir('POST', '/fhir/Patient', { token: tokens.practice, body: patient() })).body as Patient
  ).id as string;
  // Reads of the patient: their AuditEvents name it as entity.
  await t.fhir('GET', `/fhir/Patient/${patientId}`, { token: tokens.practice });
  const events = await storedAuditEvents();
  const about = events.find((e) => e.entity?.some((x) => x.what?.reference === `Patient/${patientId}`));
  expect(about).toBeDefined();
  auditId = about?.id as string;
});
afterAll(() => t?.close());

describe('AuditEvents are read by admin clients only, on every path', () => {
  const readPaths = (): string[] => [
    '/fhir/AuditEvent',
    '/fhir/AuditEvent?entity=Patient/' + patientId,
    `/fhir/AuditEvent/${auditId}`,
    `/fhir/AuditEvent/${auditId}/_history`,
    `/fhir/AuditEvent/${auditId}/_history/1`,
    '/fhir/AuditEvent/_history',
  ];

  it('top-level read, search, vread and history: 403 for practice and referrer, 200 for admin', async () => {
    for (const path of readPaths()) {
      for (const role of ['practice', 'referrer'] as const) {
        const res = await t.fhir('GET', path, { token: tokens[role] });
        expect(res.status, `${role} GET ${path}`).toBe(403);
        expect(res.text).not.toContain(canary);
        expect(res.text).not.toContain(`"resourceType":"AuditEvent"`);
      }
      expect((await t.fhir('GET', path, { token: tokens.admin })).status, `admin GET ${path}`).toBe(200);
    }
    const search = await t.fhir('POST', '/fhir/AuditEvent/_search', {
      token: tokens.practice,
      body: 'type=rest',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
    });
    expect(search.status).toBe(403);
  });

  it('batch and transaction entries reading AuditEvents: refused for practice and referrer, answered for admin', async () => {
    for (const type of ['batch', 'transaction'] as const) {
      for (const url of [
        `AuditEvent/${auditId}`,
        'AuditEvent?type=rest',
        `AuditEvent/${auditId}/_history`,
        `${PUBLIC_ORIGIN}/fhir/AuditEvent/${auditId}`,
        `/fhir/AuditEvent/${auditId}`,
        `%41uditEvent/${auditId}`,
      ]) {
        const body = bundle(type, [{ request: { method: 'GET', url } }]);
        for (const role of ['practice', 'referrer'] as const) {
          const res = await t.fhir('POST', '/fhir', { token: tokens[role], body });
          expect(res.status, `${role} ${type} GET ${url}`).toBeGreaterThanOrEqual(400);
          expect(res.status).toBeLessThan(500);
          expect(res.text, `${role} ${type} GET ${url}`).not.toContain('"resourceType":"AuditEvent"');
        }
      }
      const admin = await t.fhir('POST', '/fhir', {
        token: tokens.admin,
        body: bundle(type, [{ request: { method: 'GET', url: `AuditEvent/${auditId}` } }]),
      });
      expect(admin.status).toBe(200);
      expect(admin.text).toContain('"resourceType":"AuditEvent"');
    }
  });

  it('_revinclude and _include from other types bring no AuditEvent to practice or referrer, top level and in Bundles', async () => {
    const queries = [
      `Patient?_id=${patientId}&_revinclude=AuditEvent:entity`,
      `Patient?_id=${patientId}&_revinclude=AuditEvent:patient`,
      `Patient?_id=${patientId}&_revinclude=*`,
      `Patient?_id=${patientId}&_revinclude:iterate=AuditEvent:entity`,
    ];
    for (const role of ['practice', 'referrer'] as const) {
      for (const query of queries) {
        const top = await t.fhir('GET', `/fhir/${query}`, { token: tokens[role] });
        expect(top.status, `${role} ${query}`).toBeLessThan(500);
        expect(top.text, `${role} ${query}`).not.toContain('"resourceType":"AuditEvent"');
        for (const type of ['batch', 'transaction'] as const) {
          const res = await t.fhir('POST', '/fhir', {
            token: tokens[role],
            body: bundle(type, [{ request: { method: 'GET', url: query } }]),
          });
          expect(res.status, `${role} ${type} ${query}`).toBeLessThan(500);
          expect(res.text, `${role} ${type} ${query}`).not.toContain('"resourceType":"AuditEvent"');
        }
      }
      const history = await t.fhir('GET', '/fhir/_history?_count=1000', { token: tokens[role] });
      expect(history.text).not.toContain('"resourceType":"AuditEvent"');
    }
    const admin = await t.fhir('GET', `/fhir/${queries[0]}`, { token: tokens.admin });
    expect(admin.text).toContain('"resourceType":"AuditEvent"');
  });
});

describe('AuditEvents through _include', () => {
  it('a Provenance that targets an AuditEvent includes it for admin only, top level and in a batch', async () => {
    const provenance = await t.fhir('POST', '/fhir/Provenance', {
      token: tokens.admin,
      body: {
        resourceType: 'Provenance',
        target: [{ reference: `AuditEvent/${auditId}` }],
        recorded: new Date().toISOString(),
        agent: [{ who: { display: 'admin' } }],
      },
    });
    expect(provenance.status, JSON.stringify(provenance.body)).toBe(201);
    const query = `Provenance?_id=${provenance.body.id as string}&_include=Provenance:target`;
    const admin = await t.fhir('GET', `/fhir/${query}`, { token: tokens.admin });
    expect(admin.text).toContain('"resourceType":"AuditEvent"');
    for (const role of ['practice', 'referrer'] as const) {
      const top = await t.fhir('GET', `/fhir/${query}`, { token: tokens[role] });
      expect(top.status, role).toBeLessThan(500);
      expect(top.text, role).not.toContain('"resourceType":"AuditEvent"');
      for (const type of ['batch', 'transaction'] as const) {
        const res = await t.fhir('POST', '/fhir', {
          token: tokens[role],
          body: bundle(type, [{ request: { method: 'GET', url: query } }]),
        });
        expect(res.status, `${role} ${type}`).toBeLessThan(500);
        expect(res.text, `${role} ${type}`).not.toContain('"resourceType":"AuditEvent"');
      }
    }
  });
});

describe('AuditEvents are append-only for every client, admin included', () => {
  it('create, update, conditional update, delete and conditional delete at the top level: refused for every role', async () => {
    for (const role of ['admin', 'practice', 'referrer'] as const) {
      const token = tokens[role];
      const attempts: [string, string, unknown?][] = [
        ['POST', '/fhir/AuditEvent', forged()],
        ['PUT', `/fhir/AuditEvent/${auditId}`, forged(auditId)],
        ['PUT', `/fhir/AuditEvent/new-${randomUUID()}`, forged()],
        ['PUT', '/fhir/AuditEvent?type=rest', forged()],
        ['DELETE', `/fhir/AuditEvent/${auditId}`],
        ['DELETE', '/fhir/AuditEvent?type=rest'],
        ['PATCH', `/fhir/AuditEvent/${auditId}`, [{ op: 'replace', path: '/outcome', value: '0' }]],
      ];
      for (const [method, path, body] of attempts) {
        const res = await t.fhir(method, path, { token, ...(body ? { body } : {}) });
        expect(res.status, `${role} ${method} ${path}`).toBeGreaterThanOrEqual(400);
        expect(res.status, `${role} ${method} ${path}`).toBeLessThan(500);
      }
    }
    await expectNoForgery();
  });

  it('batch and transaction entries writing AuditEvents, whatever the entry URL says: refused for every role', async () => {
    const entries = (): NonNullable<Bundle['entry']> => [
      { request: { method: 'POST', url: 'AuditEvent' }, resource: forged() },
      { request: { method: 'POST', url: 'AuditEvent?x=/fhir/Patient' }, resource: forged() },
      { request: { method: 'POST', url: `${PUBLIC_ORIGIN}/fhir/AuditEvent` }, resource: forged() },
      { request: { method: 'POST', url: '/fhir/AuditEvent' }, resource: forged() },
      { request: { method: 'POST', url: '%41uditEvent' }, resource: forged() },
      { request: { method: 'POST', url: 'Patient' }, resource: forged() },
      { request: { method: 'PUT', url: `AuditEvent/${auditId}` }, resource: forged(auditId) },
      { request: { method: 'PUT', url: `AuditEvent/${auditId}/_history` }, resource: forged(auditId) },
      { request: { method: 'PUT', url: `Patient/${auditId}` }, resource: forged(auditId) },
      { request: { method: 'PUT', url: 'AuditEvent?type=rest' }, resource: forged() },
      { request: { method: 'DELETE', url: `AuditEvent/${auditId}` } },
      { request: { method: 'DELETE', url: `AuditEvent/${auditId}/_history/1` } },
      { request: { method: 'DELETE', url: 'AuditEvent?type=rest' } },
    ];
    for (const role of ['admin', 'practice', 'referrer'] as const) {
      for (const type of ['batch', 'transaction'] as const) {
        for (const entry of entries()) {
          const res = await t.fhir('POST', '/fhir', { token: tokens[role], body: bundle(type, [entry]) });
          const label = `${role} ${type} ${entry.request?.method} ${entry.request?.url}`;
          expect(res.status, label).toBeLessThan(500);
          if (res.status === 200) {
            // A batch answers per entry: the entry itself must have been refused.
            const status = (res.body as Bundle).entry?.[0]?.response?.status ?? '';
            expect(Number(status.slice(0, 3)), label).toBeGreaterThanOrEqual(400);
          } else {
            expect(res.status, label).toBeGreaterThanOrEqual(400);
          }
        }
      }
    }
    await expectNoForgery();
  });

  it('a $process-message carrying an AuditEvent is refused for every role, admin included', async () => {
    for (const role of ['admin', 'practice', 'referrer'] as const) {
      const msg = toMessage(readFixture<Bundle>('Bundle-referral-ankle-sprain.json'));
      msg.entry = [...(msg.entry ?? []), { fullUrl: `urn:uuid:${randomUUID()}`, resource: forged() }];
      const res = await t.fhir('POST', '/fhir/$process-message', { token: tokens[role], body: msg });
      expect(res.status, role).toBeGreaterThanOrEqual(400);
      expect(res.status, role).toBeLessThan(500);
    }
    await expectNoForgery();
  });

  it('a refused AuditEvent write says what and where: 403 forbidden naming AuditEvent', async () => {
    const res = await t.fhir('POST', '/fhir/AuditEvent', { token: tokens.admin, body: forged() });
    expect(res.status).toBe(403);
    const issue = (res.body as { issue: { details: { coding: { code: string }[]; text: string } }[] })
      .issue[0];
    expect(issue?.details.coding[0]?.code).toBe('forbidden');
    expect(issue?.details.text).toMatch(/AuditEvent/);
  });
});
