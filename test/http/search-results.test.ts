import type { Bundle, OperationOutcome, Patient, ServiceRequest } from '@medplum/fhirtypes';
import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ERROR_CODE_SYSTEM } from '../../src/fhir/errors.js';
import { FHIR_JSON, startTestApp, type TestApp } from '../support/test-app.js';
import {
  bookingTask,
  create,
  expectIntake,
  expectNothingWritten,
  expectOutcome,
  ids,
  link,
  pathOf,
  patient,
  practitioner,
  putResource,
  referralServiceRequest,
  sleep,
} from './http-helpers.js';

/** Paging, sorting, result shaping and includes (https://hl7.org/fhir/R4/search.html#return). */

const SUBSETTED = { system: 'http://terminology.hl7.org/CodeSystem/v3-ObservationValue', code: 'SUBSETTED' };

describe('paging and totals', () => {
  let t: TestApp;
  const created: string[] = [];
  beforeAll(async () => {
    t = await startTestApp();
    for (let i = 0; i < 23; i++) {
      const pt = await create(t.app, patient({ name: [{ family: 'Pager', given: [`P${i}`] }] }));
      created.push(`Patient/${pt.id}`);
    }
    await create(t.app, patient({ name: [{ family: 'Elsewhere' }] }));
  });
  afterAll(() => t.close());

  it('follows next links to the end, seeing every match exactly once', async () => {
    const seen: string[] = [];
    let url: string | undefined = '/fhir/Patient?family=Pager&_count=5&_total=accurate';
    let pages = 0;
    while (url) {
      const res = await request(t.app).get(url);
      expect(res.status).toBe(200);
      const bundle = res.body as Bundle;
      expect(bundle.total).toBe(23);
      expect(bundle.entry?.length).toBeLessThanOrEqual(5);
      expect(link(bundle, 'self')).toBeDefined();
      expect(link(bundle, 'first')).toBeDefined();
      if (pages > 0) {
        expect(link(bundle, 'previous')).toBeDefined();
      } else {
        expect(link(bundle, 'previous')).toBeUndefined();
      }
      seen.push(...ids(bundle));
      const next = link(bundle, 'next');
      url = next ? pathOf(next) : undefined;
      pages++;
    }
    expect(pages).toBe(5);
    expect(seen).toHaveLength(23);
    expect(new Set(seen)).toEqual(new Set(created));
  });

  it('keeps the search criteria in the paging links', async () => {
    const res = await request(t.app).get('/fhir/Patient?family=Pager&_count=10');
    const next = new URL(link(res.body as Bundle, 'next') as string);
    expect(next.searchParams.get('family')).toBe('Pager');
    expect(next.searchParams.get('_count')).toBe('10');
    const previous = await request(t.app).get(
      pathOf(link((await request(t.app).get(pathOf(next.href))).body as Bundle, 'previous') as string),
    );
    expect(ids(previous.body as Bundle)).toEqual(ids(res.body as Bundle));
  });

  it('leaves total out with _total=none and still links to the next page', async () => {
    const res = await request(t.app).get('/fhir/Patient?family=Pager&_count=20&_total=none');
    expect(res.status).toBe(200);
    expect(res.body.total).toBeUndefined();
    expect(res.body.entry).toHaveLength(20);
    const last = await request(t.app).get(pathOf(link(res.body as Bundle, 'next') as string));
    expect(last.body.entry).toHaveLength(3);
    expect(link(last.body as Bundle, 'next')).toBeUndefined();
  });

  it('answers _summary=count with the total and no entries', async () => {
    const res = await request(t.app).get('/fhir/Patient?family=Pager&_summary=count');
    expect(res.status).toBe(200);
    expect(res.body.total).toBe(23);
    expect(res.body.entry).toBeUndefined();
  });
});

describe('sorting', () => {
  let t: TestApp;
  const byName = new Map<string, string>();
  beforeAll(async () => {
    t = await startTestApp();
    const rows: [string, string][] = [
      ['Bauer', '1980-01-01'],
      ['Adams', '1990-06-15'],
      ['Bauer', '1975-03-03'],
      ['Clarke', '1960-12-24'],
    ];
    for (const [family, birthDate] of rows) {
      await sleep(2);
      const pt = await create(t.app, patient({ name: [{ family }], birthDate }));
      byName.set(pt.id as string, `${family} ${birthDate.slice(0, 4)}`);
    }
  });
  afterAll(() => t.close());

  async function order(query: string): Promise<string[]> {
    const res = await request(t.app).get(`/fhir/Patient?${query}`);
    expect(res.status).toBe(200);
    return ids(res.body as Bundle).map((ref) => byName.get(ref.split('/')[1] as string) as string);
  }

  it('sorts ascending and descending by one key', async () => {
    expect(await order('_sort=birthdate')).toEqual(['Clarke 1960', 'Bauer 1975', 'Bauer 1980', 'Adams 1990']);
    expect(await order('_sort=-birthdate')).toEqual([
      'Adams 1990',
      'Bauer 1980',
      'Bauer 1975',
      'Clarke 1960',
    ]);
  });

  it('sorts by several keys, the later breaking ties of the earlier', async () => {
    expect(await order('_sort=family,-birthdate')).toEqual([
      'Adams 1990',
      'Bauer 1980',
      'Bauer 1975',
      'Clarke 1960',
    ]);
    expect(await order('_sort=-family,birthdate')).toEqual([
      'Clarke 1960',
      'Bauer 1975',
      'Bauer 1980',
      'Adams 1990',
    ]);
  });

  it('sorts by _lastUpdated', async () => {
    expect(await order('_sort=-_lastUpdated')).toEqual([
      'Clarke 1960',
      'Bauer 1975',
      'Adams 1990',
      'Bauer 1980',
    ]);
  });
});

describe('_summary and _elements', () => {
  let t: TestApp;
  beforeAll(async () => {
    t = await startTestApp();
    await create(
      t.app,
      patient({
        name: [{ family: 'Subset' }],
        text: { status: 'generated', div: '<div xmlns="http://www.w3.org/1999/xhtml">Subset</div>' },
        maritalStatus: { text: 'Married' },
        contact: [
          { name: { family: 'Subset', given: ['Kin'] }, telecom: [{ system: 'phone', value: '555-0199' }] },
        ],
      }),
    );
  });
  afterAll(() => t.close());

  it('_summary=true keeps only summary elements and tags the resource SUBSETTED', async () => {
    const res = await request(t.app).get('/fhir/Patient?_summary=true');
    const pt = res.body.entry[0].resource as Patient;
    expect(pt.name?.[0]?.family).toBe('Subset');
    expect(pt.birthDate).toBe('1968-04-12');
    expect(pt.contact).toBeUndefined();
    expect(pt.maritalStatus).toBeUndefined();
    expect(pt.text).toBeUndefined();
    expect(pt.meta?.tag).toContainEqual(SUBSETTED);
  });

  it('_elements returns the listed elements plus id and meta, tagged SUBSETTED', async () => {
    const res = await request(t.app).get('/fhir/Patient?_elements=name,birthDate');
    const pt = res.body.entry[0].resource as Patient;
    expect(Object.keys(pt).sort()).toEqual(['birthDate', 'id', 'meta', 'name', 'resourceType']);
    expect(pt.meta?.tag).toContainEqual(SUBSETTED);
  });

  it('does not store the subset: a read returns the whole resource, untagged', async () => {
    const search = await request(t.app).get('/fhir/Patient?_elements=name');
    const read = await request(t.app).get(`/fhir/Patient/${search.body.entry[0].resource.id}`);
    expect(read.body.contact).toHaveLength(1);
    expect(read.body.meta.tag).toBeUndefined();
  });
});

describe('_include and _revinclude', () => {
  let t: TestApp;
  let ptRef: string;
  let drRef: string;
  let srRef: string;
  /** A booking Task the client creates about the referral. */
  let taskRef: string;
  /** The fulfilment Task the server creates with the referral. */
  let referralTaskRef: string;
  beforeAll(async () => {
    t = await startTestApp();
    ptRef = `Patient/${(await create(t.app, patient())).id}`;
    drRef = `Practitioner/${(await create(t.app, practitioner('Osei'))).id}`;
    const sr = await create(t.app, referralServiceRequest({ subject: ptRef, requester: drRef }));
    srRef = `ServiceRequest/${sr.id}`;
    referralTaskRef = `Task/${(await expectIntake(t.app, sr)).tasks[0]?.id}`;
    taskRef = `Task/${(await create(t.app, bookingTask(srRef, { for: { reference: ptRef } }))).id}`;
    // Noise that must not be included.
    const other = `Patient/${(await create(t.app, patient())).id}`;
    await create(t.app, referralServiceRequest({ subject: other, requester: drRef }));
  });
  afterAll(() => t.close());

  async function search(query: string): Promise<Bundle> {
    const res = await request(t.app).get(`/fhir/${query}`);
    expect(res.status, JSON.stringify(res.body)).toBe(200);
    return res.body as Bundle;
  }

  it('_include=ServiceRequest:subject adds the referred patient as an include entry', async () => {
    const bundle = await search(`ServiceRequest?_id=${srRef.split('/')[1]}&_include=ServiceRequest:subject`);
    expect(ids(bundle)).toEqual([srRef]);
    expect(ids(bundle, 'include')).toEqual([ptRef]);
    expect(bundle.total).toBe(1);
  });

  it('_include with a target type only follows references of that type', async () => {
    const id = srRef.split('/')[1];
    const patients = await search(`ServiceRequest?_id=${id}&_include=ServiceRequest:subject:Patient`);
    expect(ids(patients, 'include')).toEqual([ptRef]);
    const groups = await search(`ServiceRequest?_id=${id}&_include=ServiceRequest:subject:Group`);
    expect(ids(groups, 'include')).toEqual([]);
  });

  it('includes from several parameters at once', async () => {
    const bundle = await search(
      `ServiceRequest?_id=${srRef.split('/')[1]}&_include=ServiceRequest:subject&_include=ServiceRequest:requester`,
    );
    expect(ids(bundle, 'include').sort()).toEqual([drRef, ptRef].sort());
  });

  it('_revinclude=Task:focus adds the tasks whose focus is the referral', async () => {
    const bundle = await search(`ServiceRequest?_id=${srRef.split('/')[1]}&_revinclude=Task:focus`);
    expect(ids(bundle)).toEqual([srRef]);
    // The client's booking Task and the server's fulfilment Task; not the other referral's Task.
    expect(ids(bundle, 'include').sort()).toEqual([referralTaskRef, taskRef].sort());
  });

  it('_revinclude=ServiceRequest:subject adds the referrals of a patient', async () => {
    const bundle = await search(`Patient?_id=${ptRef.split('/')[1]}&_revinclude=ServiceRequest:subject`);
    expect(ids(bundle, 'include')).toEqual([srRef]);
  });

  it(':iterate follows includes of included resources (Task -> ServiceRequest -> Patient)', async () => {
    const bundle = await search(
      `Task?_id=${taskRef.split('/')[1]}&_include=Task:focus&_include:iterate=ServiceRequest:subject`,
    );
    expect(ids(bundle)).toEqual([taskRef]);
    expect(ids(bundle, 'include').sort()).toEqual([ptRef, srRef].sort());
  });

  it('without :iterate, an include of another type is rejected', async () => {
    const res = await request(t.app).get('/fhir/Task?_include=ServiceRequest:subject');
    expectOutcome(res, 400, 'value', 'invalid-search-parameter');
  });

  it('lists an included resource once even when several matches point at it', async () => {
    await create(t.app, referralServiceRequest({ subject: ptRef, requester: drRef }));
    const bundle = await search(`ServiceRequest?subject=${ptRef}&_include=ServiceRequest:subject`);
    expect(ids(bundle)).toHaveLength(2);
    expect(ids(bundle, 'include')).toEqual([ptRef]);
  });
});

describe('GET and POST _search, unknown parameters', () => {
  let t: TestApp;
  let ptRef: string;
  beforeAll(async () => {
    t = await startTestApp();
    ptRef = `Patient/${(await create(t.app, patient({ name: [{ family: 'Form' }] }))).id}`;
    const drRef = `Practitioner/${(await create(t.app, practitioner('Form'))).id}`;
    await create(t.app, referralServiceRequest({ subject: ptRef, requester: drRef }));
    // A referral arrives active; the referrer then marks the second one completed.
    const done = await create(t.app, referralServiceRequest({ subject: ptRef, requester: drRef }));
    const put = await putResource(t.app, `/fhir/ServiceRequest/${done.id}`, { ...done, status: 'completed' });
    expect(put.status, JSON.stringify(put.body)).toBe(200);
    expect((put.body as ServiceRequest).status).toBe('completed');
    await create(t.app, patient({ name: [{ family: 'Other' }] }));
  });
  afterAll(() => t.close());

  it('POST [type]/_search with a form body searches like GET', async () => {
    const get = await request(t.app).get(`/fhir/ServiceRequest?subject=${ptRef}&status=active`);
    const post = await expectNothingWritten(t.app, () =>
      request(t.app)
        .post('/fhir/ServiceRequest/_search')
        .type('form')
        .send(`subject=${encodeURIComponent(ptRef)}&status=active`),
    );
    expect(post.status).toBe(200);
    expect(post.body.type).toBe('searchset');
    expect(post.body.total).toBe(1);
    expect(ids(post.body as Bundle)).toEqual(ids(get.body as Bundle));
  });

  it('POST _search combines query-string and form parameters', async () => {
    const res = await request(t.app)
      .post(`/fhir/ServiceRequest/_search?status=completed`)
      .type('form')
      .send(`subject=${encodeURIComponent(ptRef)}`);
    expect(res.status).toBe(200);
    expect(res.body.total).toBe(1);
    expect(res.body.entry[0].resource.status).toBe('completed');
  });

  it('POST _search with an empty body returns every resource of the type', async () => {
    const res = await request(t.app).post('/fhir/Patient/_search').type('form').send('');
    expect(res.status).toBe(200);
    expect(res.body.total).toBe(2);
  });

  it('reports an unknown parameter in an outcome entry and applies the known ones', async () => {
    const res = await request(t.app).get('/fhir/Patient?family=Form&shoe-size=42');
    expect(res.status).toBe(200);
    const bundle = res.body as Bundle;
    expect(bundle.total).toBe(1);
    const outcomes = (bundle.entry ?? []).filter((e) => e.search?.mode === 'outcome');
    expect(outcomes).toHaveLength(1);
    const outcome = outcomes[0]?.resource as OperationOutcome;
    expect(outcome.resourceType).toBe('OperationOutcome');
    expect(outcome.issue?.[0]).toMatchObject({
      severity: 'warning',
      code: 'not-supported',
      details: { coding: [{ system: ERROR_CODE_SYSTEM, code: 'unknown-search-parameter' }] },
      expression: ['shoe-size'],
    });
  });

  it('reports a chained parameter, which this server does not support', async () => {
    const res = await request(t.app).get('/fhir/ServiceRequest?subject.name=Form');
    expect(res.status).toBe(200);
    const outcome = res.body.entry.find((e: { search: { mode: string } }) => e.search.mode === 'outcome');
    expect(outcome.resource.issue[0].expression).toEqual(['subject.name']);
  });

  it('rejects an unknown parameter with 400 under Prefer: handling=strict', async () => {
    const res = await request(t.app)
      .get('/fhir/Patient?family=Form&shoe-size=42')
      .set('Prefer', 'handling=strict');
    const outcome = expectOutcome(res, 400, 'not-supported', 'unknown-search-parameter');
    expect(outcome.issue?.[0]?.expression).toEqual(['shoe-size']);
  });

  it('accepts _format=json and answers JSON', async () => {
    const res = await request(t.app).get('/fhir/Patient?_format=json&family=Form');
    expect(res.status).toBe(200);
    expect(res.body.total).toBe(1);
    expect(res.body.entry.some((e: { search: { mode: string } }) => e.search.mode === 'outcome')).toBe(false);
  });
});

describe('Bundle.total without _total', () => {
  let t: TestApp;
  beforeAll(async () => {
    t = await startTestApp();
    for (let i = 0; i < 7; i++) {
      await request(t.app)
        .post('/fhir/Patient')
        .set('content-type', FHIR_JSON)
        .send(JSON.stringify({ resourceType: 'Patient', name: [{ family: 'Totalson' }] }));
    }
  });
  afterAll(() => t.close());

  it('is left out of a page that is not the last, and exact on the last page, without counting', async () => {
    const first = await request(t.app).get('/fhir/Patient?family=Totalson&_count=5');
    expect(first.body.total).toBeUndefined();
    expect(first.body.entry).toHaveLength(5);
    const last = await request(t.app).get('/fhir/Patient?family=Totalson&_count=5&_offset=5');
    expect(last.body.total).toBe(7);
    const accurate = await request(t.app).get('/fhir/Patient?family=Totalson&_count=5&_total=accurate');
    expect(accurate.body.total).toBe(7);
  });
});
