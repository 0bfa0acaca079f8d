import type { Patient } from '@medplum/fhirtypes';
import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ErrorCode } from '../../src/fhir/errors.js';
import { FHIR_JSON, startTestApp, type TestApp } from '../support/test-app.js';
import { create, expectNothingWritten, expectOutcome, patient, resourceCount } from './http-helpers.js';

/**
 * Every class of bad input gets a 4xx OperationOutcome with the right `issue.code` and stable code,
 * echoes no internals, and writes nothing (https://hl7.org/fhir/R4/http.html#Status-Codes).
 */

type Method = 'post' | 'put';

describe('bad request bodies', () => {
  let t: TestApp;
  let existing: Patient;
  beforeAll(async () => {
    t = await startTestApp();
    existing = await create(t.app, patient());
  });
  afterAll(() => t.close());

  /** Sends raw bytes to a create (POST) or an update (PUT) and asserts the error and that nothing was written. */
  async function rejects(
    method: Method,
    body: string | Buffer,
    status: number,
    issueCode: string,
    code: ErrorCode,
    contentType: string | null = FHIR_JSON,
  ) {
    const url = method === 'post' ? '/fhir/Patient' : `/fhir/Patient/${existing.id}`;
    const patientsBefore = await resourceCount(t.app, 'Patient');
    const res = await expectNothingWritten(t.app, () => {
      const req = request(t.app)[method](url);
      if (contentType !== null) req.set('content-type', contentType);
      // Raw bytes go out as they are (superagent would serialise a Buffer as JSON).
      return Buffer.isBuffer(body) ? req.serialize((b: unknown) => b as string).send(body) : req.send(body);
    });
    const outcome = expectOutcome(res, status, issueCode, code);
    expect(await resourceCount(t.app, 'Patient')).toBe(patientsBefore);
    const read = await request(t.app).get(`/fhir/Patient/${existing.id}`);
    expect(read.body.meta.versionId).toBe('1');
    return outcome;
  }

  describe.each<Method>(['post', 'put'])('%s', (method) => {
    const valid = (): Patient => ({ ...patient(), ...(method === 'put' ? { id: existing.id } : {}) });

    it('returns 400 body-not-json for a body that is not JSON', async () => {
      await rejects(method, '{"resourceType": "Patient", "name": [', 400, 'structure', 'body-not-json');
      await rejects(method, 'resourceType=Patient', 400, 'structure', 'body-not-json');
    });

    it('returns 400 body-missing for an empty body', async () => {
      await rejects(method, '', 400, 'required', 'body-missing');
    });

    it('returns 415 for a body sent as text/plain, XML or without a content type', async () => {
      const json = JSON.stringify(valid());
      await rejects(method, json, 415, 'not-supported', 'unsupported-media-type', 'text/plain');
      await rejects(method, json, 415, 'not-supported', 'unsupported-media-type', 'application/fhir+xml');
      await rejects(method, Buffer.from(json), 415, 'not-supported', 'unsupported-media-type', null);
    });

    it('returns 415 for a JSON body in a charset other than UTF-8', async () => {
      const json = JSON.stringify(valid());
      await rejects(
        method,
        json,
        415,
        'not-supported',
        'unsupported-media-type',
        `${FHIR_JSON}; charset=iso-8859-1`,
      );
    });

    it('returns 400 resource-type-mismatch when the body is another resource type', async () => {
      const body = { ...valid(), resourceType: 'Practitioner' };
      const outcome = await rejects(method, JSON.stringify(body), 400, 'invalid', 'resource-type-mismatch');
      expect(outcome.issue?.[0]?.expression).toEqual(['resourceType']);
    });

    it('returns 400 resource-type-mismatch when the body has no resourceType', async () => {
      const { resourceType: _rt, ...body } = valid();
      await rejects(method, JSON.stringify(body), 400, 'invalid', 'resource-type-mismatch');
    });

    it('returns 400 body-too-deep for JSON nested far deeper than any resource', async () => {
      const deep = `{"resourceType":"Patient","extension":${'['.repeat(5000)}${']'.repeat(5000)}}`;
      await rejects(method, deep, 400, 'structure', 'body-too-deep');
    });

    it.each(['__proto__', 'constructor', 'prototype'])(
      'returns 400 body-forbidden-key for a %s key',
      async (key) => {
        const top = `{"resourceType":"Patient",${method === 'put' ? `"id":"${existing.id}",` : ''}"${key}":{"admin":true}}`;
        await rejects(method, top, 400, 'security', 'body-forbidden-key');
        const nested = `{"resourceType":"Patient","name":[{"family":"X","${key}":{"polluted":1}}]}`;
        await rejects(method, nested, 400, 'security', 'body-forbidden-key');
        expect(({} as Record<string, unknown>).admin).toBeUndefined();
      },
    );

    it('returns 400 body-invalid-utf8 for bytes that are not UTF-8', async () => {
      const head = Buffer.from('{"resourceType":"Patient","name":[{"family":"M');
      const tail = Buffer.from('ller"}]}');
      for (const bad of [[0xfc], [0xc3, 0x28], [0xc0, 0xaf], [0xed, 0xa0, 0x80]]) {
        await rejects(
          method,
          Buffer.concat([head, Buffer.from(bad), tail]),
          400,
          'structure',
          'body-invalid-utf8',
        );
      }
    });

    it('returns 400 invalid-resource for an unknown element', async () => {
      const outcome = await rejects(
        method,
        JSON.stringify({ ...valid(), shoeSize: 42 }),
        400,
        'structure',
        'invalid-resource',
      );
      expect(outcome.issue?.[0]?.expression).toEqual(['Patient.shoeSize']);
    });

    it('returns 400 invalid-resource for an element of the wrong JSON type', async () => {
      const cases: Record<string, unknown>[] = [
        { birthDate: 19680412 },
        { active: 'yes' },
        { name: { family: 'NotAnArray' } },
        { gender: ['female'] },
      ];
      for (const change of cases) {
        const outcome = await rejects(
          method,
          JSON.stringify({ ...valid(), ...change }),
          400,
          'structure',
          'invalid-resource',
        );
        expect(outcome.issue?.[0]?.expression).toEqual([`Patient.${Object.keys(change)[0]}`]);
      }
    });

    it('returns 400 invalid-resource for empty objects, arrays and strings', async () => {
      const cases: [Record<string, unknown>, string][] = [
        [{ name: {} }, 'Patient.name'],
        [{ name: [{ family: 'Okafor', given: {} }] }, 'Patient.name[0].given'],
        [{ name: [{ family: 'Okafor', given: [{}] }] }, 'Patient.name[0].given[0]'],
        [{ identifier: [] }, 'Patient.identifier'],
        [{ gender: '' }, 'Patient.gender'],
        [{ meta: { tag: {} } }, 'Patient.meta.tag'],
      ];
      for (const [change, expression] of cases) {
        const outcome = await rejects(
          method,
          JSON.stringify({ ...valid(), ...change }),
          400,
          'structure',
          'invalid-resource',
        );
        expect(outcome.issue?.[0]?.expression).toEqual([expression]);
      }
    });

    it('returns 400 invalid-resource for JSON that is not an object', async () => {
      await rejects(method, '[{"resourceType":"Patient"}]', 400, 'structure', 'invalid-resource');
      await rejects(method, '"Patient"', 400, 'structure', 'invalid-resource');
      await rejects(method, 'null', 400, 'structure', 'invalid-resource');
    });
  });

  it('returns 400 resource-id-mismatch when a PUT body id differs from the URL id', async () => {
    const outcome = await rejects(
      'put',
      JSON.stringify({ ...patient(), id: 'another-patient' }),
      400,
      'invalid',
      'resource-id-mismatch',
    );
    expect(outcome.issue?.[0]?.expression).toEqual(['Patient.id']);
  });

  it('returns 400 resource-id-missing when a PUT body has no id', async () => {
    const outcome = await rejects('put', JSON.stringify(patient()), 400, 'required', 'resource-id-missing');
    expect(outcome.issue?.[0]?.expression).toEqual(['Patient.id']);
  });
});
