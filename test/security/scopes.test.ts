import type { Bundle, Resource, Subscription, Task } from '@medplum/fhirtypes';
import type { Response } from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { expectOutcome, patient, referralServiceRequest } from '../http/http-helpers.js';
import { readFixture, toMessage } from '../referral/referral-fixtures.js';
import { topicSubscription } from '../support/delivery-app.js';
import { startSecureApp, type SecureApp } from '../support/secure-app.js';
import { created } from './world.js';

/**
 * Acceptance (issue 5, item 3): every interaction is refused (403, OperationOutcome with the code
 * insufficient-scope) by a token without its SMART scope, and allowed with it; the v1 forms
 * (system/*.read, system/ServiceRequest.write) work as their v2 equivalents. The client is a
 * practice client registered with system/*.cruds, so only the token's (narrowed) scope decides;
 * a refused write leaves no trace.
 */
let t: SecureApp;
let full: string;
const tokens = new Map<string, string>();

/** A practice token narrowed to `scope` (one per scope string, reused). */
async function tokenFor(scope: string): Promise<string> {
  let token = tokens.get(scope);
  if (!token) {
    token = await t.token('practice', scope);
    tokens.set(scope, token);
  }
  return token;
}

/** Versions ever written of these types (admin's view): a refused request must not change it. */
async function versions(types: string[]): Promise<number> {
  let total = 0;
  for (const type of types) {
    const res = await t.fhir('GET', `/fhir/${type}/_history?_count=0`, { token: full });
    expect(res.status).toBe(200);
    total += (res.body as Bundle).total as number;
  }
  return total;
}

interface Row {
  interaction: string;
  /** The request; called once for the refusal and once for the success, so it can make fresh targets. */
  request: () => Promise<{ method: string; path: string; body?: unknown; headers?: Record<string, string> }>;
  allow: string;
  deny: string[];
  status: number;
  /** Types a refused request must not have written to. */
  writes?: string[];
}

let ids: {
  patient: string;
  practitioner: string;
  subscription: string;
  episode: string;
};

const newPatient = async (): Promise<string> => (await created(t, full, patient())).id as string;

beforeAll(async () => {
  t = await startSecureApp();
  full = await t.token('practice');
  const practitioner = await created(t, full, {
    resourceType: 'Practitioner',
    name: [{ family: 'Scope' }],
  } as Resource);
  const p = await newPatient();
  const referral = await created(
    t,
    full,
    referralServiceRequest({ subject: `Patient/${p}`, requester: `Practitioner/${practitioner.id}` }),
  );
  const subscription = await created<Subscription>(
    t,
    full,
    topicSubscription('http://127.0.0.1:9/hook', {
      filter: `Communication?recipient=Practitioner/${practitioner.id}`,
    }),
  );
  const episodes = await t.fhir(
    'GET',
    `/fhir/EpisodeOfCare?incoming-referral=ServiceRequest/${referral.id}`,
    {
      token: full,
    },
  );
  const tasks = await t.fhir('GET', `/fhir/Task?focus=ServiceRequest/${referral.id}`, { token: full });
  const task = tasks.body.entry[0].resource as Task;
  await created(t, full, { ...task, status: 'accepted' }, `/fhir/Task/${task.id}`, 'PUT');
  ids = {
    patient: p,
    practitioner: practitioner.id as string,
    subscription: subscription.id as string,
    episode: episodes.body.entry[0].resource.id,
  };
});
afterAll(() => t.close());

const message = (): Bundle => {
  const bundle = readFixture<Bundle>('Bundle-referral-knee-osteoarthritis.json');
  return toMessage(bundle);
};
const messageTypes = [
  ...new Set(
    readFixture<Bundle>('Bundle-referral-knee-osteoarthritis.json').entry?.map(
      (e) => e.resource?.resourceType as string,
    ),
  ),
];

const rows: Row[] = [
  {
    interaction: 'create',
    request: async () => ({ method: 'POST', path: '/fhir/Patient', body: patient() }),
    allow: 'system/Patient.c',
    deny: ['system/Patient.rus', 'system/Practitioner.c'],
    status: 201,
    writes: ['Patient'],
  },
  {
    interaction: 'read',
    request: async () => ({ method: 'GET', path: `/fhir/Patient/${ids.patient}` }),
    allow: 'system/Patient.r',
    deny: ['system/Patient.cuds', 'system/Practitioner.r'],
    status: 200,
  },
  {
    interaction: 'vread',
    request: async () => ({ method: 'GET', path: `/fhir/Patient/${ids.patient}/_history/1` }),
    allow: 'system/Patient.r',
    deny: ['system/Patient.cuds'],
    status: 200,
  },
  {
    interaction: 'update',
    request: async () => {
      const id = await newPatient();
      return { method: 'PUT', path: `/fhir/Patient/${id}`, body: patient({ id, gender: 'other' }) };
    },
    allow: 'system/Patient.u',
    deny: ['system/Patient.crds'],
    status: 200,
    writes: ['Patient'],
  },
  {
    interaction: 'conditional update',
    request: async () => {
      const p = await created(t, full, patient());
      const [identifier] = p.identifier ?? [];
      return {
        method: 'PUT',
        path: `/fhir/Patient?identifier=${encodeURIComponent(`${identifier?.system}|${identifier?.value}`)}`,
        body: { ...p, meta: undefined, gender: 'other' },
      };
    },
    allow: 'system/Patient.us',
    deny: ['system/Patient.crds'],
    status: 200,
    writes: ['Patient'],
  },
  {
    interaction: 'delete',
    request: async () => ({ method: 'DELETE', path: `/fhir/Patient/${await newPatient()}` }),
    allow: 'system/Patient.d',
    deny: ['system/Patient.crus'],
    status: 204,
    writes: ['Patient'],
  },
  {
    interaction: 'search (GET)',
    request: async () => ({ method: 'GET', path: '/fhir/Patient?gender=female' }),
    allow: 'system/Patient.s',
    deny: ['system/Patient.crud'],
    status: 200,
  },
  {
    interaction: 'search (POST _search)',
    request: async () => ({
      method: 'POST',
      path: '/fhir/Patient/_search',
      body: 'gender=female',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
    }),
    allow: 'system/Patient.s',
    deny: ['system/Patient.crud'],
    status: 200,
  },
  {
    interaction: 'history (instance)',
    request: async () => ({ method: 'GET', path: `/fhir/Patient/${ids.patient}/_history` }),
    allow: 'system/Patient.r',
    deny: ['system/Patient.cuds'],
    status: 200,
  },
  {
    interaction: 'history (type)',
    request: async () => ({ method: 'GET', path: '/fhir/Patient/_history' }),
    allow: 'system/Patient.r',
    deny: ['system/Patient.cuds'],
    status: 200,
  },
  {
    interaction: 'history (system)',
    request: async () => ({ method: 'GET', path: '/fhir/_history' }),
    allow: 'system/*.r',
    deny: ['system/Patient.cruds system/ServiceRequest.cruds', 'system/*.cuds'],
    status: 200,
  },
  {
    interaction: 'batch entries (each entry’s permission)',
    request: async () => ({
      method: 'POST',
      path: '/fhir',
      body: {
        resourceType: 'Bundle',
        type: 'batch',
        entry: [
          { request: { method: 'POST', url: 'Patient' }, resource: patient() },
          { request: { method: 'GET', url: `Practitioner/${ids.practitioner}` } },
          { request: { method: 'GET', url: 'ServiceRequest?status=active' } },
        ],
      },
    }),
    allow: 'system/Patient.c system/Practitioner.r system/ServiceRequest.s',
    deny: [
      'system/Patient.c system/Practitioner.r',
      'system/Patient.c system/ServiceRequest.s',
      'system/Practitioner.r system/ServiceRequest.s',
      'system/Patient.c system/Practitioner.s system/ServiceRequest.r',
    ],
    status: 200,
    writes: ['Patient'],
  },
  {
    interaction: 'transaction entries (each entry’s permission)',
    request: async () => {
      const [a, b] = [await newPatient(), await newPatient()];
      return {
        method: 'POST',
        path: '/fhir',
        body: {
          resourceType: 'Bundle',
          type: 'transaction',
          entry: [
            {
              request: { method: 'PUT', url: `Patient/${a}` },
              resource: patient({ id: a, gender: 'other' }),
            },
            { request: { method: 'DELETE', url: `Patient/${b}` } },
          ],
        },
      };
    },
    allow: 'system/Patient.ud',
    deny: ['system/Patient.u', 'system/Patient.crs'],
    status: 200,
    writes: ['Patient'],
  },
  {
    interaction: 'batch entry whose query names /fhir/ (the entry type decides)',
    request: async () => ({
      method: 'POST',
      path: '/fhir',
      body: {
        resourceType: 'Bundle',
        type: 'batch',
        entry: [{ request: { method: 'GET', url: 'ServiceRequest?foo=/fhir/Patient' } }],
      },
    }),
    allow: 'system/ServiceRequest.s',
    deny: ['system/Patient.rs'],
    status: 200,
  },
  {
    interaction: '$validate (type)',
    request: async () => ({ method: 'POST', path: '/fhir/Patient/$validate', body: patient() }),
    allow: 'system/Patient.r',
    deny: ['system/Patient.cuds'],
    status: 200,
  },
  {
    interaction: '$validate (instance)',
    request: async () => ({
      method: 'POST',
      path: `/fhir/Patient/${ids.patient}/$validate`,
      body: patient({ id: ids.patient }),
    }),
    allow: 'system/Patient.r',
    deny: ['system/Patient.cuds'],
    status: 200,
  },
  {
    interaction: '$process-message (create on every type the message stores)',
    request: async () => ({ method: 'POST', path: '/fhir/$process-message', body: message() }),
    allow: messageTypes.map((type) => `system/${type}.c`).join(' '),
    deny: [
      'system/ServiceRequest.c',
      messageTypes
        .filter((type) => type !== 'Observation')
        .map((type) => `system/${type}.c`)
        .join(' '),
      messageTypes
        .filter((type) => type !== 'ServiceRequest')
        .map((type) => `system/${type}.cruds`)
        .join(' '),
    ],
    status: 200,
    writes: messageTypes,
  },
  {
    interaction: '$status',
    request: async () => ({ method: 'GET', path: `/fhir/Subscription/${ids.subscription}/$status` }),
    allow: 'system/Subscription.r',
    deny: ['system/Subscription.cuds'],
    status: 200,
  },
  {
    interaction: '$events',
    request: async () => ({ method: 'GET', path: `/fhir/Subscription/${ids.subscription}/$events` }),
    allow: 'system/Subscription.r',
    deny: ['system/Subscription.cuds'],
    status: 200,
  },
  {
    interaction: '$progress-report',
    request: async () => ({ method: 'POST', path: `/fhir/EpisodeOfCare/${ids.episode}/$progress-report` }),
    allow: 'system/Communication.c',
    deny: ['system/EpisodeOfCare.cruds system/Communication.rus'],
    status: 200,
    writes: ['Communication'],
  },
];

describe.each(rows)('$interaction', (row) => {
  it(`is refused without its scope: 403 insufficient-scope, nothing written`, async () => {
    for (const scope of row.deny) {
      const r = await row.request();
      const before = row.writes ? await versions(row.writes) : 0;
      const res = await t.fhir(r.method, r.path, {
        token: await tokenFor(scope),
        body: r.body,
        headers: r.headers,
      });
      const outcome = expectOutcome(res, 403, 'forbidden', 'insufficient-scope');
      expect(outcome.issue?.[0]?.details?.text).toMatch(/scopes do not allow/);
      if (row.writes) expect(await versions(row.writes), scope).toBe(before);
    }
  });

  it(`is allowed with ${row.allow}`, async () => {
    const r = await row.request();
    const res: Response = await t.fhir(r.method, r.path, {
      token: await tokenFor(row.allow),
      body: r.body,
      headers: r.headers,
    });
    expect(res.status, JSON.stringify(res.body)).toBe(row.status);
  });
});

describe('scope forms', () => {
  it('v1 system/*.read reads and searches any type, and writes nothing', async () => {
    const token = await tokenFor('system/*.read');
    expect((await t.fhir('GET', `/fhir/Patient/${ids.patient}`, { token })).status).toBe(200);
    expect((await t.fhir('GET', '/fhir/ServiceRequest', { token })).status).toBe(200);
    expect((await t.fhir('GET', `/fhir/Subscription/${ids.subscription}/$status`, { token })).status).toBe(
      200,
    );
    expect((await t.fhir('GET', '/fhir/_history?_count=1', { token })).status).toBe(200);
    for (const [method, path, body] of [
      ['POST', '/fhir/Patient', patient()],
      ['PUT', `/fhir/Patient/${ids.patient}`, patient({ id: ids.patient })],
      ['DELETE', `/fhir/Patient/${ids.patient}`, undefined],
    ] as const) {
      expectOutcome(await t.fhir(method, path, { token, body }), 403, 'forbidden', 'insufficient-scope');
    }
  });

  it('v1 system/ServiceRequest.write creates and updates referrals, and reads nothing', async () => {
    const token = await tokenFor('system/ServiceRequest.write');
    const referral = await t.fhir('POST', '/fhir/ServiceRequest', {
      token,
      body: referralServiceRequest({
        subject: `Patient/${ids.patient}`,
        requester: `Practitioner/${ids.practitioner}`,
      }),
    });
    expect(referral.status, JSON.stringify(referral.body)).toBe(201);
    const updated = await t.fhir('PUT', `/fhir/ServiceRequest/${referral.body.id}`, {
      token,
      body: { ...referral.body, meta: undefined, note: [{ text: 'Please call before the first visit' }] },
    });
    expect(updated.status).toBe(200);
    for (const path of [
      `/fhir/ServiceRequest/${referral.body.id}`,
      '/fhir/ServiceRequest',
      `/fhir/Patient/${ids.patient}`,
    ]) {
      expectOutcome(await t.fhir('GET', path, { token }), 403, 'forbidden', 'insufficient-scope');
    }
    expectOutcome(
      await t.fhir('POST', '/fhir/Patient', { token, body: patient() }),
      403,
      'forbidden',
      'insufficient-scope',
    );
  });

  it('v1 system/Patient.* is every permission on Patient, and only on Patient', async () => {
    const token = await tokenFor('system/Patient.*');
    const p = await t.fhir('POST', '/fhir/Patient', { token, body: patient() });
    expect(p.status).toBe(201);
    expect((await t.fhir('GET', `/fhir/Patient/${p.body.id}`, { token })).status).toBe(200);
    expect((await t.fhir('GET', '/fhir/Patient', { token })).status).toBe(200);
    expect((await t.fhir('DELETE', `/fhir/Patient/${p.body.id}`, { token })).status).toBe(204);
    expectOutcome(
      await t.fhir('GET', '/fhir/ServiceRequest', { token }),
      403,
      'forbidden',
      'insufficient-scope',
    );
  });

  it('a token carries only the scopes asked for, even when the client is registered for more', async () => {
    const token = await tokenFor('system/Practitioner.rs');
    expect((await t.fhir('GET', `/fhir/Practitioner/${ids.practitioner}`, { token })).status).toBe(200);
    expectOutcome(
      await t.fhir('GET', `/fhir/Patient/${ids.patient}`, { token }),
      403,
      'forbidden',
      'insufficient-scope',
    );
  });

  it('AuditEvents need the admin role on top of a scope: practice with system/*.cruds gets 403 forbidden', async () => {
    expectOutcome(await t.fhir('GET', '/fhir/AuditEvent', { token: full }), 403, 'forbidden', 'forbidden');
    const admin = await t.token('admin', 'system/AuditEvent.rs');
    expect((await t.fhir('GET', '/fhir/AuditEvent', { token: admin })).status).toBe(200);
    const adminWithout = await t.token('admin', 'system/Patient.rs');
    expectOutcome(
      await t.fhir('GET', '/fhir/AuditEvent', { token: adminWithout }),
      403,
      'forbidden',
      'insufficient-scope',
    );
  });

  it('a message cannot smuggle in what the token may not create (an AuditEvent, a Subscription)', async () => {
    const base = message();
    const scope = messageTypes.map((type) => `system/${type}.c`).join(' ');
    for (const extra of [
      {
        resourceType: 'AuditEvent',
        type: { code: 'rest' },
        recorded: '2026-01-01T00:00:00Z',
        agent: [],
        source: { observer: { display: 'x' } },
      },
      topicSubscription('http://127.0.0.1:9/hook'),
    ]) {
      const body = {
        ...base,
        entry: [...(base.entry ?? []), { fullUrl: `urn:uuid:${crypto.randomUUID()}`, resource: extra }],
      };
      const res = await t.fhir('POST', '/fhir/$process-message', { token: await tokenFor(scope), body });
      expectOutcome(res, 403, 'forbidden', 'insufficient-scope');
    }
  });
});
