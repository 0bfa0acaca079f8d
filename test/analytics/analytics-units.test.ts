import type { Organization, Practitioner, PractitionerRole } from '@medplum/fhirtypes';
import { describe, expect, it } from 'vitest';
import { csvCell } from '../../src/analytics/csv.js';
import { periodWindows } from '../../src/analytics/loader.js';
import { isoWeekOf, parsePeriod } from '../../src/analytics/period.js';
import { directoryOf, normaliseName, NPI_SYSTEM, resolveReferrer } from '../../src/analytics/referrer.js';
import { median, percentile, round } from '../../src/analytics/stats.js';

describe('analytics statistics', () => {
  it('takes the median as the middle value or the mean of the two middle values', () => {
    expect(median([])).toBeUndefined();
    expect(median([5])).toBe(5);
    expect(median([9, 1, 5])).toBe(5);
    expect(median([4, 1, 3, 2])).toBe(2.5);
  });

  it('takes the 90th percentile by nearest rank', () => {
    expect(percentile([1, 2, 3, 4, 5, 6, 7, 8, 9, 10], 90)).toBe(9);
    expect(percentile([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11], 90)).toBe(10);
    expect(percentile([7], 90)).toBe(7);
  });

  it('rounds half away from zero and never answers -0', () => {
    expect(round(2.345, 2)).toBe(2.35);
    expect(round(-2.5, 0)).toBe(-3);
    expect(Object.is(round(-0.0001, 2), 0)).toBe(true);
  });
});

describe('referrer identity', () => {
  const npi = (value: string) => [{ system: NPI_SYSTEM, value }];
  const directory = directoryOf([
    {
      resourceType: 'Practitioner',
      id: 'a',
      identifier: npi('1234567893'),
      name: [{ given: ['Mary'], family: 'Jones' }],
    },
    {
      resourceType: 'Practitioner',
      id: 'b',
      identifier: npi('1234567893'),
      name: [{ text: 'Jones, Mary K. MD' }],
    },
    { resourceType: 'Practitioner', id: 'c', name: [{ prefix: ['Dr.'], given: ['Amy'], family: 'Chen' }] },
    { resourceType: 'Practitioner', id: 'd', name: [{ text: 'CHEN, Amy B., M.D.' }] },
    {
      resourceType: 'PractitionerRole',
      id: 'r',
      practitioner: { reference: 'Practitioner/a' },
      organization: { reference: 'Organization/o' },
    } satisfies PractitionerRole,
    {
      resourceType: 'Organization',
      id: 'o',
      identifier: npi('1543210011'),
      name: 'Lakeside Orthopedics',
    } satisfies Organization,
  ] satisfies (Practitioner | PractitionerRole | Organization)[]);

  it('keys a practitioner by NPI, directly, through a role or through a duplicate record', () => {
    const keys = ['Practitioner/a', 'Practitioner/b', 'PractitionerRole/r'].map(
      (reference) => resolveReferrer({ reference }, directory).key,
    );
    expect(new Set(keys)).toEqual(new Set([`${NPI_SYSTEM}|1234567893`]));
    expect(resolveReferrer({ reference: 'PractitionerRole/r' }, directory).organization?.display).toBe(
      'Lakeside Orthopedics',
    );
  });

  it('falls back to the normalised name: titles, degrees, initials, case and order do not matter', () => {
    expect(resolveReferrer({ reference: 'Practitioner/c' }, directory).key).toBe(
      resolveReferrer({ reference: 'Practitioner/d' }, directory).key,
    );
    expect(normaliseName('Dr. José  Núñez-García, PT, DPT')).toBe('jose nunezgarcia');
    expect(normaliseName("O'Brien, James")).toBe(normaliseName('Dr James OBrien'));
  });

  it('uses an NPI on the reference itself, else its display, when the target is unknown', () => {
    expect(
      resolveReferrer(
        { reference: 'Practitioner/zz', identifier: { system: NPI_SYSTEM, value: '1234567893' } },
        directory,
      ).key,
    ).toBe(`${NPI_SYSTEM}|1234567893`);
    expect(resolveReferrer({ display: 'Dr. Amy Chen' }, directory).key).toBe(
      resolveReferrer({ reference: 'Practitioner/c' }, directory).key,
    );
  });
});

describe('periods', () => {
  it('numbers ISO weeks across year ends', () => {
    expect(isoWeekOf(Date.parse('2025-12-29T00:00:00Z'))).toBe('2026-W01');
    expect(isoWeekOf(Date.parse('2021-01-03T12:00:00Z'))).toBe('2020-W53');
    expect(isoWeekOf(Date.parse('2025-03-05T00:00:00Z'))).toBe('2025-W10');
  });

  it('searches whole months as months and the partial ones day by day', () => {
    const windows = periodWindows(parsePeriod('2025-01-30', '2025-03-02')).map((w) => w.value);
    expect(windows).toEqual(['2025-01-30', '2025-01-31', '2025-02', '2025-03-01', '2025-03-02']);
  });

  it('refuses a period that ends before it starts', () => {
    expect(() => parsePeriod('2025-02-01', '2025-01-01')).toThrow(/before/);
  });
});

describe('CSV cells', () => {
  it('quotes separators and defuses spreadsheet formulas', () => {
    expect(csvCell('a,b')).toBe('"a,b"');
    expect(csvCell('say "hi"')).toBe('"say ""hi"""');
    expect(csvCell('=HYPERLINK("x")')).toBe(`"'=HYPERLINK(""x"")"`);
    expect(csvCell(-4)).toBe('-4');
  });
});
