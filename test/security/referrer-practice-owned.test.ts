import type { EpisodeOfCare, Task } from '@medplum/fhirtypes';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { expectOutcome, referralServiceRequest } from '../http/http-helpers.js';
import { testStoreUrl } from '../support/postgres.js';
import { startSecureApp, type SecureApp } from '../support/secure-app.js';
import { buildWorld, created, type World } from './world.js';

/**
 * Issue 11, item 16: referrers cannot edit what the practice owns. On the referral Task the owner,
 * businessStatus, description and every status move but cancel are the practice's (the filler's,
 * FHIR R4 workflow and BSeR); the EpisodeOfCare is the practice's alone. A referrer (the placer)
 * may cancel and add notes and inputs.
 */
let t: SecureApp;
let world: World;

beforeAll(async () => {
  t = await startSecureApp({ databaseUrl: testStoreUrl(process.env.TEST_DATABASE_URL ?? 'sqlite::memory:') });
  world = await buildWorld(t);
});
afterAll(async () => {
  await world?.close();
  await t?.close();
});

/** A fresh referral of B's own patient, with its Task and episode as intake wrote them. */
async function freshReferral(): Promise<{ task: Task; episode: EpisodeOfCare }> {
  const referral = await created(
    t,
    world.b.token,
    referralServiceRequest({ subject: world.b.ownPatient, requester: world.b.practitioner }),
  );
  const tasks = await t.fhir('GET', `/fhir/Task?focus=ServiceRequest/${referral.id}`, {
    token: world.b.token,
  });
  const episodes = await t.fhir(
    'GET',
    `/fhir/EpisodeOfCare?incoming-referral=ServiceRequest/${referral.id}`,
    {
      token: world.b.token,
    },
  );
  return {
    task: tasks.body.entry[0].resource as Task,
    episode: episodes.body.entry[0].resource as EpisodeOfCare,
  };
}

const put = (token: string, resource: Task | EpisodeOfCare) =>
  t.fhir('PUT', `/fhir/${resource.resourceType}/${resource.id}`, { token, body: resource });

describe('referrers cannot edit what the practice owns', () => {
  it('refuses a referrer changing the referral Task’s owner, businessStatus or description, naming the element', async () => {
    const { task } = await freshReferral();
    for (const [element, change] of [
      ['Task.owner', { owner: { reference: world.b.organization } }],
      ['Task.businessStatus', { businessStatus: { text: 'Seen already' } }],
      ['Task.description', { description: 'Urgent: see today' }],
    ] as const) {
      const res = await put(world.b.token, { ...task, ...change } as Task);
      const outcome = expectOutcome(res, 403, 'forbidden', 'forbidden');
      expect(outcome.issue?.[0]?.expression).toEqual([element]);
    }
    const stored = (await t.fhir('GET', `/fhir/Task/${task.id}`, { token: world.practice })).body as Task;
    expect(stored.meta?.versionId).toBe(task.meta?.versionId);
  });

  it('refuses a referrer moving the referral Task other than to cancelled', async () => {
    const { task } = await freshReferral();
    const res = await put(world.b.token, { ...task, status: 'accepted' });
    expect(res.status).toBeGreaterThanOrEqual(403);
    expect(res.status).toBeLessThan(500);
    expect(res.body.issue[0].expression).toEqual(['Task.status']);
  });

  it('refuses every referrer write of the EpisodeOfCare', async () => {
    const { episode } = await freshReferral();
    const update = await put(world.b.token, { ...episode, status: 'finished' });
    expect(expectOutcome(update, 403, 'forbidden', 'forbidden').issue?.[0]?.expression).toEqual([
      'EpisodeOfCare',
    ]);
    const remove = await t.fhir('DELETE', `/fhir/EpisodeOfCare/${episode.id}`, { token: world.b.token });
    expectOutcome(remove, 403, 'forbidden', 'forbidden');
    const create = await t.fhir('POST', '/fhir/EpisodeOfCare', {
      token: world.b.token,
      body: { resourceType: 'EpisodeOfCare', status: 'active', patient: { reference: world.b.ownPatient } },
    });
    expectOutcome(create, 403, 'forbidden', 'forbidden');
    const deleteTask = await t.fhir('DELETE', `/fhir/Task/${(await freshReferral()).task.id}`, {
      token: world.b.token,
    });
    expectOutcome(deleteTask, 403, 'forbidden', 'forbidden');
  });

  it('lets a referrer add a note and an input, then cancel; the practice still edits everything', async () => {
    const { task, episode } = await freshReferral();
    const noted = await put(world.b.token, {
      ...task,
      note: [...(task.note ?? []), { text: 'Patient prefers mornings' }],
      input: [...(task.input ?? []), { type: { text: 'comment' }, valueString: 'Call before 10' }],
    });
    expect(noted.status, JSON.stringify(noted.body)).toBe(200);
    const withNote = noted.body as Task;
    const rewritten = await put(world.b.token, { ...withNote, note: [{ text: 'Something else' }] });
    expect(expectOutcome(rewritten, 403, 'forbidden', 'forbidden').issue?.[0]?.expression).toEqual([
      'Task.note',
    ]);
    const cancelled = await put(world.b.token, { ...withNote, status: 'cancelled' });
    expect(cancelled.status, JSON.stringify(cancelled.body)).toBe(200);
    expect((cancelled.body as Task).businessStatus?.coding?.[0]?.code).toBe('cancelled');
    const practice = await put(world.practice, { ...episode, status: 'cancelled' });
    expect(practice.status, JSON.stringify(practice.body)).toBeLessThan(300);
  });
});
