import type { Bundle, OperationOutcome } from '@medplum/fhirtypes';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { testStoreUrl } from '../support/postgres.js';
import { REFERRER_A, startSecureApp, type SecureApp } from '../support/secure-app.js';
import { buildWorld, type World } from './world.js';

/**
 * Includes obey scopes (issue 11, item 14): `_include`, `_revinclude` and `:iterate` add only
 * resources of types the token could fetch on its own (read or search scope on the type,
 * https://hl7.org/fhir/smart-app-launch/scopes-and-launch-context.html). Resources of other types
 * are left out of the searchset, as if absent, and an OperationOutcome entry says which types were
 * left out; the search itself needs only its own type's scope.
 */
describe('includes obey scopes', () => {
  let t: SecureApp;
  let world: World;
  beforeAll(async () => {
    t = await startSecureApp({
      databaseUrl: testStoreUrl(process.env.TEST_DATABASE_URL ?? 'sqlite::memory:'),
    });
    world = await buildWorld(t);
  }, 120_000);
  afterAll(async () => {
    await world?.close();
    await t?.close();
  });

  async function search(scope: string, query: string): Promise<Bundle> {
    const token = await t.token(REFERRER_A.clientId, scope);
    const res = await t.fhir('GET', `/fhir/${query}`, { token });
    expect(res.status, JSON.stringify(res.body)).toBe(200);
    return res.body as Bundle;
  }

  const typesOf = (bundle: Bundle, mode: 'match' | 'include'): string[] =>
    [
      ...new Set(
        (bundle.entry ?? [])
          .filter((e) => e.search?.mode === mode)
          .map((e) => e.resource?.resourceType as string),
      ),
    ].sort();

  const outcomeText = (bundle: Bundle): string =>
    (bundle.entry ?? [])
      .filter((e) => e.search?.mode === 'outcome')
      .flatMap((e) => (e.resource as OperationOutcome).issue ?? [])
      .map((i) => i.details?.text ?? '')
      .join(' ');

  const INCLUDES = 'ServiceRequest?_include=ServiceRequest:subject&_revinclude=Task:focus';

  it('includes every referenced type with a scope for each (the world is as expected)', async () => {
    const bundle = await search('system/ServiceRequest.rs system/Patient.r system/Task.s', INCLUDES);
    expect(typesOf(bundle, 'match')).toEqual(['ServiceRequest']);
    expect(typesOf(bundle, 'include')).toEqual(['Patient', 'Task']);
  });

  it('leaves out _include and _revinclude types the token has no scope for', async () => {
    const bundle = await search('system/ServiceRequest.rs', INCLUDES);
    expect(typesOf(bundle, 'match')).toEqual(['ServiceRequest']);
    expect(typesOf(bundle, 'include')).toEqual([]);
    expect(outcomeText(bundle)).toMatch(/Patient/);
    expect(outcomeText(bundle)).toMatch(/Task/);
  });

  it('includes only the scoped types when the token has some of them', async () => {
    const bundle = await search('system/ServiceRequest.s system/Patient.rs', INCLUDES);
    expect(typesOf(bundle, 'include')).toEqual(['Patient']);
  });

  it('leaves out :iterate types the token has no scope for, and does not iterate through them', async () => {
    // Task (no scope) would lead on to its owner and requester; none of it may come back.
    const bundle = await search(
      'system/ServiceRequest.rs system/Patient.r system/Organization.r system/Practitioner.r',
      'ServiceRequest?_revinclude=Task:focus&_include:iterate=Task:owner&_include:iterate=Task:requester',
    );
    expect(typesOf(bundle, 'include')).toEqual([]);
  });

  it('leaves out included types for a wildcard of the wrong permission (create only)', async () => {
    const bundle = await search('system/ServiceRequest.rs system/*.c', INCLUDES);
    expect(typesOf(bundle, 'include')).toEqual([]);
  });

  it('leaves out unscoped include types in a batch entry search as at the top level', async () => {
    const token = await t.token(REFERRER_A.clientId, 'system/ServiceRequest.rs');
    const batch: Bundle = {
      resourceType: 'Bundle',
      type: 'batch',
      entry: [{ request: { method: 'GET', url: INCLUDES } }],
    };
    const res = await t.fhir('POST', '/fhir', { token, body: batch });
    expect(res.status, JSON.stringify(res.body)).toBe(200);
    const inner = (res.body as Bundle).entry?.[0]?.resource as Bundle;
    expect(typesOf(inner, 'match')).toEqual(['ServiceRequest']);
    expect(typesOf(inner, 'include')).toEqual([]);
  });
});
