import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FHIR_JSON, startTestApp, type TestApp } from '../support/test-app.js';
import type { Patient } from '@medplum/fhirtypes';
import {
  create,
  expectNoInternals,
  expectNothingWritten,
  expectOutcome,
  patient,
  resourceCount,
  versionCount,
} from './http-helpers.js';

/**
 * Bad URLs, methods, formats and sizes get a 4xx OperationOutcome with the right `issue.code` and
 * stable code, echo no internals, write nothing, and nothing ever ends in a 5xx.
 */

describe('bad URLs', () => {
  let t: TestApp;
  beforeAll(async () => {
    t = await startTestApp();
    await create(t.app, patient());
  });
  afterAll(() => t.close());

  const badIds = [
    ['an underscore', 'has_underscore'],
    ['a character outside the id alphabet', 'abc%24def'],
    ['a space', 'a%20b'],
    ['65 characters', 'a'.repeat(65)],
    ['a non-ASCII letter', 'm%C3%BCller'],
  ];

  it.each(badIds)(
    'returns 400 invalid-id for an id with %s, on read, vread, update, delete and history',
    async (_what, id) => {
      const body = JSON.stringify({ ...patient(), id: decodeURIComponent(id) });
      const attempts = [
        () => request(t.app).get(`/fhir/Patient/${id}`),
        () => request(t.app).get(`/fhir/Patient/${id}/_history`),
        () => request(t.app).get(`/fhir/Patient/${id}/_history/1`),
        () => request(t.app).put(`/fhir/Patient/${id}`).set('content-type', FHIR_JSON).send(body),
        () => request(t.app).delete(`/fhir/Patient/${id}`),
      ];
      for (const attempt of attempts) {
        const res = await expectNothingWritten(t.app, attempt);
        expectOutcome(res, 400, 'value', 'invalid-id');
      }
    },
  );

  it('returns 400 (not 500) for a malformed percent-escape in the path', async () => {
    const res = await expectNothingWritten(t.app, () => request(t.app).get('/fhir/Patient/%E0%A4%A'));
    expectOutcome(res, 400, 'value', 'invalid-id');
  });

  const unknownTypes = ['Referral', 'patient', 'Resource', 'DomainResource', 'PATIENT'];

  it.each(unknownTypes)('returns 404 unknown-resource-type for %s on every interaction', async (type) => {
    const body = JSON.stringify({ resourceType: type, id: 'x1' });
    const attempts = [
      () => request(t.app).get(`/fhir/${type}`),
      () => request(t.app).get(`/fhir/${type}/x1`),
      () => request(t.app).get(`/fhir/${type}/x1/_history/1`),
      () => request(t.app).get(`/fhir/${type}/_history`),
      () => request(t.app).post(`/fhir/${type}`).set('content-type', FHIR_JSON).send(body),
      () => request(t.app).put(`/fhir/${type}/x1`).set('content-type', FHIR_JSON).send(body),
      () => request(t.app).delete(`/fhir/${type}/x1`),
      () => request(t.app).post(`/fhir/${type}/_search`).type('form').send('name=x'),
    ];
    for (const attempt of attempts) {
      const res = await expectNothingWritten(t.app, attempt);
      expectOutcome(res, 404, 'not-supported', 'unknown-resource-type');
    }
  });

  it('returns 404 unknown-route for a path that is no FHIR interaction', async () => {
    const res = await request(t.app).get('/fhir/Patient/x/_history/1/extra');
    expectOutcome(res, 404, 'not-found', 'unknown-route');
    expectOutcome(await request(t.app).get('/nothing-here'), 404, 'not-found', 'unknown-route');
  });
});

describe('methods and formats', () => {
  let t: TestApp;
  let existing: Patient;
  beforeAll(async () => {
    t = await startTestApp();
    existing = await create(t.app, patient());
  });
  afterAll(() => t.close());

  it('returns 405 method-not-allowed for PATCH, which this server does not implement', async () => {
    const jsonPatch = JSON.stringify([{ op: 'replace', path: '/active', value: false }]);
    for (const contentType of ['application/json-patch+json', FHIR_JSON]) {
      const res = await expectNothingWritten(t.app, () =>
        request(t.app).patch(`/fhir/Patient/${existing.id}`).set('content-type', contentType).send(jsonPatch),
      );
      expectOutcome(res, 405, 'not-supported', 'method-not-allowed');
    }
    expect((await request(t.app).get(`/fhir/Patient/${existing.id}`)).body.active).toBe(true);
  });

  it('returns 405 for other unsupported methods', async () => {
    const res = await expectNothingWritten(t.app, () => request(t.app).options('/fhir/Patient'));
    expectOutcome(res, 405, 'not-supported', 'method-not-allowed');
  });

  it('returns 406 not-acceptable when only XML or Turtle is accepted', async () => {
    for (const accept of ['application/fhir+xml', 'application/xml', 'text/turtle']) {
      const res = await request(t.app).get(`/fhir/Patient/${existing.id}`).set('Accept', accept);
      expectOutcome(res, 406, 'not-supported', 'not-acceptable');
    }
    expectOutcome(
      await request(t.app).get('/fhir/metadata?_format=xml'),
      406,
      'not-supported',
      'not-acceptable',
    );
  });

  it('returns 406 and writes nothing for a create that accepts only XML', async () => {
    const res = await expectNothingWritten(t.app, () =>
      request(t.app)
        .post('/fhir/Patient')
        .set({ 'content-type': FHIR_JSON, Accept: 'application/fhir+xml' })
        .send(JSON.stringify(patient())),
    );
    expectOutcome(res, 406, 'not-supported', 'not-acceptable');
  });

  it('serves JSON when JSON is among the accepted types', async () => {
    for (const accept of [
      'application/fhir+json',
      'application/json',
      '*/*',
      'application/fhir+xml;q=0.9, application/fhir+json',
    ]) {
      const res = await request(t.app).get(`/fhir/Patient/${existing.id}`).set('Accept', accept);
      expect(res.status).toBe(200);
      expect(res.headers['content-type']).toMatch(/^application\/fhir\+json/);
    }
  });
});

describe('body size limit', () => {
  let t: TestApp;
  beforeAll(async () => {
    t = await startTestApp({ bodyLimitBytes: 4096 });
  });
  afterAll(() => t.close());

  it('returns 413 body-too-large for a create over the limit, and writes nothing', async () => {
    const big = patient({ name: [{ family: 'Large', given: ['x'.repeat(8000)] }] });
    const res = await expectNothingWritten(t.app, () =>
      request(t.app).post('/fhir/Patient').set('content-type', FHIR_JSON).send(JSON.stringify(big)),
    );
    expectOutcome(res, 413, 'too-costly', 'body-too-large');
  });

  it('returns 413 for a transaction Bundle over the limit, and writes nothing', async () => {
    const entry = Array.from({ length: 40 }, () => ({
      resource: patient(),
      request: { method: 'POST', url: 'Patient' },
    }));
    const res = await expectNothingWritten(t.app, () =>
      request(t.app)
        .post('/fhir')
        .set('content-type', FHIR_JSON)
        .send(JSON.stringify({ resourceType: 'Bundle', type: 'transaction', entry })),
    );
    expectOutcome(res, 413, 'too-costly', 'body-too-large');
    expect(await resourceCount(t.app, 'Patient')).toBe(0);
  });

  it('returns 413 for a chunked body without Content-Length that grows over the limit', async () => {
    const res = await expectNothingWritten(t.app, async () => {
      const req = request(t.app).post('/fhir/Patient').set('content-type', FHIR_JSON);
      req.write('{"resourceType":"Patient","name":[{"family":"Chunked","given":["');
      for (let i = 0; i < 4; i++) {
        req.write('z'.repeat(2000));
      }
      req.write('"]}]}');
      return req;
    });
    expectOutcome(res, 413, 'too-costly', 'body-too-large');
  });

  it('accepts a body just under the limit', async () => {
    const res = await request(t.app)
      .post('/fhir/Patient')
      .set('content-type', FHIR_JSON)
      .send(JSON.stringify(patient({ name: [{ family: 'Small', given: ['y'.repeat(3000)] }] })));
    expect(res.status).toBe(201);
  });
});

describe('never a 5xx', () => {
  let t: TestApp;
  beforeAll(async () => {
    t = await startTestApp();
  });
  afterAll(() => t.close());

  const json = (body: string) => ({ body, type: FHIR_JSON });
  const cases: [string, string, { body: string; type: string }?][] = [
    ['GET', '/fhir/Patient?_count=999999999999'],
    ['GET', '/fhir/Patient?_offset=99999999'],
    ['GET', '/fhir/Patient?birthdate=ge99999-01-01'],
    ['GET', '/fhir/Patient?_sort=-'],
    ['GET', '/fhir/Patient?_include=Patient'],
    ['GET', '/fhir/Patient?_include=::'],
    ['GET', '/fhir/Patient?identifier=%7C%7C%7C'],
    ['GET', '/fhir/Patient?name:contains=%25%5F'],
    ['GET', '/fhir/Patient?_id=' + ','.repeat(100)],
    ['GET', '/fhir/Patient?_lastUpdated=gt'],
    ['GET', '/fhir/ServiceRequest?subject=urn:uuid:1234'],
    ['GET', '/fhir/_history?_since=9999-99-99T99:99:99Z'],
    ['GET', '/fhir/Patient/1/_history/99999999999999999999'],
    ['POST', '/fhir', json('{"resourceType":"Bundle","type":"transaction","entry":[null,1,"x"]}')],
    [
      'POST',
      '/fhir',
      json(
        '{"resourceType":"Bundle","type":"batch","entry":[{"request":{"method":"GET","url":"Patient?_count=x"}}]}',
      ),
    ],
    [
      'POST',
      '/fhir',
      json(
        '{"resourceType":"Bundle","type":"transaction","entry":[{"request":{"method":"DELETE","url":"Patient"}}]}',
      ),
    ],
    ['POST', '/fhir', json('[]')],
    ['POST', '/fhir/Patient', json('{"resourceType":"Patient","meta":"not-an-object"}')],
    ['POST', '/fhir/Patient', json('{"resourceType":"Patient","meta":{"versionId":7,"tag":{}}}')],
    ['POST', '/fhir/Patient', json('{"resourceType":"Patient","id":{"x":1}}')],
    ['POST', '/fhir/Patient', json('{"resourceType":"Patient","contained":[{"resourceType":"Nope"}]}')],
    ['POST', '/fhir/Patient', json('{"resourceType":"Patient","name":[{"family":"\\ud800"}]}')],
    ['POST', '/fhir/Patient', json('{"resourceType":"Patient","name":[{"family":"x","given":{}}]}')],
    ['POST', '/fhir/Patient', json('{"resourceType":"Patient","address":[{"line":{}}]}')],
    [
      'POST',
      '/fhir/ServiceRequest',
      json('{"resourceType":"ServiceRequest","status":"active","intent":"order","subject":{"reference":{}}}'),
    ],
    [
      'POST',
      '/fhir/Task',
      json('{"resourceType":"Task","status":"requested","intent":"order","focus":"ServiceRequest/1"}'),
    ],
    ['POST', '/fhir/Patient/_search', { body: '%%%=%%%', type: 'application/x-www-form-urlencoded' }],
    ['PUT', '/fhir/Patient?', json('{"resourceType":"Patient"}')],
    ['PUT', '/fhir/Patient?_count=1', json('{"resourceType":"Patient"}')],
    ['DELETE', '/fhir/Patient?shoe-size=4'],
  ];

  it.each(cases)('%s %s answers with a 4xx OperationOutcome or a success', async (method, url, payload) => {
    const before = await versionCount(t.app);
    const req = request(t.app)[method.toLowerCase() as 'get' | 'post' | 'put' | 'delete'](url);
    const res = await (payload ? req.set('content-type', payload.type).send(payload.body) : req);
    expectNoInternals(res);
    if (res.status >= 400) {
      expect(await versionCount(t.app)).toBe(before);
      expect(res.body.resourceType).toBe('OperationOutcome');
      expect(res.body.issue[0].details.coding[0].code).toBeTypeOf('string');
    }
    expect(t.logs.filter((l) => l.level === 50 || (l.status as number) >= 500)).toEqual([]);
  });
});
