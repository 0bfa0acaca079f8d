import type { Bundle, OperationOutcome, Resource } from '@medplum/fhirtypes';
import request from 'supertest';
import { ACCESS_LABEL_SYSTEM } from '../../src/auth/scoped-store.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MIN_MILLIS } from '../../src/fhir/search/date-range.js';
import { extractIndexRows } from '../../src/fhir/search/index-rows.js';
import { listExamples, readExample, skipWithoutExamples } from '../support/examples.js';
import { FHIR_JSON, startTestApp, type TestApp } from '../support/test-app.js';

/**
 * Acceptance: every resource in the public examples' r4-core/ (FHIR_EXAMPLES_DIR, see
 * test/support/examples.ts) can be created, read back (content equal but for id/meta), updated,
 * found by at least one of its search parameters, and deleted.
 *
 * `bundle-questionnaire.json` is the one known-invalid example: its nested items lack
 * `Questionnaire.item.linkId` (cardinality 1..1 in R4), which the HL7 reference validator also
 * reports, so the server must reject it with 400 and say where.
 */
const SUITE = 'official R4 examples (r4-core)';
const FOLDER = 'r4-core';
const skip = skipWithoutExamples(SUITE);
const INVALID_EXAMPLES = new Set(['bundle-questionnaire.json']);
const files = listExamples(FOLDER);
/**
 * AuditEvents are the server's own append-only record (issue 11: no client creates, updates or
 * deletes one, whatever its role), so the AuditEvent examples are checked for validity with
 * $validate and for refusal of a client create instead of the create/update/delete round trip.
 */
const APPEND_ONLY_TYPES = new Set(['AuditEvent']);
const isAppendOnly = (file: string): boolean =>
  APPEND_ONLY_TYPES.has(readExample(`${FOLDER}/${file}`).resourceType);
const validFiles = files.filter((f) => !INVALID_EXAMPLES.has(f) && !isAppendOnly(f));
const appendOnlyFiles = files.filter((f) => !INVALID_EXAMPLES.has(f) && isAppendOnly(f));

/**
 * The resource without its id and server-managed meta: versionId, lastUpdated, and the access
 * labels the server adds to meta.security (src/auth/scoped-store.ts); every other meta field kept.
 */
function content(resource: Resource): Record<string, unknown> {
  const { id: _id, meta, ...rest } = resource;
  const { versionId: _v, lastUpdated: _l, security, ...keptMeta } = meta ?? {};
  const clientSecurity = security?.filter((c) => c.system !== ACCESS_LABEL_SYSTEM);
  if (clientSecurity?.length) (keptMeta as Record<string, unknown>).security = clientSecurity;
  return Object.keys(keptMeta).length > 0 ? { ...rest, meta: keptMeta } : rest;
}

/** Escapes a search value (https://hl7.org/fhir/R4/search.html#escaping). */
function escapeValue(value: string): string {
  return value.replace(/[\\,|$]/g, (c) => `\\${c}`);
}

/**
 * Search parameters whose value the stored resource really has, derived from the server's own
 * index rows: the first row of each parameter type present. Resources without any indexed
 * parameter (Binary, Parameters, OperationOutcome define none in R4) are searched by
 * `_lastUpdated`, a parameter every resource has.
 */
function searchesFor(stored: Resource): [string, string][] {
  const rows = extractIndexRows(stored);
  const searches: [string, string][] = [];
  const token = rows.tokens.find((r) => r.value !== null);
  if (token) {
    const value = escapeValue(token.value as string);
    searches.push([token.code, token.system === null ? value : `${escapeValue(token.system)}|${value}`]);
  }
  const str = rows.strings[0];
  if (str) {
    searches.push([`${str.code}:exact`, escapeValue(str.value)]);
  }
  const reference = rows.references[0];
  if (reference) {
    searches.push([reference.code, escapeValue(reference.reference)]);
  }
  const uri = rows.uris[0];
  if (uri) {
    searches.push([uri.code, escapeValue(uri.value)]);
  }
  const date = rows.dates.find((r) => r.low > MIN_MILLIS);
  if (date) {
    searches.push([date.code, `ge${new Date(date.low).toISOString()}`]);
  }
  const quantity = rows.quantities[0];
  if (quantity) {
    searches.push([
      quantity.code,
      `${quantity.low}|${escapeValue(quantity.system ?? '')}|${escapeValue(quantity.unit ?? '')}`,
    ]);
  }
  if (searches.length === 0) {
    searches.push(['_lastUpdated', stored.meta?.lastUpdated as string]);
  }
  return searches;
}

describe.skipIf(skip)(SUITE, () => {
  let t: TestApp;
  beforeAll(async () => {
    t = await startTestApp();
  });
  afterAll(() => t.close());

  const search = async (type: string, param: [string, string]): Promise<Bundle> => {
    const res = await request(t.app).get(`/fhir/${type}?${new URLSearchParams([param, ['_count', '1000']])}`);
    expect(res.status, JSON.stringify(res.body)).toBe(200);
    return res.body as Bundle;
  };
  const ids = (bundle: Bundle): (string | undefined)[] =>
    (bundle.entry ?? []).filter((e) => e.search?.mode !== 'outcome').map((e) => e.resource?.id);

  it('covers the whole folder', () => {
    expect(files.length).toBeGreaterThanOrEqual(30);
    for (const invalid of INVALID_EXAMPLES) {
      expect(files).toContain(invalid);
    }
  });

  it.each(validFiles)('%s: create, read back, update, search, delete', async (file) => {
    const example = readExample(`${FOLDER}/${file}`);
    const type = example.resourceType;

    const created = await request(t.app)
      .post(`/fhir/${type}`)
      .set('content-type', FHIR_JSON)
      .send(JSON.stringify(example));
    expect(created.status, JSON.stringify(created.body)).toBe(201);
    const id = created.body.id as string;
    expect(id).toMatch(/^[A-Za-z0-9\-.]{1,64}$/);
    expect(created.headers.location).toMatch(new RegExp(`/fhir/${type}/${id}/_history/1$`));
    expect(created.headers.etag).toBe('W/"1"');

    const read = await request(t.app).get(`/fhir/${type}/${id}`);
    expect(read.status).toBe(200);
    expect(read.body.id).toBe(id);
    expect(read.body.meta.versionId).toBe('1');
    expect(content(read.body)).toEqual(content(example));

    const changed = { ...read.body, language: read.body.language === 'en' ? 'nl' : 'en' } as Resource;
    const updated = await request(t.app)
      .put(`/fhir/${type}/${id}`)
      .set('content-type', FHIR_JSON)
      .set('if-match', 'W/"1"')
      .send(JSON.stringify(changed));
    expect(updated.status, JSON.stringify(updated.body)).toBe(200);
    expect(updated.headers.etag).toBe('W/"2"');
    const reread = await request(t.app).get(`/fhir/${type}/${id}`);
    expect(reread.body.meta.versionId).toBe('2');
    expect(content(reread.body)).toEqual(content(changed));
    const first = await request(t.app).get(`/fhir/${type}/${id}/_history/1`);
    expect(content(first.body)).toEqual(content(example));

    const searches = searchesFor(reread.body as Resource);
    for (const param of searches) {
      expect(ids(await search(type, param)), `${type}?${param.join('=')}`).toContain(id);
    }

    const deleted = await request(t.app).delete(`/fhir/${type}/${id}`);
    expect(deleted.status).toBe(204);
    expect((await request(t.app).get(`/fhir/${type}/${id}`)).status).toBe(410);
    for (const param of searches) {
      expect(ids(await search(type, param)), `${type}?${param.join('=')} after delete`).not.toContain(id);
    }
  });

  it.each(appendOnlyFiles)('%s: valid, and a client cannot create it (append-only)', async (file) => {
    const example = readExample(`${FOLDER}/${file}`);
    const type = example.resourceType;
    const validated = await request(t.app)
      .post(`/fhir/${type}/$validate`)
      .set('content-type', FHIR_JSON)
      .send(JSON.stringify(example));
    expect(validated.status, JSON.stringify(validated.body)).toBe(200);
    const errors = ((validated.body as OperationOutcome).issue ?? []).filter(
      (i) => i.severity === 'error' || i.severity === 'fatal',
    );
    expect(errors).toEqual([]);
    const created = await request(t.app)
      .post(`/fhir/${type}`)
      .set('content-type', FHIR_JSON)
      .send(JSON.stringify(example));
    expect(created.status).toBe(403);
    expect(JSON.stringify(created.body)).toContain(type);
  });

  it('bundle-questionnaire.json is rejected with 400 naming the missing Questionnaire.item.linkId', async () => {
    const example = readExample('r4-core/bundle-questionnaire.json');
    expect(example.resourceType).toBe('Questionnaire');
    const res = await request(t.app)
      .post('/fhir/Questionnaire')
      .set('content-type', FHIR_JSON)
      .send(JSON.stringify(example));
    expect(res.status).toBe(400);
    const outcome = res.body as OperationOutcome;
    expect(outcome.resourceType).toBe('OperationOutcome');
    const expressions = (outcome.issue ?? []).flatMap((i) => i.expression ?? []);
    expect(expressions.length).toBeGreaterThan(0);
    expect(expressions).toContain('Questionnaire.item[0].item[0].linkId');
    expect(expressions.every((e) => /^Questionnaire\.item\[\d+\](\.item\[\d+\])*\.linkId$/.test(e))).toBe(
      true,
    );
    expect(outcome.issue?.[0]?.details?.coding?.[0]?.code).toBe('invalid-resource');
    // Nothing was stored: no Questionnaire carries this example's date.
    const search = await request(t.app).get(
      `/fhir/Questionnaire?${new URLSearchParams({ date: 'eq2019-02-21T15:59:19+11:00' })}`,
    );
    expect(search.status).toBe(200);
    expect(search.body.total).toBe(0);
  });
});
