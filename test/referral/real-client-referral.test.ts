import { MedplumClient } from '@medplum/core';
import type { Appointment, Bundle, Encounter, EpisodeOfCare, ServiceRequest, Task } from '@medplum/fhirtypes';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { listenTestApp, type ListeningApp } from '../support/listen.js';
import { readFixture, referralOf } from './referral-fixtures.js';

describe('a real FHIR client submits a referral and follows it to completion', () => {
  let t: ListeningApp;
  let medplum: MedplumClient;
  beforeAll(async () => {
    t = await listenTestApp();
    medplum = new MedplumClient({ baseUrl: `${t.origin}/`, fhirUrlPath: 'fhir', fetch, cacheTime: 0 });
  });
  afterAll(() => t.close());

  it('MedplumClient: transaction in, Task accepted, visit booked and attended, Task completed', async () => {
    const bundle = readFixture<Bundle>('Bundle-referral-post-stroke-gait.json');
    const response = await medplum.executeBatch(bundle);
    const index = bundle.entry?.indexOf(referralOf(bundle)) as number;
    const referral = response.entry?.[index]?.resource as ServiceRequest;
    expect(referral.id).toBeDefined();

    let task = (await medplum.searchOne('Task', { focus: `ServiceRequest/${referral.id}` })) as Task;
    expect(task.status).toBe('received');

    task = await medplum.updateResource(
      { ...task, status: 'accepted' },
      { headers: { 'If-Match': `W/"${task.meta?.versionId}"` } },
    );
    expect(task.status).toBe('accepted');

    const appointment = await medplum.createResource<Appointment>({
      resourceType: 'Appointment',
      status: 'booked',
      basedOn: [{ reference: `ServiceRequest/${referral.id}` }],
      start: '2026-11-16T14:00:00Z',
      end: '2026-11-16T15:00:00Z',
      participant: [
        { actor: referral.subject as Appointment['participant'][number]['actor'], status: 'accepted' },
      ],
    });
    expect(appointment.id).toBeDefined();
    task = (await medplum.readResource('Task', task.id as string)) as Task;
    expect(task.businessStatus?.coding?.[0]?.code).toBe('appointment-booked');

    await medplum.createResource<Encounter>({
      resourceType: 'Encounter',
      status: 'finished',
      class: { system: 'http://terminology.hl7.org/CodeSystem/v3-ActCode', code: 'AMB' },
      subject: referral.subject as Encounter['subject'],
      basedOn: [{ reference: `ServiceRequest/${referral.id}` }],
      period: { start: '2026-11-16T14:00:00Z', end: '2026-11-16T15:00:00Z' },
    });
    task = (await medplum.readResource('Task', task.id as string)) as Task;
    expect(task.status).toBe('in-progress');

    task = await medplum.updateResource(
      { ...task, status: 'completed' },
      { headers: { 'If-Match': `W/"${task.meta?.versionId}"` } },
    );
    expect(task.status).toBe('completed');
    expect(task.businessStatus?.coding?.[0]?.code).toBe('discharged');

    const episode = (await medplum.searchOne('EpisodeOfCare', {
      'incoming-referral': `ServiceRequest/${referral.id}`,
    })) as EpisodeOfCare;
    expect(episode.status).toBe('finished');
    expect(episode.statusHistory?.map((h) => h.status)).toEqual(['waitlist', 'active', 'finished']);
    expect(
      ((await medplum.readResource('ServiceRequest', referral.id as string)) as ServiceRequest).status,
    ).toBe('completed');
  });
});
