import { randomBytes } from 'node:crypto';
import type { Bundle, OperationOutcome, Resource } from '@medplum/fhirtypes';
import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FHIR_JSON, startTestApp, type TestApp } from '../support/test-app.js';
import { postBundle, postResource, transaction } from './http-helpers.js';

/**
 * Issue 12, "Fidelity fixes": valid R4 that was refused (and malformed references that passed),
 * each through the real HTTP interface of the composed app.
 */
const XHTML = 'http://www.w3.org/1999/xhtml';
const PT = 'urn:uuid:7d3c1f0a-5b2e-4c8d-9a6f-1e2d3c4b5a69';

function issues(res: { body: unknown }): OperationOutcome['issue'] {
  return (res.body as OperationOutcome).issue ?? [];
}

describe('fidelity to R4: no false rejections, malformed references refused', () => {
  let t: TestApp;
  beforeAll(async () => {
    t = await startTestApp({ bodyLimitBytes: 5 * 1024 * 1024 });
  });
  afterAll(async () => {
    await t?.close();
  });

  describe('contained references in Bundle entries (ref-1 with %rootResource per entry)', () => {
    /**
     * https://hl7.org/fhir/R4/fhirpath.html#variables: %resource is the resource containing the
     * node, %rootResource the container of a contained resource; a Bundle entry's resource is the
     * root of its own constraints. Synthea writes Bundles of this shape.
     */
    const medicationRequest = (reasonReference: string): Resource =>
      ({
        resourceType: 'MedicationRequest',
        contained: [
          { resourceType: 'Medication', id: 'med1', code: { text: 'Ibuprofen 400 mg oral tablet' } },
          { resourceType: 'Condition', id: 'cond1', subject: { reference: PT }, code: { text: 'Knee pain' } },
        ],
        status: 'active',
        intent: 'order',
        medicationReference: { reference: '#med1' },
        subject: { reference: PT },
        reasonReference: [{ reference: reasonReference }],
      }) as Resource;

    const bundle = (reasonReference: string): Bundle =>
      transaction([
        {
          fullUrl: PT,
          resource: { resourceType: 'Patient', name: [{ family: 'Contained' }] },
          request: { method: 'POST', url: 'Patient' },
        },
        {
          fullUrl: 'urn:uuid:2b7e1c4d-8f3a-4e6b-9d0c-5a4b3c2d1e0f',
          resource: medicationRequest(reasonReference),
          request: { method: 'POST', url: 'MedicationRequest' },
        },
      ]);

    it('accepts a transaction whose entry references its own contained resources', async () => {
      const res = await postBundle(t, bundle('#cond1'));
      expect(res.status, JSON.stringify(res.body)).toBe(200);
      const stored = await request(t.app).get(
        `/fhir/${(res.body as Bundle).entry?.[1]?.response?.location?.split('/_history')[0]}`,
      );
      expect(stored.body.medicationReference).toEqual({ reference: '#med1' });
    });

    it('accepts a single resource with contained references (the root binding unchanged)', async () => {
      const res = await postResource(t.app, '/fhir/MedicationRequest', {
        ...medicationRequest('#cond1'),
        subject: { reference: 'Patient/somebody' },
      });
      expect(res.status, JSON.stringify(res.body)).toBe(201);
    });

    it('still refuses a reference to a contained id the entry does not have, naming the place', async () => {
      const res = await postBundle(t, bundle('#nope'));
      expect(res.status, JSON.stringify(res.body)).toBe(400);
      const issue = issues(res).find((i) => i.details?.text?.startsWith('ref-1'));
      expect(issue, JSON.stringify(res.body)).toBeDefined();
      expect(issue?.expression).toEqual(['Bundle.entry[1].resource.reasonReference[0]']);
    });
  });

  describe('dom-3 counts references from inside contained resources (%resource.descendants())', () => {
    it('accepts a contained resource referenced only by another contained resource', async () => {
      const res = await postResource(t.app, '/fhir/Observation', {
        resourceType: 'Observation',
        status: 'final',
        code: { text: 'pain score' },
        focus: [{ reference: '#c1' }],
        contained: [
          {
            resourceType: 'Condition',
            id: 'c1',
            subject: { display: 'the patient' },
            asserter: { reference: '#p1' },
          },
          { resourceType: 'Practitioner', id: 'p1', name: [{ family: 'Asserter' }] },
        ],
      });
      expect(res.status, JSON.stringify(res.body)).toBe(201);
    });

    it('still refuses a contained resource nothing references, naming it', async () => {
      const res = await postResource(t.app, '/fhir/Observation', {
        resourceType: 'Observation',
        status: 'final',
        code: { text: 'pain score' },
        contained: [{ resourceType: 'Practitioner', id: 'p1', name: [{ family: 'Orphan' }] }],
      });
      expect(res.status).toBe(400);
      expect(issues(res).find((i) => i.details?.text?.startsWith('dom-3'))?.expression).toEqual([
        'Observation.contained[0]',
      ]);
    });
  });

  describe('narrative styles (https://hl7.org/fhir/R4/narrative.html#css)', () => {
    const post = (style: string) =>
      postResource(t.app, '/fhir/Patient', {
        resourceType: 'Patient',
        text: {
          status: 'generated',
          div: `<div xmlns="${XHTML}"><p style="${style.replaceAll('"', '&quot;')}">x</p></div>`,
        },
        name: [{ family: 'Styled' }],
      });

    it.each([
      ['an https background image', 'background-image: url(https://example.org/logo.png)'],
      ['a quoted relative url', "background: url('img/bg.png') no-repeat"],
      ['a data: raster image', 'background: url("data:image/png;base64,iVBORw0KGgo=")'],
      [
        'the IG Publisher style',
        'padding-left: 3px; background-image: url(tbl_bck1.png); background-repeat: repeat-y',
      ],
    ])('accepts %s', async (_what, style) => {
      const res = await post(style);
      expect(res.status, JSON.stringify(res.body)).toBe(201);
    });

    it.each([
      ['a javascript: url', 'background: url(javascript:alert(1))'],
      ['a quoted vbscript: url behind spaces', 'background: url( "  vbscript:msgbox(1)" )'],
      ['a data:text/html url', 'background: url(data:text/html,%3Cscript%3Ealert(1)%3C/script%3E)'],
      ['an SVG data: url', "background: url('data:image/svg+xml;base64,PHN2Zz48L3N2Zz4=')"],
      ['a CSS-escaped javascript: url', 'background: url(\\6a avascript:alert(1))'],
      ['a second url() that is active', 'background: url(a.png), url(data:text/html,x)'],
      ['expression()', 'width: expression(alert(1))'],
      ['-moz-binding', '-moz-binding: url(https://example.org/x.xml#x)'],
      ['a behavior', 'behavior: url(x.htc)'],
    ])('refuses %s with 400 unsafe-narrative', async (_what, style) => {
      const res = await post(style);
      expect(res.status, JSON.stringify(res.body)).toBe(400);
      expect(issues(res)[0]?.details?.coding?.[0]?.code).toBe('unsafe-narrative');
      expect(issues(res)[0]?.expression).toEqual(['Patient.text.div']);
    });
  });

  describe('base64Binary has no 1 MB limit (https://hl7.org/fhir/R4/datatypes.html#base64Binary)', () => {
    const documentReference = (data: string): Resource =>
      ({
        resourceType: 'DocumentReference',
        status: 'current',
        content: [{ attachment: { contentType: 'application/pdf', title: 'scan.pdf', data } }],
      }) as Resource;

    it('accepts a 3 MB attachment under the body limit', async () => {
      const data = randomBytes(3 * 768 * 1024).toString('base64');
      expect(data.length).toBe(3 * 1024 * 1024);
      const res = await postResource(t.app, '/fhir/DocumentReference', documentReference(data));
      expect(res.status, JSON.stringify(res.body).slice(0, 500)).toBe(201);
      const read = await request(t.app).get(`/fhir/DocumentReference/${res.body.id}`);
      expect(read.body.content[0].attachment.data).toBe(data);
    });

    it('still refuses malformed base64 over 1 MB, naming the element', async () => {
      const data = `${randomBytes(768 * 1024 + 3).toString('base64')}!`;
      const res = await postResource(t.app, '/fhir/DocumentReference', documentReference(data));
      expect(res.status).toBe(400);
      expect(issues(res)[0]?.expression).toEqual(['DocumentReference.content[0].attachment.data']);
      expect(issues(res)[0]?.details?.text).toBe('Invalid base64Binary format');
    });

    it('still refuses a body over the limit with 413', async () => {
      const data = randomBytes(6 * 768 * 1024).toString('base64');
      const res = await postResource(t.app, '/fhir/DocumentReference', documentReference(data));
      expect(res.status).toBe(413);
    });
  });

  describe('reference format (https://hl7.org/fhir/R4/references.html)', () => {
    const withReference = (reference: string): Resource =>
      ({
        resourceType: 'Patient',
        contained: [{ resourceType: 'Practitioner', id: 'gp', name: [{ family: 'Contained' }] }],
        generalPractitioner: [{ reference: '#gp' }, { reference }],
      }) as Resource;

    it.each([
      'Practitioner/p1',
      'Practitioner/A-Za-z0-9.x',
      `Practitioner/${'a'.repeat(64)}`,
      'Practitioner/p1/_history/2',
      'https://elsewhere.example.org/fhir/Practitioner/77',
      'http://example.org/fhir/Practitioner/77/_history/1',
      'urn:uuid:0c1d2e3f-4a5b-4c6d-8e7f-9a0b1c2d3e4f',
      'urn:oid:2.16.840.1.113883.19.5',
      '#gp',
    ])('accepts %s', async (reference) => {
      const res = await postResource(t.app, '/fhir/Patient', withReference(reference));
      expect(res.status, JSON.stringify(res.body)).toBe(201);
    });

    it.each([
      'Patient//1',
      'Practitioner/',
      '/Practitioner/1',
      'Practitioner/1/',
      'Practitioner/1/_history/',
      'Practitioner/1/_history',
      'Practitioner/1/history/2',
      'Practitioner/1//_history/2',
      'Practitioner',
      'Nonsense/1',
      'practitioner/1',
      `Practitioner/${'a'.repeat(65)}`,
      'Practitioner/a b',
      'Practitioner/a_b',
      ' Practitioner/1',
      'javascript:alert(1)',
      'JavaScript:alert(1)',
      'data:text/html,<script>alert(1)</script>',
      'ftp://example.org/fhir/Practitioner/1',
      'http://',
      'https:///Practitioner/1',
      'http://exa mple.org/Practitioner/1',
      'urn:uuid:not-a-uuid',
      'urn:oid:1.',
      'urn:oid:1..2',
      '#a b',
    ])('refuses %s with 400 naming Patient.generalPractitioner[1].reference', async (reference) => {
      const res = await postResource(t.app, '/fhir/Patient', withReference(reference));
      expect(res.status, JSON.stringify(res.body)).toBe(400);
      const issue = issues(res).find((i) => i.expression?.[0] === 'Patient.generalPractitioner[1].reference');
      expect(issue, JSON.stringify(res.body)).toBeDefined();
      expect(issue?.details?.coding?.[0]?.code).toBe('invalid-resource');
    });

    it('names ServiceRequest.subject.reference for a malformed subject', async () => {
      const res = await postResource(t.app, '/fhir/ServiceRequest', {
        resourceType: 'ServiceRequest',
        status: 'active',
        intent: 'order',
        subject: { reference: 'Patient//1' },
      });
      expect(res.status, JSON.stringify(res.body)).toBe(400);
      expect(issues(res)[0]?.expression).toEqual(['ServiceRequest.subject.reference']);
      expect(issues(res)[0]?.details?.text).toContain('Patient//1');
    });

    it('names the entry in a Bundle', async () => {
      const res = await postBundle(
        t,
        transaction([
          {
            resource: { resourceType: 'Patient', managingOrganization: { reference: 'javascript:alert(1)' } },
            request: { method: 'POST', url: 'Patient' },
          },
        ]),
      );
      expect(res.status, JSON.stringify(res.body)).toBe(400);
      expect(issues(res)[0]?.expression).toEqual(['Bundle.entry[0].resource.managingOrganization.reference']);
    });

    it('answers a 10k-character near-miss within milliseconds', async () => {
      for (const reference of [
        `${'Patient/'.repeat(1500)}!`,
        `Patient/${'a'.repeat(12_000)}`,
        `Patient/a${'/_history/a'.repeat(1000)}`,
        `urn:oid:1${'.1'.repeat(6000)}.`,
        `http://example.org/${'a/'.repeat(6000)} `,
      ]) {
        const start = performance.now();
        const res = await request(t.app)
          .post('/fhir/Patient')
          .set('content-type', FHIR_JSON)
          .send(JSON.stringify(withReference(reference)));
        expect(res.status).toBe(400);
        expect(performance.now() - start).toBeLessThan(1000);
      }
    });
  });
});
