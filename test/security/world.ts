import type { Bundle, Resource, Subscription, Task } from '@medplum/fhirtypes';
import { expect } from 'vitest';
import { patient, referralServiceRequest } from '../http/http-helpers.js';
import { startCaptureServer, topicSubscription } from '../support/delivery-app.js';
import { REFERRER_A, REFERRER_B, type SecureApp } from '../support/secure-app.js';

/**
 * Two referrers with overlapping patients: one Patient (`shared`) referred by both, each with its
 * own referrals, and a patient of its own. Every referral went through intake (EpisodeOfCare and
 * Task), was accepted by the practice (a Communication to the referrer), and each referrer has a
 * topic Subscription on Communications addressed to its practitioner, delivering to its own
 * capture endpoint.
 */
export interface Side {
  clientId: string;
  token: string;
  practitioner: string;
  organization: string;
  ownPatient: string;
  /** `ServiceRequest/id`: the referral of the shared patient, then the one of the own patient. */
  referrals: string[];
  tasks: string[];
  episodes: string[];
  communications: string[];
  subscription: string;
  hook: Awaited<ReturnType<typeof startCaptureServer>>;
  /** Everything of this side that the other side must never see (the shared Patient excepted). */
  everything: string[];
}

export interface World {
  admin: string;
  practice: string;
  /** `Patient/id`, referred by both. */
  shared: string;
  a: Side;
  b: Side;
  close(): Promise<void>;
}

export async function created<T extends Resource>(
  t: SecureApp,
  token: string,
  resource: T,
  path = `/fhir/${resource.resourceType}`,
  method = 'POST',
): Promise<T> {
  const res = await t.fhir(method, path, { token, body: resource });
  expect(res.status, JSON.stringify(res.body)).toBeLessThan(300);
  return res.body as T;
}

async function searchIds(t: SecureApp, token: string, query: string): Promise<string[]> {
  const res = await t.fhir('GET', `/fhir/${query}`, { token });
  expect(res.status, JSON.stringify(res.body)).toBe(200);
  return ((res.body as Bundle).entry ?? [])
    .filter((e) => e.search?.mode === 'match')
    .map((e) => `${e.resource?.resourceType}/${e.resource?.id}`);
}

export async function buildWorld(t: SecureApp): Promise<World> {
  const admin = await t.token('admin');
  const practice = await t.token('practice');
  // The referrers' practitioners and clinics, under known ids, as README: Security describes.
  for (const [type, id, name] of [
    ['Practitioner', 'dr-a', 'Aalto'],
    ['Practitioner', 'dr-b', 'Bergström'],
    ['Organization', 'clinic-a', 'Clinic A'],
    ['Organization', 'clinic-b', 'Clinic B'],
  ] as const) {
    const body =
      type === 'Practitioner'
        ? { resourceType: type, id, name: [{ family: name, given: ['Kim'] }] }
        : { resourceType: type, id, name };
    await created(t, admin, body as Resource, `/fhir/${type}/${id}`, 'PUT');
  }
  const sides = {} as Record<'a' | 'b', Side>;
  for (const [key, who] of [
    ['a', REFERRER_A],
    ['b', REFERRER_B],
  ] as const) {
    const token = await t.token(who.clientId);
    const hook = await startCaptureServer();
    const subscription = await created<Subscription>(
      t,
      token,
      topicSubscription(hook.url, {
        filter: `Communication?recipient=${who.practitioner}`,
        content: 'full-resource',
      }),
    );
    expect(subscription.status).toBe('active');
    sides[key] = {
      clientId: who.clientId,
      token,
      practitioner: who.practitioner,
      organization: who.organization,
      ownPatient: '',
      referrals: [],
      tasks: [],
      episodes: [],
      communications: [],
      subscription: `Subscription/${subscription.id}`,
      hook,
      everything: [],
    };
  }
  // Referrer A registers the shared patient. B cannot name a Patient it cannot see (naming grants
  // nothing, issue 11): its referral of the same Patient is recorded by the practice on its behalf
  // (requester B), which is what makes the Patient one of B's too.
  const shared = `Patient/${(await created(t, sides.a.token, patient({ name: [{ family: 'Shared', given: ['Sam'] }] }))).id}`;
  for (const side of [sides.a, sides.b]) {
    const own = await created(t, side.token, patient({ name: [{ family: `Own${side.clientId}` }] }));
    side.ownPatient = `Patient/${own.id}`;
    for (const subject of [shared, side.ownPatient]) {
      const referral = await created(
        t,
        side === sides.b && subject === shared ? practice : side.token,
        referralServiceRequest({ subject, requester: side.practitioner }),
      );
      side.referrals.push(`ServiceRequest/${referral.id}`);
    }
  }
  // The practice works every referral: it accepts each (the referrer hears of it).
  for (const side of [sides.a, sides.b]) {
    for (const referral of side.referrals) {
      const [taskRef] = await searchIds(
        t,
        practice,
        `Task?focus=${referral}&code=http://hl7.org/fhir/CodeSystem/task-code|fulfill`,
      );
      expect(taskRef, `the Task of ${referral}`).toBeDefined();
      const task = (await t.fhir('GET', `/fhir/${taskRef}`, { token: practice })).body as Task;
      await created(t, practice, { ...task, status: 'accepted' }, `/fhir/${taskRef}`, 'PUT');
      side.tasks.push(taskRef as string);
      side.episodes.push(...(await searchIds(t, practice, `EpisodeOfCare?incoming-referral=${referral}`)));
    }
    side.communications = await searchIds(t, practice, `Communication?recipient=${side.practitioner}`);
    expect(side.communications.length).toBeGreaterThanOrEqual(2);
    side.everything = [
      side.ownPatient,
      ...side.referrals,
      ...side.tasks,
      ...side.episodes,
      ...side.communications,
      side.subscription,
    ];
  }
  return {
    admin,
    practice,
    shared,
    a: sides.a,
    b: sides.b,
    close: async () => {
      await sides.a.hook.close();
      await sides.b.hook.close();
    },
  };
}
