import { randomUUID } from 'node:crypto';
import type { Bundle, BundleEntry } from '@medplum/fhirtypes';
import { describe, expect, it } from 'vitest';
import { sharedValidator } from '../support/test-app.js';

/**
 * A large batch or transaction is validated slice by slice, yielding to the event loop between
 * slices (src/validation/resource-validator.ts validateYielding); the answer must be the one
 * validating it at once gives: the same issues, at the same paths of the whole Bundle.
 */
function largeBundle(type: 'transaction' | 'batch'): Bundle {
  const entry: BundleEntry[] = [];
  const urls: string[] = [];
  for (let i = 0; i < 450; i++) {
    const fullUrl = `urn:uuid:${randomUUID()}`;
    urls.push(fullUrl);
    entry.push({
      fullUrl,
      resource: { resourceType: 'Patient', name: [{ family: `Slice${i}` }] },
      request: { method: 'POST', url: 'Patient' },
    });
  }
  // Problems in several slices: a bad date, a code outside its value set, an invariant, a reference of the
  // wrong type to an entry of another slice, an unresolved urn, a duplicate fullUrl across slices.
  entry[5] = { ...entry[5], resource: { resourceType: 'Patient', birthDate: '2024-02-30' } };
  entry[150] = { ...entry[150], resource: { resourceType: 'Patient', gender: 'robot' } as never };
  entry[260] = {
    ...entry[260],
    resource: { resourceType: 'Patient', contact: [{ gender: 'male' }] } as never,
  };
  entry[330] = {
    fullUrl: `urn:uuid:${randomUUID()}`,
    resource: {
      resourceType: 'Observation',
      status: 'final',
      code: { text: 'x' },
      subject: { reference: urls[10] },
      performer: [{ reference: urls[20] }],
      hasMember: [{ reference: urls[30] }],
    } as never,
    request: { method: 'POST', url: 'Observation' },
  };
  entry[401] = { ...entry[401], fullUrl: urls[3] };
  entry[420] = {
    ...entry[420],
    resource: { resourceType: 'Patient', generalPractitioner: [{ reference: `urn:uuid:${randomUUID()}` }] },
  };
  return { resourceType: 'Bundle', type, entry };
}

describe('validating a large Bundle in slices', () => {
  for (const type of ['transaction', 'batch'] as const) {
    it(`reports the same issues at the same paths as validating the ${type} at once`, async () => {
      const validator = sharedValidator();
      const bundle = largeBundle(type);
      const atOnce = validator.validate(bundle);
      const sliced = await validator.validateYielding(bundle);
      expect(atOnce.failure).toBe(400);
      expect(sliced.failure).toBe(atOnce.failure);
      const sorted = (issues: typeof atOnce.issues): string[] =>
        issues.map((i) => `${i.expression?.[0]} ${i.details?.text}`).sort();
      expect(sorted(sliced.issues)).toEqual(sorted(atOnce.issues));
      expect(sorted(atOnce.issues).some((i) => i.startsWith('Bundle.entry[330]'))).toBe(true);
      expect(sorted(atOnce.issues).some((i) => i.startsWith('Bundle.entry[260]'))).toBe(true);
      expect(sorted(atOnce.issues).some((i) => i.startsWith('Bundle.entry[150]'))).toBe(true);
    });

    it(`reports empty values alone, as validating the ${type} at once does`, async () => {
      const validator = sharedValidator();
      const bundle = largeBundle(type);
      bundle.entry?.splice(300, 1, {
        resource: { resourceType: 'Patient', name: [{ family: '' }] },
        request: { method: 'POST', url: 'Patient' },
      });
      const atOnce = validator.validate(bundle);
      const sliced = await validator.validateYielding(bundle);
      expect(sliced).toEqual(atOnce);
      expect(atOnce.issues[0]?.expression).toEqual(['Bundle.entry[300].resource.name[0].family']);
    });

    it(`finds a valid large ${type} valid`, async () => {
      const bundle = largeBundle(type);
      bundle.entry = bundle.entry?.filter((_, i) => ![5, 150, 260, 330, 401, 420].includes(i));
      const result = await sharedValidator().validateYielding(bundle);
      expect(result.issues.filter((i) => i.severity === 'error')).toEqual([]);
      expect(result.failure).toBeUndefined();
    });
  }
});
