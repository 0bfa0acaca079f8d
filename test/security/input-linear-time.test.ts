import type { Patient, Resource } from '@medplum/fhirtypes';
import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isR4Base64 } from '../../src/validation/primitives.js';
import { FHIR_JSON, sharedValidator, startTestApp, type TestApp } from '../support/test-app.js';

/**
 * No input can block the event loop (issue 11, item 3): every regular expression applied to request
 * data runs in linear time. A backtracking pattern takes seconds on a few hundred characters of a
 * near-miss (R4's base64Binary regex took 11.7 s on 141), so each check below gets 10k+ characters
 * of near-misses that make backtracking patterns blow up, and must finish in milliseconds. The bound
 * (50 ms per input) is generous for a loaded machine and still far below what a super-linear
 * pattern needs on inputs this long (quadratic: ~0.2 s at 10k, exponential: never).
 */
const N = 12_000;
const BOUND_MS = 50;

/** Near-misses: long runs of what a pattern accepts, broken at the end or by whitespace. */
const ATTACKS: Record<string, string> = {
  letters: `${'A'.repeat(N)}!`,
  quartetsWithSpaces: `${'AAAA '.repeat(N / 5)}!`,
  pairsWithSpaces: `${'AA '.repeat(N / 3)}!`,
  spacesThenBang: `A${' '.repeat(N)}!`,
  digits: `${'1'.repeat(N)}x`,
  dateParts: `${'2024-'.repeat(N / 5)}x`,
  times: `2024-01-01${'T00:00'.repeat(N / 6)}`,
  offsets: `2024-01-01T00:00:00${'+00:00'.repeat(N / 6)}`,
  oidArcs: `urn:oid:1${'.1'.repeat(N / 2)}.`,
  words: `${'a '.repeat(N / 2)} `,
  slashes: `${'/'.repeat(N)}a`,
  references: `${'Patient/'.repeat(N / 8)}!`,
  history: `${'/_history/'.repeat(N / 10)}x`,
  tabs: `${'\t'.repeat(N)}\u0000`,
};

/** Extension value[x] of every FHIR R4 primitive with a string value (https://hl7.org/fhir/R4/datatypes.html#primitive). */
const PRIMITIVES = [
  'Base64Binary',
  'Canonical',
  'Code',
  'Date',
  'DateTime',
  'Id',
  'Instant',
  'Markdown',
  'Oid',
  'String',
  'Time',
  'Uri',
  'Url',
  'Uuid',
];

function withValue(type: string, value: string): Resource {
  return {
    resourceType: 'Patient',
    extension: [{ url: 'http://example.org/fhir/StructureDefinition/probe', [`value${type}`]: value }],
  } as Patient;
}

/** The same values where the validators look again (base64Binary elements Medplum refused, references). */
function base64Elements(value: string): Resource[] {
  return [
    { resourceType: 'Binary', contentType: 'text/plain', data: value },
    {
      resourceType: 'DocumentReference',
      status: 'current',
      content: [{ attachment: { contentType: 'text/plain', data: value, hash: value } }],
    },
    // References go through the reference parsers of the base and profile validators.
    {
      resourceType: 'Patient',
      generalPractitioner: [{ reference: value }],
      managingOrganization: { reference: value },
    },
  ];
}

/**
 * The fastest of three runs: a garbage-collection pause or a busy neighbour on a shared CI machine
 * adds tens of milliseconds to one run, while backtracking makes every run slow.
 */
function elapsedMs(work: () => unknown): number {
  let best = Number.POSITIVE_INFINITY;
  for (let run = 0; run < 3; run++) {
    const start = performance.now();
    work();
    best = Math.min(best, performance.now() - start);
    if (best <= BOUND_MS) break;
  }
  return best;
}

describe('no input can block the event loop', () => {
  it('every primitive check finishes within milliseconds on adversarial 10k-character values', () => {
    const validator = sharedValidator();
    validator.validate(withValue('String', 'warm-up'));
    const slow: string[] = [];
    for (const type of PRIMITIVES) {
      for (const [name, value] of Object.entries(ATTACKS)) {
        const ms = elapsedMs(() => validator.validate(withValue(type, value)));
        if (ms > BOUND_MS) slow.push(`${type} × ${name}: ${ms.toFixed(0)} ms`);
      }
    }
    for (const [name, value] of Object.entries(ATTACKS)) {
      for (const resource of base64Elements(value)) {
        const ms = elapsedMs(() => validator.validate(resource));
        if (ms > BOUND_MS) slow.push(`${resource.resourceType} × ${name}: ${ms.toFixed(0)} ms`);
      }
    }
    expect(slow).toEqual([]);
  });

  it('the id check finishes within milliseconds on adversarial 10k-character ids', () => {
    const validator = sharedValidator();
    const slow: string[] = [];
    for (const [name, value] of Object.entries(ATTACKS)) {
      const ms = elapsedMs(() => validator.validate({ resourceType: 'Patient', id: value }));
      if (ms > BOUND_MS) slow.push(`${name}: ${ms.toFixed(0)} ms`);
    }
    expect(slow).toEqual([]);
  });

  it('base64Binary follows the R4 grammar (quartets, whitespace between them) without a regex', () => {
    // https://hl7.org/fhir/R4/datatypes.html#base64Binary: (\s*([0-9a-zA-Z\+\=]){4}\s*)+
    expect(isR4Base64('QUJD')).toBe(true);
    expect(isR4Base64(' QUJD \n RA== ')).toBe(true);
    expect(isR4Base64('QU JD')).toBe(false);
    expect(isR4Base64('QUJ')).toBe(false);
    expect(isR4Base64('QUJD!')).toBe(false);
    expect(isR4Base64('   ')).toBe(false);
    expect(isR4Base64('')).toBe(false);
    const ms = elapsedMs(() => isR4Base64(`${'AAAA '.repeat(200_000)}!`));
    expect(ms).toBeLessThan(BOUND_MS * 4);
  });

  describe('over HTTP', () => {
    let t: TestApp;
    beforeAll(async () => {
      t = await startTestApp();
    });
    afterAll(async () => {
      await t.close();
    });

    it('answers an adversarial base64Binary attachment with a 400 within milliseconds', async () => {
      const data = `${'AAAA '.repeat(40)}!`;
      const start = performance.now();
      const res = await request(t.app)
        .post('/fhir/Binary')
        .set('Content-Type', FHIR_JSON)
        .send({ resourceType: 'Binary', contentType: 'text/plain', data });
      expect(res.status, JSON.stringify(res.body)).toBe(400);
      expect(res.body.resourceType).toBe('OperationOutcome');
      expect(performance.now() - start).toBeLessThan(1000);
    });

    it('answers search parameters with adversarial 10k-character values within milliseconds', async () => {
      const slow: string[] = [];
      for (const [type, param] of [
        ['Patient', 'birthdate'],
        ['Patient', '_lastUpdated'],
        ['Patient', '_id'],
        ['Patient', 'name'],
        ['Patient', 'identifier'],
        ['Patient', 'general-practitioner'],
        ['Observation', 'value-quantity'],
        ['RiskAssessment', 'probability'],
        ['Patient', '_sort'],
        ['Patient', '_include'],
      ] as const) {
        for (const [name, value] of Object.entries(ATTACKS)) {
          const start = performance.now();
          const res = await request(t.app)
            .post(`/fhir/${type}/_search`)
            .type('form')
            .send(new URLSearchParams([[param, value]]).toString());
          const ms = performance.now() - start;
          expect(res.status, `${type}?${param} × ${name}: ${JSON.stringify(res.body)}`).toBeLessThan(500);
          if (ms > 250) slow.push(`${type}?${param} × ${name}: ${ms.toFixed(0)} ms`);
        }
      }
      expect(slow).toEqual([]);
    });

    it('answers a Bundle with adversarial 10k-character entry URLs within milliseconds', async () => {
      const entries = Object.values(ATTACKS).flatMap((value) => [
        {
          fullUrl: value,
          resource: { resourceType: 'Patient' },
          request: { method: 'POST', url: 'Patient' },
        },
        { resource: { resourceType: 'Patient' }, request: { method: 'PUT', url: value } },
      ]);
      for (const type of ['transaction', 'batch']) {
        const start = performance.now();
        const res = await request(t.app)
          .post('/fhir')
          .set('Content-Type', FHIR_JSON)
          .send({ resourceType: 'Bundle', type, entry: entries });
        expect(res.status, JSON.stringify(res.body).slice(0, 500)).toBeLessThan(500);
        expect(performance.now() - start).toBeLessThan(2000);
      }
    });
  });
});
