import { randomUUID } from 'node:crypto';
import type { Communication } from '@medplum/fhirtypes';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLogger } from '../../src/logging.js';
import { expectOutcome } from '../http/http-helpers.js';
import { FAST_RETRY, progressCommunication } from '../support/delivery-app.js';
import { testStoreUrl } from '../support/postgres.js';
import { PUBLIC_ORIGIN, startSecureApp, type SecureApp } from '../support/secure-app.js';
import { buildWorld, type World } from './world.js';

/**
 * Issue 11, item 7: only the practice speaks as the practice. A referrer's Communication names one
 * of the identities the referrer acts for as its sender, and reaches no other referrer's
 * Subscription.
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

const fromB = (marker: string, recipient: string, sender?: string): Communication => {
  const message = progressCommunication(marker, recipient);
  message.subject = { reference: world.b.ownPatient };
  if (sender) message.sender = { reference: sender };
  else delete message.sender;
  return message;
};

async function deliverAll(): Promise<void> {
  const worker = t.service.createWorker({
    logger: createLogger('silent'),
    baseUrl: `${PUBLIC_ORIGIN}/fhir`,
    retry: FAST_RETRY,
    timeoutMs: 2_000,
  });
  for (let i = 0; i < 20 && (await worker.runOnce()) > 0; i++);
}

describe('only the practice speaks as the practice', () => {
  it('refuses a referrer’s Communication whose sender is the practice, or no one, or another referrer', async () => {
    for (const sender of ['Organization/practice', undefined, world.a.practitioner]) {
      const res = await t.fhir('POST', '/fhir/Communication', {
        token: world.b.token,
        body: fromB(`fake-${randomUUID()}`, world.b.practitioner, sender),
      });
      expect(expectOutcome(res, 403, 'forbidden', 'forbidden').issue?.[0]?.expression).toEqual([
        'Communication.sender',
      ]);
    }
  });

  it('accepts a referrer’s Communication sent as itself to its own side', async () => {
    const res = await t.fhir('POST', '/fhir/Communication', {
      token: world.b.token,
      body: fromB(`own-${randomUUID()}`, world.b.organization, world.b.practitioner),
    });
    expect(res.status, JSON.stringify(res.body)).toBe(201);
  });

  it('never delivers a referrer-authored Communication naming itself to another referrer’s subscription', async () => {
    const marker = `probe-${randomUUID()}`;
    const before = world.a.hook.requests.length;
    for (const recipient of [
      world.a.practitioner,
      `${PUBLIC_ORIGIN}/fhir/${world.a.practitioner}`,
      `https://elsewhere.example.org/fhir/${world.a.practitioner}`,
    ]) {
      const res = await t.fhir('POST', '/fhir/Communication', {
        token: world.b.token,
        body: fromB(marker, recipient, world.b.practitioner),
      });
      // Naming the other's practitioner is refused (naming grants nothing); an absolute URL names
      // no resource here, may be stored, and matches no Subscription.
      if (recipient === world.a.practitioner) expect(res.status, JSON.stringify(res.body)).toBe(422);
      expect(res.status).toBeLessThan(500);
    }
    await deliverAll();
    const delivered = world.a.hook.requests.slice(before).map((r) => r.body);
    expect(delivered.join('\n')).not.toContain(marker);
  });
});
