import type { Bundle, BundleEntry, Resource, Subscription } from '@medplum/fhirtypes';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { patient, referralServiceRequest } from '../http/http-helpers.js';
import { readFixture, toMessage } from '../referral/referral-fixtures.js';
import { topicSubscription } from '../support/delivery-app.js';
import { publishDefinitions } from '../support/published.js';
import { errorCode, listenSecureApp, type ListeningSecureApp } from '../support/secure-app.js';
import { created } from './world.js';

/**
 * Issue 10: one request path. A request and the same request as a batch entry are classified by
 * the same `classify` and get the same permission decision: for every interaction kind and every
 * operation, with tokens of many scopes, the request at the top level is refused (403
 * insufficient-scope) exactly when the batch holding it as its one entry is. Entry URLs are tried
 * relative, absolute under the base, and under the base's path (`/fhir/...`).
 */
let t: ListeningSecureApp;
let full: string;
const tokens = new Map<string, string>();
let ids: { patient: string; subscription: string; episode: string };

async function tokenFor(scope: string): Promise<string> {
  let token = tokens.get(scope);
  if (!token) {
    token = await t.token('practice', scope);
    tokens.set(scope, token);
  }
  return token;
}

const newPatient = async () => created(t, full, patient());
const identifierQuery = (p: Resource): string => {
  const [identifier] = (p as { identifier?: { system?: string; value?: string }[] }).identifier ?? [];
  return `identifier=${encodeURIComponent(`${identifier?.system}|${identifier?.value}`)}`;
};

beforeAll(async () => {
  t = await listenSecureApp();
  await publishDefinitions(t.store);
  full = await t.token('practice');
  const practitioner = await created(t, full, {
    resourceType: 'Practitioner',
    name: [{ family: 'Parity' }],
  } as Resource);
  const p = await newPatient();
  const referral = await created(
    t,
    full,
    referralServiceRequest({ subject: `Patient/${p.id}`, requester: `Practitioner/${practitioner.id}` }),
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
  ids = {
    patient: p.id as string,
    subscription: subscription.id as string,
    episode: episodes.body.entry[0].resource.id,
  };
});
afterAll(() => t?.close());

interface Case {
  kind: string;
  /** A fresh request (called once per attempt, so writes have their own targets). */
  make: () => Promise<{ method: string; url: string; resource?: unknown; headers?: Record<string, string> }>;
  scopes: string[];
}

/** Every single permission on the types involved, all of them, another type's, and the wildcard read. */
const around = (...types: string[]): string[] => [
  ...types.flatMap((type) => ['c', 'r', 'u', 'd', 's'].map((p) => `system/${type}.${p}`)),
  types.map((type) => `system/${type}.cruds`).join(' '),
  'system/Practitioner.cruds',
  'system/*.r',
  'system/*.cruds',
];

const message = (): Bundle => toMessage(readFixture<Bundle>('Bundle-referral-knee-osteoarthritis.json'));
const messageTypes = [
  ...new Set((message().entry ?? []).slice(1).map((e) => e.resource?.resourceType as string)),
];

const cases: Case[] = [
  {
    kind: 'read',
    make: async () => ({ method: 'GET', url: `Patient/${ids.patient}` }),
    scopes: around('Patient'),
  },
  {
    kind: 'vread',
    make: async () => ({ method: 'GET', url: `Patient/${ids.patient}/_history/1` }),
    scopes: around('Patient'),
  },
  {
    kind: 'update',
    make: async () => {
      const p = await newPatient();
      return { method: 'PUT', url: `Patient/${p.id}`, resource: { ...p, meta: undefined, gender: 'other' } };
    },
    scopes: around('Patient'),
  },
  {
    kind: 'conditional update',
    make: async () => {
      const p = await newPatient();
      return {
        method: 'PUT',
        url: `Patient?${identifierQuery(p)}`,
        resource: { ...p, meta: undefined, gender: 'other' },
      };
    },
    scopes: around('Patient'),
  },
  {
    kind: 'delete',
    make: async () => ({ method: 'DELETE', url: `Patient/${(await newPatient()).id}` }),
    scopes: around('Patient'),
  },
  {
    kind: 'conditional delete',
    make: async () => ({ method: 'DELETE', url: `Patient?${identifierQuery(await newPatient())}` }),
    scopes: around('Patient'),
  },
  {
    kind: 'create',
    make: async () => ({ method: 'POST', url: 'Patient', resource: patient() }),
    scopes: around('Patient'),
  },
  {
    kind: 'search',
    make: async () => ({ method: 'GET', url: 'Patient?gender=female' }),
    scopes: around('Patient'),
  },
  {
    kind: 'history (instance)',
    make: async () => ({ method: 'GET', url: `Patient/${ids.patient}/_history` }),
    scopes: around('Patient'),
  },
  {
    kind: 'history (type)',
    make: async () => ({ method: 'GET', url: 'Patient/_history' }),
    scopes: around('Patient'),
  },
  {
    kind: 'history (system)',
    make: async () => ({ method: 'GET', url: '_history' }),
    scopes: around('Patient'),
  },
  {
    kind: 'read of a published Measure',
    make: async () => ({ method: 'GET', url: 'Measure/pt-referral-volume' }),
    scopes: around('Measure'),
  },
  {
    kind: '$validate (type)',
    make: async () => ({ method: 'POST', url: 'Patient/$validate', resource: patient() }),
    scopes: around('Patient'),
  },
  {
    kind: '$validate (instance)',
    make: async () => ({
      method: 'POST',
      url: `Patient/${ids.patient}/$validate`,
      resource: patient({ id: ids.patient }),
    }),
    scopes: around('Patient'),
  },
  {
    kind: '$process-message',
    make: async () => ({ method: 'POST', url: '$process-message', resource: message() }),
    scopes: [
      messageTypes.map((type) => `system/${type}.c`).join(' '),
      messageTypes
        .filter((type) => type !== 'Patient')
        .map((type) => `system/${type}.c`)
        .join(' '),
      'system/ServiceRequest.c',
      'system/*.c',
      'system/*.rus',
    ],
  },
  {
    kind: '$progress-report',
    make: async () => ({
      method: 'POST',
      url: `EpisodeOfCare/${ids.episode}/$progress-report`,
      resource: { resourceType: 'Parameters' },
    }),
    scopes: around('Communication', 'EpisodeOfCare'),
  },
  {
    kind: '$status',
    make: async () => ({ method: 'GET', url: `Subscription/${ids.subscription}/$status` }),
    scopes: around('Subscription'),
  },
  {
    kind: '$events',
    make: async () => ({ method: 'GET', url: `Subscription/${ids.subscription}/$events` }),
    scopes: around('Subscription'),
  },
  {
    kind: '$evaluate-measure',
    make: async () => ({
      method: 'GET',
      url: 'Measure/pt-referral-triage/$evaluate-measure?periodStart=2025-01-01&periodEnd=2025-01-31',
    }),
    scopes: around('Measure'),
  },
];

type Decision = 'allowed' | 'insufficient-scope';
const decisionOf = (res: { status: number; body: unknown }): Decision =>
  res.status === 403 && errorCode(res as never) === 'insufficient-scope' ? 'insufficient-scope' : 'allowed';

async function topLevel(c: Case, token: string): Promise<Decision> {
  const r = await c.make();
  const res = await t.fhir(r.method, `/fhir/${r.url}`, { token, body: r.resource, headers: r.headers });
  expect(res.status, `${r.method} ${r.url}: ${res.text.slice(0, 300)}`).toBeLessThan(500);
  return decisionOf(res);
}

/** The entry URL three ways: relative, absolute under the base, under the base's path. */
const entryUrls = (url: string): string[] => [url, `${t.fhirBase}/${url}`, `/fhir/${url}`];

async function asBatchEntry(c: Case, token: string, urlForm: number): Promise<Decision> {
  const r = await c.make();
  const entry: BundleEntry = {
    request: { method: r.method as 'GET', url: entryUrls(r.url)[urlForm] as string },
    ...(r.resource ? { resource: r.resource as Resource } : {}),
  };
  const res = await t.fhir('POST', '/fhir', {
    token,
    body: { resourceType: 'Bundle', type: 'batch', entry: [entry] },
  });
  expect(res.status, res.text.slice(0, 300)).toBeLessThan(500);
  return decisionOf(res);
}

describe.each(cases)('$kind', (c) => {
  it('gets the same permission decision at the top level and as a batch entry, for every scope', async () => {
    const decisions: Decision[] = [];
    for (const scope of c.scopes) {
      const token = await tokenFor(scope);
      const expected = await topLevel(c, token);
      decisions.push(expected);
      for (const form of [0, 1, 2]) {
        expect(await asBatchEntry(c, token, form), `${scope}, entry URL form ${form}`).toBe(expected);
      }
    }
    // The scopes tried both allow and refuse it: the comparison decided something.
    expect(new Set(decisions)).toEqual(new Set(['allowed', 'insufficient-scope']));
  });
});

describe('entry URLs that name no interaction', () => {
  it('still need the permission of their method: PUT Patient/[id]/_history is no way around update', async () => {
    const p = await newPatient();
    const token = await tokenFor('system/Patient.rs');
    const res = await t.fhir('POST', '/fhir', {
      token,
      body: {
        resourceType: 'Bundle',
        type: 'batch',
        entry: [
          {
            request: { method: 'PUT', url: `Patient/${p.id}/_history` },
            resource: { ...p, meta: undefined, gender: 'other' },
          },
        ],
      },
    });
    expect(decisionOf(res)).toBe('insufficient-scope');
    const stored = await t.fhir('GET', `/fhir/Patient/${p.id}`, { token: full });
    expect(stored.body.meta.versionId).toBe('1');
  });
});
