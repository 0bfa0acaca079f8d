import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestApp, type TestApp } from '../support/test-app.js';
import {
  create,
  expectNothingWritten,
  expectOutcome,
  MRN_SYSTEM,
  patient,
  postResource,
  putResource,
  resourceCount,
} from './http-helpers.js';

/** Conditional create, update and delete (https://hl7.org/fhir/R4/http.html#ccreate). */

const mrn = (value: string) => [{ system: MRN_SYSTEM, value }];

describe('conditional create (If-None-Exist)', () => {
  let t: TestApp;
  beforeAll(async () => {
    t = await startTestApp();
  });
  afterAll(() => t.close());

  it('creates the resource (201) when nothing matches', async () => {
    const res = await postResource(t.app, '/fhir/Patient', patient({ identifier: mrn('CC-0') }), {
      'If-None-Exist': `identifier=${MRN_SYSTEM}|CC-0`,
    });
    expect(res.status).toBe(201);
    expect(res.headers.location).toMatch(new RegExp(`/Patient/${res.body.id}/_history/1$`));
  });

  it('returns 200 with the existing resource and writes nothing when one matches', async () => {
    const existing = await create(t.app, patient({ identifier: mrn('CC-1') }));
    const res = await expectNothingWritten(t.app, () =>
      postResource(t.app, '/fhir/Patient', patient({ identifier: mrn('CC-1'), gender: 'male' }), {
        'If-None-Exist': `identifier=${MRN_SYSTEM}|CC-1`,
      }),
    );
    expect(res.status).toBe(200);
    expect(res.body.id).toBe(existing.id);
    expect(res.body.gender).toBe('female');
    expect(res.headers.etag).toBe('W/"1"');
    expect(res.headers.location).toBeUndefined();
  });

  it('returns 412 multiple-matches and writes nothing when several match', async () => {
    await create(t.app, patient({ identifier: mrn('CC-2'), name: [{ family: 'Duplicate' }] }));
    await create(t.app, patient({ identifier: mrn('CC-3'), name: [{ family: 'Duplicate' }] }));
    const res = await expectNothingWritten(t.app, () =>
      postResource(t.app, '/fhir/Patient', patient({ name: [{ family: 'Duplicate' }] }), {
        'If-None-Exist': 'family=Duplicate',
      }),
    );
    expectOutcome(res, 412, 'multiple-matches', 'multiple-matches');
  });

  it('rejects criteria with an unknown parameter (400) instead of ignoring it', async () => {
    const res = await expectNothingWritten(t.app, () =>
      postResource(t.app, '/fhir/Patient', patient(), { 'If-None-Exist': 'favourite-colour=blue' }),
    );
    expectOutcome(res, 400, 'not-supported', 'unknown-search-parameter');
  });

  it('rejects criteria made of result parameters only (400)', async () => {
    const res = await expectNothingWritten(t.app, () =>
      postResource(t.app, '/fhir/Patient', patient(), { 'If-None-Exist': '_count=1' }),
    );
    expectOutcome(res, 400, 'invalid', 'invalid-conditional-url');
  });

  it('matches a Practitioner on its NPI and does not create a second one', async () => {
    const npi = { system: 'http://hl7.org/fhir/sid/us-npi', value: '1427051473' };
    const body = { resourceType: 'Practitioner', identifier: [npi], name: [{ family: 'Ibarra' }] };
    const headers = { 'If-None-Exist': `identifier=${npi.system}|${npi.value}` };
    const first = await postResource(t.app, '/fhir/Practitioner', body, headers);
    const second = await postResource(t.app, '/fhir/Practitioner', body, headers);
    expect([first.status, second.status]).toEqual([201, 200]);
    expect(second.body.id).toBe(first.body.id);
    expect(await resourceCount(t.app, 'Practitioner')).toBe(1);
  });
});

describe('conditional update (PUT [type]?criteria)', () => {
  let t: TestApp;
  beforeAll(async () => {
    t = await startTestApp();
  });
  afterAll(() => t.close());

  it('creates the resource (201) when nothing matches', async () => {
    const res = await putResource(
      t.app,
      `/fhir/Patient?identifier=${MRN_SYSTEM}|CU-0`,
      patient({ identifier: mrn('CU-0') }),
    );
    expect(res.status).toBe(201);
    expect(res.body.meta.versionId).toBe('1');
    expect(res.headers.location).toMatch(/\/_history\/1$/);
  });

  it('creates with the client id in the body when nothing matches', async () => {
    const res = await putResource(
      t.app,
      `/fhir/Patient?identifier=${MRN_SYSTEM}|CU-5`,
      patient({ id: 'mrn-cu-5', identifier: mrn('CU-5') }),
    );
    expect(res.status).toBe(201);
    expect(res.body.id).toBe('mrn-cu-5');
  });

  it('updates the single match in place (200, next version, same id)', async () => {
    const existing = await create(t.app, patient({ identifier: mrn('CU-1') }));
    const res = await putResource(
      t.app,
      `/fhir/Patient?identifier=${MRN_SYSTEM}|CU-1`,
      patient({ identifier: mrn('CU-1'), active: false }),
    );
    expect(res.status).toBe(200);
    expect(res.body.id).toBe(existing.id);
    expect(res.body.meta.versionId).toBe('2');
    expect(res.body.active).toBe(false);
  });

  it('returns 412 multiple-matches and writes nothing when several match', async () => {
    await create(t.app, patient({ identifier: mrn('CU-2'), name: [{ family: 'Twin' }] }));
    await create(t.app, patient({ identifier: mrn('CU-3'), name: [{ family: 'Twin' }] }));
    const res = await expectNothingWritten(t.app, () =>
      putResource(t.app, '/fhir/Patient?family=Twin', patient({ name: [{ family: 'Twin' }] })),
    );
    expectOutcome(res, 412, 'multiple-matches', 'multiple-matches');
  });

  it('returns 400 when the body id differs from the id of the match, and writes nothing', async () => {
    await create(t.app, patient({ identifier: mrn('CU-4') }));
    const res = await expectNothingWritten(t.app, () =>
      putResource(
        t.app,
        `/fhir/Patient?identifier=${MRN_SYSTEM}|CU-4`,
        patient({ id: 'someone-else', identifier: mrn('CU-4') }),
      ),
    );
    expectOutcome(res, 400, 'invalid', 'resource-id-mismatch');
  });

  it('honours If-Match on the matched resource (412 on an old version)', async () => {
    const existing = await create(t.app, patient({ identifier: mrn('CU-6') }));
    await putResource(t.app, `/fhir/Patient/${existing.id}`, { ...existing, active: false });
    const res = await expectNothingWritten(t.app, () =>
      putResource(
        t.app,
        `/fhir/Patient?identifier=${MRN_SYSTEM}|CU-6`,
        patient({ identifier: mrn('CU-6') }),
        {
          'If-Match': 'W/"1"',
        },
      ),
    );
    expectOutcome(res, 412, 'conflict', 'precondition-failed');
  });

  it('returns 405 for a PUT to the type without criteria or id', async () => {
    const res = await expectNothingWritten(t.app, () => putResource(t.app, '/fhir/Patient', patient()));
    expectOutcome(res, 405, 'not-supported', 'method-not-allowed');
  });
});

describe('conditional delete (DELETE [type]?criteria)', () => {
  let t: TestApp;
  beforeAll(async () => {
    t = await startTestApp();
  });
  afterAll(() => t.close());

  it('deletes the single match: 204, then the resource reads as 410', async () => {
    const existing = await create(t.app, patient({ identifier: mrn('CD-1') }));
    const res = await request(t.app).delete(`/fhir/Patient?identifier=${MRN_SYSTEM}|CD-1`);
    expect(res.status).toBe(204);
    expectOutcome(
      await request(t.app).get(`/fhir/Patient/${existing.id}`),
      410,
      'deleted',
      'resource-deleted',
    );
  });

  it('answers 204 and writes nothing when nothing matches', async () => {
    const res = await expectNothingWritten(t.app, () =>
      request(t.app).delete(`/fhir/Patient?identifier=${MRN_SYSTEM}|nobody`),
    );
    expect(res.status).toBe(204);
  });

  it('returns 412 multiple-matches and deletes nothing when several match', async () => {
    await create(t.app, patient({ identifier: mrn('CD-2'), name: [{ family: 'Pair' }] }));
    await create(t.app, patient({ identifier: mrn('CD-3'), name: [{ family: 'Pair' }] }));
    const res = await expectNothingWritten(t.app, () => request(t.app).delete('/fhir/Patient?family=Pair'));
    expectOutcome(res, 412, 'multiple-matches', 'multiple-matches');
    const search = await request(t.app).get('/fhir/Patient?family=Pair');
    expect(search.body.total).toBe(2);
  });

  it('returns 405 for a DELETE of the whole type without criteria', async () => {
    await create(t.app, patient());
    const before = await resourceCount(t.app, 'Patient');
    const res = await expectNothingWritten(t.app, () => request(t.app).delete('/fhir/Patient'));
    expectOutcome(res, 405, 'not-supported', 'method-not-allowed');
    expect(await resourceCount(t.app, 'Patient')).toBe(before);
  });
});
