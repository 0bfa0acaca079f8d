import type { OperationOutcome, OperationOutcomeIssue, Resource } from '@medplum/fhirtypes';
import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { listExamples, readExample, skipWithoutExamples } from '../support/examples.js';
import { FHIR_JSON, startTestApp, type TestApp } from '../support/test-app.js';
import { readFixture } from '../referral/referral-fixtures.js';

const noExamples = skipWithoutExamples('$validate on the official R4 examples (r4-core)');
const REFERRAL_PROFILE = 'https://ptreferral.dev/fhir/StructureDefinition/pt-referral-servicerequest';

const errors = (outcome: OperationOutcome): OperationOutcomeIssue[] =>
  (outcome.issue ?? []).filter((i) => i.severity === 'error' || i.severity === 'fatal');

describe('$validate', () => {
  let t: TestApp;
  beforeAll(async () => {
    t = await startTestApp();
  });
  afterAll(() => t.close());

  const validate = async (resource: unknown, query = ''): Promise<OperationOutcome> => {
    const type = (resource as Resource).resourceType;
    const res = await request(t.app)
      .post(`/fhir/${type}/$validate${query}`)
      .set('content-type', FHIR_JSON)
      .send(JSON.stringify(resource));
    expect(res.status).toBe(200);
    expect(res.body.resourceType).toBe('OperationOutcome');
    return res.body;
  };

  // The HL7 reference validator accepts every official example but this one, whose nested items
  // lack the required linkId (Questionnaire.item.linkId is 1..1 in R4).
  it.skipIf(noExamples).each(listExamples('r4-core'))(
    'agrees with the reference validator on the official example %s',
    async (file) => {
      const resource = readExample(`r4-core/${file}`);
      const outcome = await validate(resource);
      if (file === 'bundle-questionnaire.json') {
        expect(errors(outcome).length).toBeGreaterThan(0);
        expect(errors(outcome).every((i) => /\.linkId$/.test(i.expression?.[0] ?? ''))).toBe(true);
      } else {
        expect(errors(outcome), JSON.stringify(errors(outcome))).toEqual([]);
      }
    },
  );

  const base = {
    resourceType: 'Patient',
    name: [{ family: 'Rivera', given: ['Ana'] }],
    gender: 'female',
    birthDate: '1980-04-02',
  };

  it.each([
    ['an unknown element', { ...base, shoeSize: 42 }, 'Patient.shoeSize'],
    ['a wrong JSON type', { ...base, gender: 1 }, 'Patient.gender'],
    ['a cardinality breach', { ...base, gender: ['female'] }, 'Patient.gender'],
    ['a malformed id', { ...base, id: 'not valid!' }, 'Patient.id'],
    ['an impossible date', { ...base, birthDate: '1980-02-30' }, 'Patient.birthDate'],
    ['a dateTime without timezone', { ...base, deceasedDateTime: '2026-01-02T10:00:00' }, 'Patient.deceased'],
    ['an empty string', { ...base, name: [{ family: '' }] }, 'Patient.name[0].family'],
    ['an empty object (ele-1)', { ...base, maritalStatus: {} }, 'Patient.maritalStatus'],
    ['a code outside a required binding', { ...base, gender: 'maybe' }, 'Patient.gender'],
    [
      'a datatype invariant (per-1)',
      { ...base, name: [{ family: 'R', period: { start: '2020-01-01', end: '2019-01-01' } }] },
      'Patient.name[0].period',
    ],
    ['a resource invariant (pat-1)', { ...base, contact: [{ gender: 'male' }] }, 'Patient.contact[0]'],
    [
      'a contained resource nobody references (dom-3)',
      { ...base, contained: [{ resourceType: 'Organization', id: 'o1', name: 'Orphan' }] },
      'Patient.contained[0]',
    ],
    [
      'a contained resource with its own meta.versionId (dom-4)',
      {
        ...base,
        managingOrganization: { reference: '#o1' },
        contained: [{ resourceType: 'Organization', id: 'o1', name: 'X', meta: { versionId: '2' } }],
      },
      // dom-4 is an invariant of the container, so the reference validator reports it there too.
      'Patient',
    ],
    [
      'a script in the narrative',
      {
        ...base,
        text: {
          status: 'generated',
          div: '<div xmlns="http://www.w3.org/1999/xhtml"><script>alert(1)</script>x</div>',
        },
      },
      'Patient.text.div',
    ],
    [
      'an event handler in the narrative',
      {
        ...base,
        text: {
          status: 'generated',
          div: '<div xmlns="http://www.w3.org/1999/xhtml"><p onclick="x()">x</p></div>',
        },
      },
      'Patient.text.div',
    ],
    [
      'a javascript: link in the narrative',
      {
        ...base,
        text: {
          status: 'generated',
          div: '<div xmlns="http://www.w3.org/1999/xhtml"><a href="javascript:x()">x</a></div>',
        },
      },
      'Patient.text.div',
    ],
    [
      'an iframe in the narrative',
      {
        ...base,
        text: {
          status: 'generated',
          div: '<div xmlns="http://www.w3.org/1999/xhtml"><iframe src="https://x.example"></iframe>x</div>',
        },
      },
      'Patient.text.div',
    ],
  ])('reports %s with the element it concerns', async (_what, resource, expression) => {
    const outcome = await validate(resource);
    const found = errors(outcome);
    expect(found.length, JSON.stringify(outcome)).toBeGreaterThan(0);
    expect(
      found.some((i) => (i.expression?.[0] ?? '').startsWith(expression)),
      JSON.stringify(found),
    ).toBe(true);
    expect(found.every((i) => i.details?.coding?.[0]?.code)).toBe(true);
  });

  it.each([
    ['duplicate fullUrls (bdl-7)', 'Bundle-duplicate-fullurl.json', 'Bundle'],
    ['a urn:uuid reference that names no entry', 'Bundle-unresolved-reference.json', 'Bundle.entry'],
    ['a fullUrl that does not match its resource', 'Bundle-fullurl-type-mismatch.json', 'Bundle.entry'],
  ])('reports Bundle rules: %s', async (_what, fixture, expression) => {
    const outcome = await validate(readFixture(`invalid/${fixture}`));
    expect(
      errors(outcome).some((i) => (i.expression?.[0] ?? '').startsWith(expression)),
      JSON.stringify(errors(outcome)),
    ).toBe(true);
  });

  it('checks a ServiceRequest against the referral profile by default, and names the broken rule', async () => {
    const referral = readFixture<Resource & { category?: unknown; meta?: unknown }>(
      'ServiceRequest-referral-knee-oa.json',
    );
    expect(errors(await validate(referral))).toEqual([]);
    const { category: _c, meta: _m, ...withoutCategory } = referral;
    const outcome = await validate(withoutCategory);
    expect(errors(outcome).map((i) => i.details?.coding?.[0]?.code)).toContain('profile-violation');
    expect(errors(outcome).some((i) => i.details?.text?.includes('ptr-1'))).toBe(true);
  });

  it('takes the resource and a profile in Parameters, and validates by id', async () => {
    const task = { resourceType: 'Task', status: 'received', intent: 'order' };
    const parameters = {
      resourceType: 'Parameters',
      parameter: [
        { name: 'resource', resource: task },
        { name: 'profile', valueUri: 'https://ptreferral.dev/fhir/StructureDefinition/pt-referral-task' },
      ],
    };
    const res = await request(t.app)
      .post('/fhir/Task/$validate')
      .set('content-type', FHIR_JSON)
      .send(JSON.stringify(parameters));
    expect(res.status).toBe(200);
    const expressions = errors(res.body).map((i) => i.expression?.[0]);
    expect(expressions).toEqual(
      expect.arrayContaining(['Task.code', 'Task.focus', 'Task.for', 'Task.requester', 'Task.owner']),
    );

    const byId = await request(t.app)
      .post('/fhir/Patient/abc/$validate')
      .set('content-type', FHIR_JSON)
      .send(JSON.stringify({ ...base, id: 'abc' }));
    expect(byId.status).toBe(200);
    expect(errors(byId.body)).toEqual([]);
    const mismatch = await request(t.app)
      .post('/fhir/Patient/abc/$validate')
      .set('content-type', FHIR_JSON)
      .send(JSON.stringify({ ...base, id: 'xyz' }));
    expect(mismatch.status).toBe(400);
  });

  it('answers an unknown profile with an OperationOutcome, not a guess', async () => {
    const res = await request(t.app)
      .post(
        `/fhir/Patient/$validate?profile=${encodeURIComponent('http://example.org/StructureDefinition/nope')}`,
      )
      .set('content-type', FHIR_JSON)
      .send(JSON.stringify(base));
    expect(res.status).toBe(422);
    expect(res.body.issue[0].details.coding[0].code).toBe('unknown-profile');
  });

  it('validates with the referral profile when asked by the profile query parameter', async () => {
    const outcome = await validate(
      {
        resourceType: 'ServiceRequest',
        status: 'active',
        // Issue 12: intent plan (NHS) is accepted and category is optional; proposal is not a referral.
        intent: 'proposal',
        subject: { reference: 'Patient/x' },
      },
      `?profile=${encodeURIComponent(REFERRAL_PROFILE)}`,
    );
    const texts = errors(outcome).map((i) => i.expression?.[0]);
    expect(texts).toEqual(
      expect.arrayContaining([
        'ServiceRequest.intent',
        'ServiceRequest',
        'ServiceRequest.requester',
        'ServiceRequest.authoredOn',
      ]),
    );
  });
});
