import { randomUUID } from 'node:crypto';
import type { AuditEvent, Bundle, Patient, Task } from '@medplum/fhirtypes';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { tokenRequestBody } from '../../src/auth/client-keys.js';
import { FAILED_ATTEMPTS_DETAIL } from '../../src/auth/audit-coalescing.js';
import { CLIENT_ID_SYSTEM } from '../../src/auth/audit-trail.js';
import { patient, referralServiceRequest } from '../http/http-helpers.js';
import { readFixture, toMessage } from '../referral/referral-fixtures.js';
import { topicSubscription } from '../support/delivery-app.js';
import { startSecureApp, type SecureApp } from '../support/secure-app.js';
import { buildWorld, type World } from './world.js';

/**
 * Acceptance (issue 5, item 4): distinctive canary values — patient names, identifiers, narrative,
 * query-string values, headers and the bodies of failing requests — go through every endpoint,
 * succeeding and failing, and none of them appears in any log line; and every FHIR request of the
 * run has its AuditEvent (the AuditTrail flushed, then the events counted by an admin and compared
 * with the requests made, status by status).
 */
let t: SecureApp;
let world: World;
const run = randomUUID().slice(0, 8);
/** Every canary; each is unlikely anywhere else (mixed case, run id). */
const CANARY = {
  family: `Qwyzzlethorp${run}`,
  given: `Xanthippe${run}`,
  mrn: `MRN-CANARY-${run}`,
  narrative: `Narrative canary ${run} lives at 12 Zebra Lane`,
  query: `Querycanary${run}`,
  badBody: `Badbodycanary${run}`,
  header: `Headercanary${run}`,
  note: `Notecanary${run} patient disclosed a fall`,
  secret: `Secretcanary${run}`,
  path: `pathcanary${run}`,
};
const canaries = Object.values(CANARY);
/** The count a coalesced failed-authentication AuditEvent carries; undefined on any other. */
const attemptsOf = (e: AuditEvent): number | undefined => {
  const detail = e.entity?.[0]?.detail?.find((d) => d.type === FAILED_ATTEMPTS_DETAIL);
  return detail ? Number(detail.valueString) : undefined;
};

const canaryPatient = (overrides: Partial<Patient> = {}): Patient =>
  patient({
    name: [{ family: CANARY.family, given: [CANARY.given] }],
    identifier: [
      { system: 'http://hospital.example.org/fhir/sid/mrn', value: `${CANARY.mrn}-${randomUUID()}` },
    ],
    text: { status: 'generated', div: `<div xmlns="http://www.w3.org/1999/xhtml">${CANARY.narrative}</div>` },
    ...overrides,
  });

beforeAll(async () => {
  // Events are written only by the explicit flush below: the count then covers exactly the run.
  t = await startSecureApp({ auditDelayMs: 3_600_000, bodyLimitBytes: 64 * 1024 });
  world = await buildWorld(t);
});
afterAll(async () => {
  await world?.close();
  await t?.close();
});

describe('a run through every endpoint, with canaries in everything', () => {
  const tokensSeen: string[] = [];

  it('exercises every interaction, succeeding and failing', async () => {
    const { admin, practice } = world;
    const a = world.a.token;
    tokensSeen.push(admin, practice, a);
    const narrow = await t.token('practice', 'system/Patient.r');
    tokensSeen.push(narrow);
    const statuses = new Set<number>();
    const send = async (method: string, path: string, o: Parameters<SecureApp['fhir']>[2] = {}) => {
      const res = await t.fhir(method, path, o);
      statuses.add(res.status);
      return res;
    };

    // Writes that succeed, full of canaries.
    const p = (await send('POST', '/fhir/Patient', { token: practice, body: canaryPatient() }))
      .body as Patient;
    const pa = (await send('POST', '/fhir/Patient', { token: a, body: canaryPatient() })).body as Patient;
    const referral = await send('POST', '/fhir/ServiceRequest', {
      token: a,
      body: referralServiceRequest(
        { subject: `Patient/${pa.id}`, requester: world.a.practitioner },
        { note: [{ text: CANARY.note }], reasonCode: [{ text: CANARY.narrative }] },
      ),
    });
    expect(referral.status, JSON.stringify(referral.body)).toBe(201);
    await send('PUT', `/fhir/Patient/${p.id}`, {
      token: practice,
      body: { ...p, meta: undefined, telecom: [{ system: 'phone', value: `555-${CANARY.header}` }] },
    });
    await send('PUT', `/fhir/Patient/${p.id}`, {
      token: practice,
      body: { ...p, meta: undefined },
      headers: { 'if-match': 'W/"1"' },
    }); // 412: stale version
    await send('POST', '/fhir/Patient', {
      token: practice,
      body: canaryPatient(),
      headers: { 'if-none-exist': `identifier=${CANARY.mrn}-none` },
    });
    await send('POST', '/fhir', {
      token: practice,
      body: {
        resourceType: 'Bundle',
        type: 'transaction',
        entry: [{ request: { method: 'POST', url: 'Patient' }, resource: canaryPatient() }],
      },
    });
    await send('POST', '/fhir', {
      token: practice,
      body: {
        resourceType: 'Bundle',
        type: 'batch',
        entry: [
          { request: { method: 'GET', url: `Patient?name=${CANARY.query}` } },
          {
            request: { method: 'POST', url: 'Patient' },
            resource: { resourceType: 'Patient', gender: CANARY.badBody },
          },
        ],
      },
    });
    const msg = toMessage(readFixture<Bundle>('Bundle-referral-ankle-sprain.json'));
    const msgPatient = msg.entry?.find((e) => e.resource?.resourceType === 'Patient')?.resource as Patient;
    msgPatient.name = [{ family: CANARY.family, given: [CANARY.given] }];
    await send('POST', '/fhir/$process-message', { token: practice, body: msg });
    await send('POST', '/fhir/Subscription', {
      token: a,
      body: {
        ...topicSubscription(`http://127.0.0.1:9/${CANARY.path}`, {
          filter: `Communication?recipient=${world.a.practitioner}`,
          secret: CANARY.secret,
        }),
        channel: {
          ...topicSubscription('http://127.0.0.1:9/hook').channel,
          endpoint: `http://127.0.0.1:9/${CANARY.path}`,
          header: [`Authorization: Bearer ${CANARY.header}`],
        },
      },
    });
    await send('POST', '/fhir/Subscription', {
      token: a,
      body: topicSubscription('http://127.0.0.1:9/x', {
        filter: `Communication?recipient=Practitioner/${CANARY.query}`,
      }),
    }); // 403: not its practitioner
    const task = (
      await send('GET', `/fhir/Task?focus=ServiceRequest/${referral.body.id}`, { token: practice })
    ).body.entry[0].resource as Task;
    await send('PUT', `/fhir/Task/${task.id}`, {
      token: practice,
      body: { ...task, status: 'rejected', note: [{ text: CANARY.note }] },
    }); // 422: a decline needs a coded reason
    await send('PUT', `/fhir/Task/${task.id}`, {
      token: practice,
      body: { ...task, status: 'accepted', note: [{ text: CANARY.note }] },
    });
    const episode = (
      await send('GET', `/fhir/EpisodeOfCare?incoming-referral=ServiceRequest/${referral.body.id}`, {
        token: practice,
      })
    ).body.entry[0].resource;
    await send('POST', `/fhir/EpisodeOfCare/${episode.id}/$progress-report`, { token: practice });
    await send('POST', `/fhir/EpisodeOfCare/${CANARY.path}/$progress-report`, { token: practice });

    // Reads, searches, history, operations.
    await send('GET', `/fhir/Patient/${p.id}`, { token: practice });
    await send('HEAD', `/fhir/Patient/${p.id}`, { token: practice });
    await send('GET', `/fhir/Patient/${p.id}/_history/1`, { token: practice });
    await send('GET', `/fhir/Patient/${p.id}/_history`, { token: practice });
    await send('GET', '/fhir/Patient/_history?_count=5', { token: practice });
    await send('GET', '/fhir/_history?_count=5', { token: admin });
    await send('GET', `/fhir/Patient?name=${CANARY.query}&identifier=${CANARY.mrn}`, { token: practice });
    await send('GET', `/fhir/Patient?family:exact=${CANARY.family}&_elements=name`, { token: practice });
    await send('POST', '/fhir/Patient/_search', {
      token: practice,
      body: `name=${CANARY.query}`,
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
    });
    await send('GET', `/fhir/Patient?${CANARY.query}=1`, {
      token: practice,
      headers: { prefer: 'handling=strict' },
    });
    await send('GET', `/fhir/Patient?birthdate=${CANARY.query}`, { token: practice });
    await send('GET', `/fhir/ServiceRequest?_include=ServiceRequest:subject&_revinclude=Task:focus`, {
      token: a,
    });
    await send('POST', '/fhir/Patient/$validate', {
      token: practice,
      body: canaryPatient({ gender: CANARY.badBody as 'other' }),
    });
    await send('POST', `/fhir/Patient/${p.id}/$validate`, {
      token: practice,
      body: canaryPatient({ id: p.id }),
    });
    await send('GET', `/fhir/${world.a.subscription}/$status`, { token: a });
    await send('GET', `/fhir/${world.a.subscription}/$events?content=full-resource`, { token: a });
    await send('GET', `/fhir/${world.a.subscription}/$events?eventsSinceNumber=${CANARY.query}`, {
      token: a,
    });
    await send('GET', '/fhir/metadata');
    await send('GET', '/fhir/AuditEvent?_count=1', { token: admin });

    // Failures of every kind, each carrying canaries.
    await send('POST', '/fhir/Patient', {
      token: practice,
      body: `{"resourceType":"Patient","name":"${CANARY.badBody}`,
    });
    await send('POST', '/fhir/Patient', {
      token: practice,
      body: { resourceType: 'Patient', birthDate: CANARY.badBody },
    });
    await send('POST', '/fhir/Patient', {
      token: practice,
      body: { resourceType: 'Patient', [CANARY.badBody]: 1 },
    });
    await send('POST', '/fhir/Patient', {
      token: practice,
      body: {
        resourceType: 'Patient',
        text: {
          status: 'generated',
          div: `<div xmlns="http://www.w3.org/1999/xhtml"><script>${CANARY.narrative}</script></div>`,
        },
      },
    });
    await send('POST', '/fhir/Patient', {
      token: practice,
      body: { resourceType: 'Observation', note: [{ text: CANARY.note }] },
    });
    await send('POST', '/fhir/Patient', {
      token: practice,
      body: {
        resourceType: 'Patient',
        __proto__x: CANARY.badBody,
        constructor: { prototype: CANARY.badBody },
      },
    });
    await send('POST', '/fhir/Patient', {
      token: practice,
      body: JSON.stringify(canaryPatient({ address: [{ text: 'x'.repeat(70 * 1024) }] })),
    }); // 413
    await send('POST', '/fhir/Patient', {
      token: practice,
      body: `<Patient><name value="${CANARY.badBody}"/></Patient>`,
      headers: { 'content-type': 'application/xml' },
    }); // 415
    await send('GET', `/fhir/Patient/${p.id}`, {
      token: practice,
      headers: { accept: 'application/fhir+xml' },
    }); // 406
    await send('GET', `/fhir/Patient?_format=xml&name=${CANARY.query}`, { token: practice });
    await send('PATCH', `/fhir/Patient/${p.id}`, {
      token: practice,
      body: [{ op: 'add', path: '/x', value: CANARY.badBody }],
    });
    await send('GET', `/fhir/Patient/${CANARY.path}`, { token: practice });
    await send('GET', `/fhir/Patient/${CANARY.path}/_history/${CANARY.query}`, { token: practice });
    await send('GET', `/fhir/${CANARY.family}/x`, { token: practice });
    await send('GET', `/fhir/Patient/${CANARY.path}/${CANARY.query}/${CANARY.badBody}`, { token: practice });
    await send('GET', `/fhir/Patient/%E0%A4%A${CANARY.path}`, { token: practice });
    await send('POST', '/fhir/ServiceRequest', {
      token: a,
      body: referralServiceRequest(
        { subject: `Patient/${pa.id}`, requester: world.b.practitioner },
        { note: [{ text: CANARY.note }] },
      ),
    }); // 403: not its practitioner
    await send('POST', '/fhir/ServiceRequest', {
      token: practice,
      body: referralServiceRequest({ subject: `Patient/${CANARY.path}`, requester: world.a.practitioner }),
    }); // 422: does not resolve
    await send('DELETE', `/fhir/Patient/${p.id}`, { token: practice });
    await send('GET', `/fhir/Patient/${p.id}`, { token: practice }); // 410
    await send('GET', `/fhir/Patient?name=${CANARY.query}`, { token: narrow }); // 403 insufficient scope
    await send('POST', '/fhir/Patient', { token: narrow, body: canaryPatient() }); // 403
    await send('GET', '/fhir/AuditEvent', { token: practice }); // 403 forbidden
    await send('GET', `/fhir/Patient?name=${CANARY.query}`); // 401
    await send('POST', '/fhir/Patient', { body: canaryPatient() }); // 401
    await send('POST', '/fhir/Patient', {
      token: `${CANARY.header}.${CANARY.header}.x`,
      body: canaryPatient(),
    }); // 401
    await send('GET', `/fhir/${world.b.referrals[0]}`, { token: a }); // 404 isolation
    await send('DELETE', `/fhir/Patient?name=${CANARY.query}`, { token: practice });

    // The token endpoint too, with canaries in refused requests.
    await t.tokenRequest({ grant_type: CANARY.badBody });
    await t.tokenRequest(tokenRequestBody(`${CANARY.header}.${CANARY.header}.${CANARY.header}`));
    await t.tokenRequest(tokenRequestBody(await t.assertion('practice'), `system/${CANARY.query}.rs`));

    expect([...statuses].sort()).toEqual(
      expect.arrayContaining([200, 201, 204, 400, 401, 403, 404, 405, 406, 410, 412, 413, 415, 422]),
    );
  });

  it('no canary, bearer token or client assertion appears in any log line', () => {
    expect(t.logs.length).toBeGreaterThan(t.sent.length);
    const text = JSON.stringify(t.logs);
    for (const canary of canaries) {
      expect(text.toLowerCase(), canary).not.toContain(canary.toLowerCase());
    }
    for (const token of tokensSeen) {
      expect(text).not.toContain(token.split('.')[2] as string);
    }
    // What is logged per request: id, method, route pattern, status, latency — nothing else.
    for (const line of t.logs.filter((l) => l.msg === 'request')) {
      expect(Object.keys(line).sort()).toEqual(
        ['level', 'method', 'ms', 'msg', 'requestId', 'route', 'service', 'status', 'time'].sort(),
      );
      expect(String(line.route)).not.toContain('?');
    }
  });

  it('every FHIR request of the run has exactly one AuditEvent, with its outcome', async () => {
    const requests = t.sent.filter((r) => r.path.startsWith('/fhir'));
    expect(requests.length).toBeGreaterThan(80);
    await t.audit.flush();
    expect(t.logs.filter((l) => l.msg === 'could not write AuditEvents')).toEqual([]);

    // Counted by outcome, with _summary=count (success first: these queries are audited too, later).
    const counts: Record<string, number> = {};
    for (const outcome of ['0', '4', '8']) {
      const res = await t.fhir('GET', `/fhir/AuditEvent?type=rest&outcome=${outcome}&_summary=count`, {
        token: world.admin,
      });
      expect(res.status).toBe(200);
      counts[outcome] = res.body.total;
    }
    // Failed authentications are coalesced (issue 11, item 10): one row per address, status and
    // window, carrying the count of attempts (`failed-attempts`); every other request has its own.
    const failedRows = (
      (await t.fhir('GET', '/fhir/AuditEvent?type=rest&outcome=4&_count=1000', { token: world.admin }))
        .body as Bundle
    ).entry?.filter((e) => attemptsOf(e.resource as AuditEvent) !== undefined).length;
    const expected = {
      '0': requests.filter((r) => r.status < 400).length,
      '4':
        requests.filter((r) => r.status >= 400 && r.status < 500 && r.status !== 401).length +
        (failedRows ?? 0),
      '8': requests.filter((r) => r.status >= 500).length,
    };
    expect(failedRows).toBeGreaterThan(0);
    expect(counts).toEqual(expected);

    // And status by status: the multiset of `HTTP nnn` equals the statuses the client received.
    const events: AuditEvent[] = [];
    let path: string | undefined = '/fhir/AuditEvent?type=rest&_count=200&_sort=date';
    while (path && events.length < 10_000) {
      const page = await t.fhir('GET', path, { token: world.admin });
      expect(page.status).toBe(200);
      events.push(...((page.body as Bundle).entry ?? []).map((e) => e.resource as AuditEvent));
      const next = (page.body as Bundle).link?.find((l) => l.relation === 'next')?.url;
      path = next ? next.slice(next.indexOf('/fhir')) : undefined;
    }
    // A coalesced row stands for as many requests as its count says.
    const weight = (e: AuditEvent): number => attemptsOf(e) ?? 1;
    expect(events.reduce((n, e) => n + weight(e), 0)).toBe(requests.length);
    const inRun = events;
    const tally = (list: [string, number][]) =>
      list.reduce<Record<string, number>>((m, [s, n]) => ({ ...m, [s]: (m[s] ?? 0) + n }), {});
    expect(tally(inRun.map((e) => [e.outcomeDesc as string, weight(e)]))).toEqual(
      tally(requests.map((r) => [`HTTP ${r.status}`, 1])),
    );
    // Who: the client for authenticated requests, 'unauthenticated' for the refused ones.
    const anonymous = inRun
      .filter((e) => e.agent?.[0]?.who?.display === 'unauthenticated')
      .reduce((n, e) => n + weight(e), 0);
    expect(anonymous).toBe(requests.filter((r) => r.status === 401 || r.path === '/fhir/metadata').length);
    const byClient = inRun.map((e) => e.agent?.[0]?.who?.identifier).filter(Boolean);
    expect(byClient.every((i) => i?.system === CLIENT_ID_SYSTEM)).toBe(true);
    expect(new Set(byClient.map((i) => i?.value))).toEqual(
      new Set(['admin', 'practice', 'referrer-a', 'referrer-b']),
    );
  });

  it('AuditEvents name what was touched and the patient, never the request body or query', async () => {
    const res = await t.fhir('GET', '/fhir/AuditEvent?type=rest&_count=1000', { token: world.admin });
    const text = res.text;
    for (const canary of [
      CANARY.family,
      CANARY.given,
      CANARY.narrative,
      CANARY.note,
      CANARY.badBody,
      CANARY.secret,
      CANARY.query,
    ]) {
      expect(text, canary).not.toContain(canary);
    }
    const read = ((res.body as Bundle).entry ?? [])
      .map((e) => e.resource as AuditEvent)
      .find((e) => e.subtype?.[0]?.code === 'read' && e.entity?.[0]?.what?.reference?.startsWith('Patient/'));
    expect(read?.entity?.map((e) => e.what?.reference)).toEqual([
      read?.entity?.[0]?.what?.reference,
      read?.entity?.[0]?.what?.reference,
    ]);
    expect(read?.entity?.[1]?.role?.code).toBe('1');
    expect(read?.agent?.[0]?.network?.address).toBeTruthy();
    expect(read?.recorded).toBeTruthy();
  });
});

describe('AuditEvents for refused requests', () => {
  it('a 429 is audited too', async () => {
    const limited = await startSecureApp({ rateLimitPerMinute: 2, auditDelayMs: 3_600_000 });
    try {
      const token = await limited.token('practice');
      const admin = await limited.token('admin');
      const statuses: number[] = [];
      for (let i = 0; i < 3; i++)
        statuses.push((await limited.fhir('GET', '/fhir/Patient', { token })).status);
      expect(statuses).toEqual([200, 200, 429]);
      await limited.audit.flush();
      const res = await limited.fhir('GET', '/fhir/AuditEvent?type=rest&_count=10', { token: admin });
      const descriptions = ((res.body as Bundle).entry ?? []).map(
        (e) => (e.resource as AuditEvent).outcomeDesc,
      );
      expect(descriptions.sort()).toEqual(['HTTP 200', 'HTTP 200', 'HTTP 429']);
    } finally {
      await limited.close();
    }
  });
});
