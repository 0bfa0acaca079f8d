import type { Bundle, Patient, Resource, ServiceRequest } from '@medplum/fhirtypes';
import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestApp, type TestApp } from '../support/test-app.js';
import {
  create,
  expectNothingWritten,
  expectOutcome,
  ids,
  MRN_SYSTEM,
  patient,
  practitioner,
  putResource,
  referralServiceRequest,
  sleep,
} from './http-helpers.js';

/** Search parameter types, prefixes and modifiers (https://hl7.org/fhir/R4/search.html). */

const OTHER_SYSTEM = 'http://clinic.example.org/fhir/sid/patient-number';

describe('search by parameter type', () => {
  let t: TestApp;
  /** Patients: A Müller (male, 1970-05-15), B Muller (female, 1985-11-02), C Mullins (male, 1970-12-31), D Van der Berg (no gender, born "1992"). */
  const p: Record<'A' | 'B' | 'C' | 'D', string> = { A: '', B: '', C: '', D: '' };
  const sr: Record<'acl' | 'tka' | 'back', string> = { acl: '', tka: '', back: '' };
  const risk: Record<'low' | 'high', string> = { low: '', high: '' };
  let practitionerRef = '';

  /** Runs a search and returns the matched ids as short letters/names, sorted. */
  async function find(type: string, query: string): Promise<string[]> {
    const res = await request(t.app).get(`/fhir/${type}?${query}`);
    expect(res.status, JSON.stringify(res.body)).toBe(200);
    const names = new Map<string, string>(
      [...Object.entries(p), ...Object.entries(sr), ...Object.entries(risk)].map(([k, v]) => [v, k]),
    );
    const bundle = res.body as Bundle;
    expect(bundle.total).toBe(ids(bundle).length);
    return ids(bundle)
      .map((ref) => names.get(ref.split('/')[1] as string) ?? ref)
      .sort();
  }

  beforeAll(async () => {
    t = await startTestApp();
    const make = async (r: Resource): Promise<string> => (await create(t.app, r)).id as string;
    p.A = await make(
      patient({
        identifier: [{ system: MRN_SYSTEM, value: 'S-1' }],
        name: [{ family: 'Müller', given: ['Jürgen'] }],
        gender: 'male',
        birthDate: '1970-05-15',
      }),
    );
    p.B = await make(
      patient({
        identifier: [{ system: MRN_SYSTEM, value: 'S-2' }],
        name: [{ family: 'Muller', given: ['Anna'] }],
        gender: 'female',
        birthDate: '1985-11-02',
      }),
    );
    p.C = await make(
      patient({
        identifier: [{ system: OTHER_SYSTEM, value: 'S-1' }],
        name: [{ family: 'Mullins', given: ['Seán'] }],
        gender: 'male',
        birthDate: '1970-12-31',
      }),
    );
    p.D = await make(
      patient({
        identifier: [{ value: 'S-9' }],
        name: [{ family: 'Van der Berg', given: ['Pieter'] }],
        gender: undefined,
        birthDate: '1992',
      }),
    );
    practitionerRef = `Practitioner/${await make(practitioner('Okonkwo'))}`;
    // Every referral names its referrer: tka a practitioner, acl and back a referring clinic.
    const clinicRef = `Organization/${await make({ resourceType: 'Organization', name: 'Harbour Orthopaedics' } as Resource)}`;
    sr.acl = await make(
      referralServiceRequest(
        { subject: `Patient/${p.A}`, requester: clinicRef },
        {
          instantiatesUri: ['http://pt.example.org/protocols/acl-rehab'],
          authoredOn: '2024-03-05T09:30:00Z',
        },
      ),
    );
    sr.tka = await make(
      referralServiceRequest(
        { subject: `Patient/${p.B}`, requester: practitionerRef },
        {
          instantiatesUri: ['http://pt.example.org/protocols/tka-rehab/v2'],
          authoredOn: '2024-03-06T14:00:00Z',
        },
      ),
    );
    sr.back = await make(
      referralServiceRequest(
        { subject: `Patient/${p.A}`, requester: clinicRef },
        { authoredOn: '2024-04-01', priority: 'urgent' },
      ),
    );
    // A referral arrives active; the referrer then puts this one on hold.
    const back = (await request(t.app).get(`/fhir/ServiceRequest/${sr.back}`)).body as ServiceRequest;
    expect(
      (await putResource(t.app, `/fhir/ServiceRequest/${sr.back}`, { ...back, status: 'on-hold' })).status,
    ).toBe(200);
    const assessment = (probability: number) => ({
      resourceType: 'RiskAssessment',
      status: 'final',
      subject: { reference: `Patient/${p.A}` },
      code: { text: 'Fall risk assessment' },
      prediction: [{ outcome: { text: 'Fall within 6 months' }, probabilityDecimal: probability }],
    });
    risk.low = await make(assessment(0.3) as Resource);
    risk.high = await make(assessment(0.75) as Resource);
  });
  afterAll(() => t.close());

  describe('token', () => {
    it('matches system|code exactly', async () => {
      expect(await find('Patient', `identifier=${MRN_SYSTEM}|S-1`)).toEqual(['A']);
    });
    it('matches a bare code in any system', async () => {
      expect(await find('Patient', 'identifier=S-1')).toEqual(['A', 'C']);
    });
    it('matches |code only where there is no system', async () => {
      expect(await find('Patient', 'identifier=|S-9')).toEqual(['D']);
      expect(await find('Patient', 'identifier=|S-1')).toEqual([]);
    });
    it('matches system| to any code in that system', async () => {
      expect(await find('Patient', `identifier=${MRN_SYSTEM}|`)).toEqual(['A', 'B']);
    });
    it('matches a code on a code element and ORs comma-separated values', async () => {
      expect(await find('Patient', 'gender=male')).toEqual(['A', 'C']);
      expect(await find('Patient', 'gender=female,male')).toEqual(['A', 'B', 'C']);
    });
    it(':not excludes the code and keeps resources without any value', async () => {
      expect(await find('Patient', 'gender:not=male')).toEqual(['B', 'D']);
    });
    it(':missing=true/false selects on presence of the element', async () => {
      expect(await find('Patient', 'gender:missing=true')).toEqual(['D']);
      expect(await find('Patient', 'gender:missing=false')).toEqual(['A', 'B', 'C']);
    });
    it('matches a SNOMED-coded CodeableConcept by system|code', async () => {
      expect(await find('ServiceRequest', 'code=http://snomed.info/sct|91251008')).toEqual([
        'acl',
        'back',
        'tka',
      ]);
      expect(await find('ServiceRequest', 'status=on-hold')).toEqual(['back']);
      expect(await find('ServiceRequest', 'status=active')).toEqual(['acl', 'tka']);
      expect(await find('ServiceRequest', 'priority=urgent')).toEqual(['back']);
    });
  });

  describe('string', () => {
    it('matches by default on the start of the value, ignoring case and accents', async () => {
      expect(await find('Patient', 'family=mul')).toEqual(['A', 'B', 'C']);
      expect(await find('Patient', 'family=MÜLLER')).toEqual(['A', 'B']);
      expect(await find('Patient', 'family=ller')).toEqual([]);
    });
    it('matches any part of a HumanName with name=', async () => {
      expect(await find('Patient', 'name=sean')).toEqual(['C']);
    });
    it(':exact matches the whole value, case- and accent-sensitively', async () => {
      expect(await find('Patient', 'family:exact=Müller')).toEqual(['A']);
      expect(await find('Patient', 'family:exact=müller')).toEqual([]);
      expect(await find('Patient', 'family:exact=Mull')).toEqual([]);
    });
    it(':contains matches anywhere in the value', async () => {
      expect(await find('Patient', 'family:contains=DER')).toEqual(['D']);
      expect(await find('Patient', 'name:contains=urg')).toEqual(['A']);
    });
    it('ANDs repeated parameters', async () => {
      expect(await find('Patient', 'family=mul&gender=female')).toEqual(['B']);
    });
  });

  describe('reference', () => {
    it('matches Type/id', async () => {
      expect(await find('ServiceRequest', `subject=Patient/${p.A}`)).toEqual(['acl', 'back']);
    });
    it('matches a bare id, and an id with the :Type modifier', async () => {
      expect(await find('ServiceRequest', `subject=${p.B}`)).toEqual(['tka']);
      expect(await find('ServiceRequest', `subject:Patient=${p.A}`)).toEqual(['acl', 'back']);
      expect(await find('ServiceRequest', `subject:Group=${p.A}`)).toEqual([]);
    });
    it('matches through the patient and requester parameters', async () => {
      expect(await find('ServiceRequest', `patient=Patient/${p.B}`)).toEqual(['tka']);
      expect(await find('ServiceRequest', `requester=${practitionerRef}`)).toEqual(['tka']);
    });
  });

  describe('date', () => {
    it('matches a full date, and partial dates as the whole month or year', async () => {
      expect(await find('Patient', 'birthdate=1970-05-15')).toEqual(['A']);
      expect(await find('Patient', 'birthdate=1970-05')).toEqual(['A']);
      expect(await find('Patient', 'birthdate=1970')).toEqual(['A', 'C']);
      expect(await find('Patient', 'birthdate=eq1992')).toEqual(['D']);
    });
    it('ne excludes the value', async () => {
      expect(await find('Patient', 'birthdate=ne1970-05-15')).toEqual(['B', 'C', 'D']);
    });
    it('gt/lt compare against the range of the value', async () => {
      expect(await find('Patient', 'birthdate=gt1970-05-15')).toEqual(['B', 'C', 'D']);
      expect(await find('Patient', 'birthdate=lt1970-12-31')).toEqual(['A']);
      expect(await find('Patient', 'birthdate=gt1992-06-01')).toEqual(['D']);
    });
    it('ge/le include the value itself', async () => {
      expect(await find('Patient', 'birthdate=ge1970-12-31')).toEqual(['B', 'C', 'D']);
      expect(await find('Patient', 'birthdate=le1970-12-31')).toEqual(['A', 'C']);
    });
    it('sa/eb select ranges entirely after or before the value', async () => {
      expect(await find('Patient', 'birthdate=sa1985')).toEqual(['D']);
      expect(await find('Patient', 'birthdate=eb1985')).toEqual(['A', 'C']);
    });
    it('combines two prefixes into a closed range', async () => {
      expect(await find('Patient', 'birthdate=ge1970-01-01&birthdate=lt1980')).toEqual(['A', 'C']);
    });
    it('compares dateTimes with a timezone', async () => {
      expect(await find('ServiceRequest', 'authored=ge2024-03-06T00:00:00Z')).toEqual(['back', 'tka']);
      expect(await find('ServiceRequest', 'authored=lt2024-03-05T10:00:00%2B00:00')).toEqual(['acl']);
      expect(await find('ServiceRequest', 'authored=2024-03')).toEqual(['acl', 'tka']);
    });
  });

  describe('number', () => {
    it('matches equality within the precision of the value, and prefixes', async () => {
      expect(await find('RiskAssessment', 'probability=0.3')).toEqual(['low']);
      expect(await find('RiskAssessment', 'probability=gt0.5')).toEqual(['high']);
      expect(await find('RiskAssessment', 'probability=lt0.5')).toEqual(['low']);
      expect(await find('RiskAssessment', 'probability=ge0.75')).toEqual(['high']);
      expect(await find('RiskAssessment', 'probability=ne0.3')).toEqual(['high']);
    });
  });

  describe('uri', () => {
    it('matches the whole uri, and :below matches everything under a path', async () => {
      expect(
        await find('ServiceRequest', 'instantiates-uri=http://pt.example.org/protocols/acl-rehab'),
      ).toEqual(['acl']);
      expect(await find('ServiceRequest', 'instantiates-uri=http://pt.example.org/protocols')).toEqual([]);
      expect(await find('ServiceRequest', 'instantiates-uri:below=http://pt.example.org/protocols')).toEqual([
        'acl',
        'tka',
      ]);
    });
  });

  describe('_id and _lastUpdated', () => {
    it('_id matches one or several ids', async () => {
      expect(await find('Patient', `_id=${p.B}`)).toEqual(['B']);
      expect(await find('Patient', `_id=${p.A},${p.D},unknown-id`)).toEqual(['A', 'D']);
    });
    it('_lastUpdated selects by the time of the last write', async () => {
      const first = await create(t.app, practitioner('Early'));
      await sleep(5);
      const second = await create(t.app, practitioner('Late'));
      const at = first.meta?.lastUpdated as string;
      const after = await request(t.app).get(`/fhir/Practitioner?_lastUpdated=gt${at}`);
      expect(ids(after.body as Bundle)).toEqual([`Practitioner/${second.id}`]);
      const upTo = await request(t.app).get(`/fhir/Practitioner?_lastUpdated=le${at}`);
      expect(ids(upTo.body as Bundle)).toContain(`Practitioner/${first.id}`);
      expect(ids(upTo.body as Bundle)).not.toContain(`Practitioner/${second.id}`);
      const today = new Date().toISOString().slice(0, 10);
      const sameDay = await request(t.app).get(`/fhir/Practitioner?_lastUpdated=${today}`);
      expect(sameDay.body.total).toBe(3);
    });
  });

  describe('bad parameters', () => {
    const cases: [string, string][] = [
      ['an unsupported string modifier', 'Patient?family:fuzzy=mul'],
      ['a string modifier on a token', 'Patient?gender:contains=male'],
      ['a modifier on a date', 'Patient?birthdate:exact=1970'],
      ['a month that does not exist', 'Patient?birthdate=1970-13-01'],
      ['a date that is not a date', 'Patient?birthdate=yesterday'],
      ['a number that is not a number', 'RiskAssessment?probability=high'],
      [':missing with a non-boolean', 'Patient?gender:missing=maybe'],
      ['an empty value', 'Patient?family='],
      ['a reference :Type that the parameter cannot point at', 'ServiceRequest?subject:Practitioner=1'],
      ['a negative _count', 'Patient?_count=-1'],
      ['an unknown _total mode', 'Patient?_total=maybe'],
      ['an unknown _summary mode', 'Patient?_summary=brief'],
      ['a _sort on an unknown parameter', 'Patient?_sort=shoe-size'],
      ['an _include of a non-reference parameter', 'Patient?_include=Patient:name'],
      ['a _lastUpdated that is not a date', 'Patient?_lastUpdated=recently'],
    ];
    it.each(cases)('returns 400 invalid-search-parameter for %s', async (_what, url) => {
      const res = await expectNothingWritten(t.app, () => request(t.app).get(`/fhir/${url}`));
      const outcome = expectOutcome(res, 400, 'value', 'invalid-search-parameter');
      expect(outcome.issue?.[0]?.expression?.[0]).toBe(url.split('?')[1]?.split('=')[0]);
    });

    it('reports every bad parameter of one request, not just the first', async () => {
      const res = await request(t.app).get('/fhir/Patient?birthdate=someday&family:fuzzy=x');
      const outcome = expectOutcome(res, 400, 'value', 'invalid-search-parameter');
      expect(outcome.issue?.map((i) => i.expression?.[0])).toEqual(['birthdate', 'family:fuzzy']);
    });
  });
});

describe('search of an empty type', () => {
  let t: TestApp;
  beforeAll(async () => {
    t = await startTestApp();
  });
  afterAll(() => t.close());

  it('returns an empty searchset with total 0 and a self link', async () => {
    const res = await request(t.app).get('/fhir/Patient?family=nobody');
    expect(res.status).toBe(200);
    const bundle = res.body as Bundle;
    expect(bundle.type).toBe('searchset');
    expect(bundle.total).toBe(0);
    expect(bundle.entry).toBeUndefined();
    expect(bundle.link?.find((l) => l.relation === 'self')?.url).toMatch(/\/fhir\/Patient\?family=nobody$/);
  });

  it('answers a search on a type with no resources after one was deleted', async () => {
    const pt = (await create(t.app, patient())) as Patient;
    await request(t.app).delete(`/fhir/Patient/${pt.id}`);
    const res = await request(t.app).get('/fhir/Patient');
    expect(res.body.total).toBe(0);
  });
});

describe('long value lists', () => {
  it('answers 400 (not 500) to a search parameter with more than 100 values', async () => {
    const t = await startTestApp();
    try {
      const ids = Array.from({ length: 600 }, (_, i) => `Patient/p${i}`).join(',');
      const res = await request(t.app).get(`/fhir/ServiceRequest?subject=${encodeURIComponent(ids)}`);
      expect(res.status).toBe(400);
      expect(res.body.issue[0].details.coding[0].code).toBe('invalid-search-parameter');
      const ok = await request(t.app).get(
        `/fhir/ServiceRequest?subject=${encodeURIComponent(ids.split(',').slice(0, 100).join(','))}`,
      );
      expect(ok.status).toBe(200);
    } finally {
      await t.close();
    }
  });
});
