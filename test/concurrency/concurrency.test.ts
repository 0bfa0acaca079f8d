import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Bundle, EpisodeOfCare, OperationOutcome, Patient, Resource, Task } from '@medplum/fhirtypes';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { listenTestApp, type ListeningApp } from '../support/listen.js';

/**
 * Acceptance: 200 concurrent identical conditional creates -> exactly one resource; 20 concurrent
 * PUTs with the same If-Match -> exactly one succeeds, the rest 412, history without gaps. Real
 * concurrent HTTP requests (Node's fetch, keep-alive) against a listening server, on a file-backed
 * SQLite database (WAL, a writer and a reader connection) and on an in-memory one.
 */
interface Reply<T = Resource> {
  status: number;
  body: T;
  etag: string | null;
}

const tempDir = mkdtempSync(join(tmpdir(), 'fhir-concurrency-'));
afterAll(() => rmSync(tempDir, { recursive: true, force: true }));

const databases = [
  { name: 'file-backed SQLite (WAL)', file: join(tempDir, 'concurrency.sqlite') },
  { name: 'in-memory SQLite', file: undefined },
];

describe.each(databases)('concurrent writes on $name', ({ file }) => {
  let t: ListeningApp;

  beforeAll(async () => {
    t = await listenTestApp({ databaseUrl: file ? `sqlite:${file}` : 'sqlite::memory:' });
  });
  afterAll(() => t.close());

  const call = async <T = Resource>(
    method: string,
    path: string,
    body?: unknown,
    headers: Record<string, string> = {},
  ): Promise<Reply<T>> => {
    const res = await fetch(`${t.fhirBase}/${path}`, {
      method,
      headers: {
        accept: 'application/fhir+json',
        ...(body === undefined ? {} : { 'content-type': 'application/fhir+json' }),
        ...headers,
      },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await res.text();
    return {
      status: res.status,
      body: (text ? JSON.parse(text) : undefined) as T,
      etag: res.headers.get('etag'),
    };
  };

  const count = (statuses: number[]): Record<number, number> => {
    const out: Record<number, number> = {};
    for (const s of statuses) out[s] = (out[s] ?? 0) + 1;
    return out;
  };

  const versionsOf = async (type: string, id: string): Promise<string[]> => {
    const history = await call<Bundle>('GET', `${type}/${id}/_history?_count=1000`);
    expect(history.status).toBe(200);
    expect(history.body.total).toBe(history.body.entry?.length);
    return (history.body.entry ?? []).map((e) => e.resource?.meta?.versionId as string);
  };

  const patientsWith = async (identifier: string): Promise<Bundle> => {
    const found = await call<Bundle>(
      'GET',
      `Patient?${new URLSearchParams({ identifier, _total: 'accurate' })}`,
    );
    expect(found.status).toBe(200);
    return found.body;
  };

  const uniqueMrn = (): string => `urn:example:mrn|${crypto.randomUUID()}`;

  it('writes through a WAL journal when the database is a file', () => {
    if (file) {
      expect(existsSync(`${file}-wal`)).toBe(true);
    } else {
      expect(t.store.dialect).toBe('sqlite');
    }
  });

  it('200 concurrent identical conditional creates make exactly one resource', async () => {
    const identifier = uniqueMrn();
    const [system, value] = identifier.split('|') as [string, string];
    const patient: Patient = {
      resourceType: 'Patient',
      identifier: [{ system, value }],
      name: [{ family: 'Once' }],
    };

    const replies = await Promise.all(
      Array.from({ length: 200 }, () =>
        call<Patient>('POST', 'Patient', patient, { 'if-none-exist': `identifier=${identifier}` }),
      ),
    );

    expect(count(replies.map((r) => r.status))).toEqual({ 201: 1, 200: 199 });
    const ids = new Set(replies.map((r) => r.body.id));
    expect(ids.size).toBe(1);
    const [id] = [...ids] as [string];
    expect(replies.every((r) => r.etag === 'W/"1"')).toBe(true);
    const found = await patientsWith(identifier);
    expect(found.total).toBe(1);
    expect(found.entry?.[0]?.resource?.id).toBe(id);
    expect(await versionsOf('Patient', id)).toEqual(['1']);
  });

  it('20 concurrent PUTs with the same If-Match: one succeeds, 19 get 412 with an OperationOutcome', async () => {
    const created = await call<Patient>('POST', 'Patient', {
      resourceType: 'Patient',
      name: [{ family: 'Race' }],
    });
    expect(created.status).toBe(201);
    const id = created.body.id as string;

    const replies = await Promise.all(
      Array.from({ length: 20 }, (_, i) =>
        call<Patient | OperationOutcome>(
          'PUT',
          `Patient/${id}`,
          { resourceType: 'Patient', id, name: [{ family: 'Race', given: [`writer-${i}`] }] },
          { 'if-match': 'W/"1"' },
        ),
      ),
    );

    expect(count(replies.map((r) => r.status))).toEqual({ 200: 1, 412: 19 });
    const winner = replies.find((r) => r.status === 200) as Reply<Patient>;
    expect(winner.body.meta?.versionId).toBe('2');
    expect(winner.etag).toBe('W/"2"');
    for (const loser of replies.filter((r) => r.status === 412)) {
      const outcome = loser.body as OperationOutcome;
      expect(outcome.resourceType).toBe('OperationOutcome');
      expect(outcome.issue?.[0]?.code).toBe('conflict');
      expect(outcome.issue?.[0]?.details?.coding?.[0]?.code).toBe('precondition-failed');
    }
    const current = await call<Patient>('GET', `Patient/${id}`);
    expect(current.body.name).toEqual(winner.body.name);
    expect(await versionsOf('Patient', id)).toEqual(['2', '1']);
  });

  it('20 concurrent optimistic writers that retry on 412 all land, with history 1..21 and no gaps', async () => {
    const created = await call<Patient>('POST', 'Patient', {
      resourceType: 'Patient',
      name: [{ family: 'Counter' }],
    });
    const id = created.body.id as string;

    const writer = async (i: number): Promise<number> => {
      for (let attempt = 1; attempt <= 100; attempt++) {
        const current = await call<Patient>('GET', `Patient/${id}`);
        const put = await call<Patient>(
          'PUT',
          `Patient/${id}`,
          { ...current.body, name: [...(current.body.name ?? []), { family: 'Counter', given: [`w${i}`] }] },
          { 'if-match': current.etag as string },
        );
        if (put.status === 200) return attempt;
        expect(put.status).toBe(412);
      }
      throw new Error(`writer ${i} never succeeded`);
    };
    const attempts = await Promise.all(Array.from({ length: 20 }, (_, i) => writer(i)));
    expect(attempts.some((a) => a > 1)).toBe(true);

    const versions = await versionsOf('Patient', id);
    expect(versions).toEqual(Array.from({ length: 21 }, (_, i) => String(21 - i)));
    // No lost update: every writer's change is in the final version, exactly once.
    const final = await call<Patient>('GET', `Patient/${id}`);
    const givens = (final.body.name ?? []).flatMap((n) => n.given ?? []).sort();
    expect(givens).toEqual(Array.from({ length: 20 }, (_, i) => `w${i}`).sort());
  });

  it('concurrent transaction Bundles that conditionally create the same Patient make one Patient', async () => {
    const identifier = uniqueMrn();
    const [system, value] = identifier.split('|') as [string, string];
    const referrer = await call<Resource>('POST', 'Practitioner', {
      resourceType: 'Practitioner',
      name: [{ family: 'Referrer' }],
    });
    expect(referrer.status).toBe(201);
    const requester = `Practitioner/${referrer.body.id}`;
    const transaction = (): Bundle => {
      const patientUrn = `urn:uuid:${crypto.randomUUID()}`;
      return {
        resourceType: 'Bundle',
        type: 'transaction',
        entry: [
          {
            fullUrl: patientUrn,
            resource: { resourceType: 'Patient', identifier: [{ system, value }] },
            request: { method: 'POST', url: 'Patient', ifNoneExist: `identifier=${identifier}` },
          },
          {
            // Twenty different referrals (each its own identifier) for the one patient.
            resource: {
              resourceType: 'ServiceRequest',
              identifier: [{ system: 'urn:example:referral', value: crypto.randomUUID() }],
              status: 'active',
              intent: 'order',
              category: [{ coding: [{ system: 'http://snomed.info/sct', code: '3457005' }] }],
              code: { coding: [{ system: 'http://snomed.info/sct', code: '91251008' }] },
              subject: { reference: patientUrn },
              requester: { reference: requester },
              authoredOn: '2024-03-05T09:30:00Z',
              reasonCode: [{ text: 'Knee pain' }],
            },
            request: { method: 'POST', url: 'ServiceRequest' },
          },
        ],
      };
    };

    const replies = await Promise.all(
      Array.from({ length: 20 }, () => call<Bundle>('POST', '', transaction())),
    );

    expect(
      replies.map((r) => r.status),
      JSON.stringify(replies.find((r) => r.status !== 200)?.body),
    ).toEqual(Array(20).fill(200));
    const patientStatuses = replies.map((r) => r.body.entry?.[0]?.response?.status);
    expect(count(patientStatuses.map((s) => Number(s?.slice(0, 3))))).toEqual({ 201: 1, 200: 19 });
    const patientIds = new Set(replies.map((r) => r.body.entry?.[0]?.resource?.id));
    expect(patientIds.size).toBe(1);
    const [patientId] = [...patientIds] as [string];
    const found = await patientsWith(identifier);
    expect(found.total).toBe(1);
    expect(found.entry?.[0]?.resource?.id).toBe(patientId);

    // Every transaction's ServiceRequest points at that one Patient.
    const referrals = await call<Bundle>(
      'GET',
      `ServiceRequest?subject=Patient/${patientId}&_total=accurate`,
    );
    expect(referrals.body.total).toBe(20);
    expect(count(replies.map((r) => Number(r.body.entry?.[1]?.response?.status?.slice(0, 3))))).toEqual({
      201: 20,
    });
    // Each referral brought exactly one EpisodeOfCare and one fulfilment Task, all for that Patient.
    const referralIds = new Set(replies.map((r) => `ServiceRequest/${r.body.entry?.[1]?.resource?.id}`));
    expect(referralIds.size).toBe(20);
    for (const type of ['EpisodeOfCare', 'Task']) {
      const written = await call<Bundle>(
        'GET',
        `${type}?patient=Patient/${patientId}&_total=accurate&_count=100`,
      );
      expect(written.body.total).toBe(20);
      const linked = (written.body.entry ?? []).map((e) =>
        type === 'Task'
          ? (e.resource as Task).focus?.reference
          : (e.resource as EpisodeOfCare).referralRequest?.[0]?.reference,
      );
      expect(new Set(linked)).toEqual(referralIds);
    }
  });

  it('conditional creates through POST and through transaction entries, interleaved, make one Patient', async () => {
    const identifier = uniqueMrn();
    const [system, value] = identifier.split('|') as [string, string];
    const patient: Patient = { resourceType: 'Patient', identifier: [{ system, value }] };
    const viaPost = (): Promise<Reply<Resource>> =>
      call('POST', 'Patient', patient, { 'if-none-exist': `identifier=${identifier}` });
    const viaTransaction = (): Promise<Reply<Resource>> =>
      call('POST', '', {
        resourceType: 'Bundle',
        type: 'transaction',
        entry: [
          {
            resource: patient,
            request: { method: 'POST', url: 'Patient', ifNoneExist: `identifier=${identifier}` },
          },
        ],
      });

    const replies = await Promise.all(
      Array.from({ length: 60 }, (_, i) => (i % 2 ? viaPost() : viaTransaction())),
    );

    expect(replies.every((r) => r.status === 200 || r.status === 201)).toBe(true);
    const ids = new Set(
      replies.map((r) =>
        r.body.resourceType === 'Bundle' ? (r.body as Bundle).entry?.[0]?.resource?.id : r.body.id,
      ),
    );
    expect(ids.size).toBe(1);
    expect((await patientsWith(identifier)).total).toBe(1);
  });
});
