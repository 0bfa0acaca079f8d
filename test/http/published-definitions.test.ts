import type {
  Bundle,
  CapabilityStatement,
  Measure,
  OperationDefinition,
  OperationOutcome,
  Questionnaire,
} from '@medplum/fhirtypes';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { OPERATIONS } from '../../src/operations/registry.js';
import { publishDefinitions } from '../support/published.js';
import { FHIR_JSON, startTestApp, type TestApp } from '../support/test-app.js';
import { expectOutcome, patient } from './http-helpers.js';

/**
 * Issue 10: the published definitions are ordinary FHIR resources — the Measures and the feedback
 * Questionnaire are found by search and read like any other, the CapabilityStatement lists every
 * operation of the registry where it is invoked, and every operation's definition resolves to a
 * stored, valid OperationDefinition.
 */
const PROFILES = new URL('../../profiles/', import.meta.url).pathname;
const published = <T>(prefix: string): T[] =>
  readdirSync(PROFILES)
    .filter((f) => f.startsWith(prefix) && f.endsWith('.json'))
    .map((f) => JSON.parse(readFileSync(join(PROFILES, f), 'utf8')) as T);
const MEASURES = published<Measure>('Measure-');

let t: TestApp;
beforeAll(async () => {
  t = await startTestApp();
  await publishDefinitions(t.store);
});
afterAll(() => t.close());

const get = (path: string) => request(t.app).get(path).set('accept', FHIR_JSON);

describe('the published Measures and Questionnaire', () => {
  it('GET /fhir/Measure returns every published Measure', async () => {
    const res = await get('/fhir/Measure?_count=100');
    expect(res.status).toBe(200);
    const bundle = res.body as Bundle<Measure>;
    expect(bundle.total).toBe(MEASURES.length);
    expect(bundle.entry?.map((e) => e.resource?.url).sort()).toEqual(MEASURES.map((m) => m.url).sort());
  });

  it('GET /fhir/Measure/[id] reads each one, with a version, as it was published', async () => {
    for (const measure of MEASURES) {
      const res = await get(`/fhir/Measure/${measure.id}`);
      expect(res.status).toBe(200);
      expect(res.headers.etag).toMatch(/^W\/"\d+"$/);
      const { meta: _meta, ...content } = res.body as Measure;
      expect(content).toEqual(measure);
    }
  });

  it('Measures are found by their canonical url, and the feedback Questionnaire is read and searched', async () => {
    const measure = MEASURES[0] as Measure;
    const byUrl = await get(`/fhir/Measure?url=${encodeURIComponent(measure.url as string)}`);
    expect((byUrl.body as Bundle).entry?.map((e) => e.resource?.id)).toEqual([measure.id]);
    const questionnaire = await get('/fhir/Questionnaire/pt-referrer-feedback');
    expect(questionnaire.status).toBe(200);
    expect((questionnaire.body as Questionnaire).item?.map((i) => i.linkId)).toEqual([
      'communication',
      'outcomes',
      'comments',
    ]);
    const search = await get('/fhir/Questionnaire?status=active');
    expect((search.body as Bundle).entry?.map((e) => e.resource?.id)).toContain('pt-referrer-feedback');
  });

  it('publishing again writes nothing; a changed stored definition is put back', async () => {
    const before = await get('/fhir/Measure/_history?_count=0');
    const again = await publishDefinitions(t.store);
    expect(again).toEqual({ created: [], updated: [], unchanged: again.unchanged });
    expect((await get('/fhir/Measure/_history?_count=0')).body.total).toBe(before.body.total);

    const measure = MEASURES[0] as Measure;
    const changed = await request(t.app)
      .put(`/fhir/Measure/${measure.id}`)
      .set('content-type', FHIR_JSON)
      .send(JSON.stringify({ ...measure, title: 'Edited by hand' }));
    expect(changed.status).toBe(200);
    const restored = await publishDefinitions(t.store);
    expect(restored.updated).toEqual([`Measure/${measure.id}`]);
    const read = await get(`/fhir/Measure/${measure.id}`);
    expect(read.body.title).toBe(measure.title);
    expect(read.body.meta.versionId).toBe(String(Number(changed.body.meta.versionId) + 1));
  });
});

describe('the CapabilityStatement and the OperationDefinitions', () => {
  let cs: CapabilityStatement;
  beforeAll(async () => {
    cs = (await get('/fhir/metadata')).body as CapabilityStatement;
  });

  it('lists every registered operation where it is invoked, with its definition canonical', () => {
    const rest = cs.rest?.[0];
    for (const op of OPERATIONS.entries) {
      const expected = { name: op.name, definition: op.definition.url };
      if (op.levels.includes('system')) expect(rest?.operation).toContainEqual(expected);
      if (op.levels.includes('type') || op.levels.includes('instance')) {
        const types = op.resourceTypes === '*' ? ['Patient', 'ServiceRequest', 'Measure'] : op.resourceTypes;
        for (const type of types) {
          expect(
            rest?.resource?.find((r) => r.type === type)?.operation,
            `${op.name} on ${type}`,
          ).toContainEqual(expected);
        }
      }
    }
    // Nothing is listed that the registry does not have.
    const listed = [
      ...(rest?.operation ?? []),
      ...(rest?.resource ?? []).flatMap((r) => r.operation ?? []),
    ].map((o) => o.definition);
    expect(new Set(listed)).toEqual(new Set(OPERATIONS.entries.map((o) => o.definition.url)));
  });

  it('every listed definition resolves to one stored OperationDefinition that says the same', async () => {
    for (const op of OPERATIONS.entries) {
      const res = await get(
        `/fhir/OperationDefinition?url=${encodeURIComponent(op.definition.url as string)}`,
      );
      expect(res.status).toBe(200);
      const found = ((res.body as Bundle).entry ?? []).map((e) => e.resource as OperationDefinition);
      expect(found, op.name).toHaveLength(1);
      const definition = found[0] as OperationDefinition;
      expect(definition.code).toBe(op.name);
      expect(definition.kind).toBe('operation');
      expect([definition.system, definition.type, definition.instance]).toEqual([
        op.levels.includes('system'),
        op.levels.includes('type'),
        op.levels.includes('instance'),
      ]);
      expect(definition.affectsState).toBe(op.methods.includes('GET') ? false : definition.affectsState);
      // And it is read by its id like any resource.
      expect((await get(`/fhir/OperationDefinition/${definition.id}`)).status).toBe(200);
    }
  });

  it('every OperationDefinition is valid R4', async () => {
    for (const op of OPERATIONS.entries) {
      const res = await request(t.app)
        .post('/fhir/OperationDefinition/$validate')
        .set('content-type', FHIR_JSON)
        .send(JSON.stringify(op.definition));
      expect(res.status).toBe(200);
      const errors = ((res.body as OperationOutcome).issue ?? []).filter(
        (i) => i.severity === 'error' || i.severity === 'fatal',
      );
      expect(errors, op.name).toEqual([]);
    }
  });
});

describe('operations dispatched through the registry', () => {
  it('an operation the server does not have answers 404 unknown-route, at every level', async () => {
    const attempts = [
      request(t.app).post('/fhir/$everything').set('content-type', FHIR_JSON).send('{}'),
      request(t.app).post('/fhir/Patient/$nothing').set('content-type', FHIR_JSON).send('{}'),
      get('/fhir/Patient/x/$status'),
      get('/fhir/Patient/$evaluate-measure'),
      request(t.app).post('/fhir/Patient/x/$progress-report'),
    ];
    for (const attempt of attempts) expectOutcome(await attempt, 404, 'not-found', 'unknown-route');
  });

  it('an operation invoked with a method it does not take answers 405', async () => {
    expectOutcome(await get('/fhir/Patient/$validate'), 405, 'not-supported', 'method-not-allowed');
    expectOutcome(
      await request(t.app).post('/fhir/Subscription/x/$status'),
      405,
      'not-supported',
      'method-not-allowed',
    );
  });

  it('$validate still answers through the registry', async () => {
    const res = await request(t.app)
      .post('/fhir/Patient/$validate')
      .set('content-type', FHIR_JSON)
      .send(JSON.stringify(patient()));
    expect(res.status).toBe(200);
    expect(res.body.resourceType).toBe('OperationOutcome');
  });
});
