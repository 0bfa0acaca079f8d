import type { Bundle, Practitioner } from '@medplum/fhirtypes';
import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { csvCell } from '../../src/analytics/csv.js';
import { readFixture } from '../referral/referral-fixtures.js';
import { FHIR_JSON, startTestApp, type TestApp } from '../support/test-app.js';

/**
 * Issue 11, item 19: CSV exports neutralise formula starts (= + - @, tab, CR) also behind leading
 * whitespace, line breaks and no-break spaces, and in their full-width forms (＝ ＋ － ＠), which
 * spreadsheets read as formulas too (OWASP, CSV Injection:
 * https://owasp.org/www-community/attacks/CSV_Injection): such a cell starts with an apostrophe.
 */
const FORMULA = 'HYPERLINK("https://evil.example","open")';

/** The cell's text as a spreadsheet reads it: unquoted, quotes undoubled. */
const unquote = (cell: string): string =>
  cell.startsWith('"') ? cell.slice(1, -1).replace(/""/g, '"') : cell;

describe('CSV cells that a spreadsheet would run as formulas', () => {
  it.each([
    ['a leading space', ` =${FORMULA}`],
    ['leading spaces and tabs', ` \t =${FORMULA}`],
    ['a leading line break', `\n=${FORMULA}`],
    ['a leading CRLF', `\r\n+${FORMULA}`],
    ['a leading no-break space', `\u00a0=${FORMULA}`],
    ['a leading ideographic space', `\u3000@${FORMULA}`],
    ['a leading byte-order mark', `\ufeff-${FORMULA}`],
    ['a full-width equals sign', `＝${FORMULA}`],
    ['a full-width plus sign', `＋${FORMULA}`],
    ['a full-width hyphen-minus', `－${FORMULA}`],
    ['a full-width commercial at', `＠${FORMULA}`],
    ['a no-break space before a full-width equals sign', `\u00a0＝${FORMULA}`],
    ['a small equals sign', `\ufe66${FORMULA}`],
  ])('are prefixed with an apostrophe behind %s', (_what, value) => {
    expect(unquote(csvCell(value))).toBe(`'${value}`);
  });

  it.each([['=1+1'], ['+1'], ['-1'], ['@SUM(A1)'], ['\tx'], ['\rx']])(
    'are still prefixed when they start with the formula character itself: %j',
    (value) => {
      expect(unquote(csvCell(value))).toBe(`'${value}`);
    },
  );

  it('leave ordinary text, numbers and inner formula characters alone', () => {
    expect(csvCell('Rachel Kim, PA-C')).toBe('"Rachel Kim, PA-C"');
    expect(csvCell('a=b')).toBe('a=b');
    expect(csvCell(' plain')).toBe(' plain');
    expect(csvCell(-4)).toBe('-4');
  });
});

describe('the referral CSV export', () => {
  let t: TestApp;
  beforeAll(async () => {
    t = await startTestApp();
  });
  afterAll(async () => {
    await t?.close();
  });

  it('neutralises a referrer name that starts with a no-break space and a full-width equals sign', async () => {
    const bundle = readFixture<Bundle>('Bundle-referral-ankle-sprain.json');
    const name = `\u00a0＝${FORMULA}`;
    for (const entry of bundle.entry ?? []) {
      if (entry.resource?.resourceType === 'Practitioner') {
        (entry.resource as Practitioner).name = [{ use: 'official', text: name }];
      }
    }
    const posted = await request(t.app)
      .post('/fhir')
      .set('content-type', FHIR_JSON)
      .send(JSON.stringify(bundle));
    expect(posted.status, JSON.stringify(posted.body).slice(0, 500)).toBe(200);
    const res = await request(t.app)
      .get('/analytics/export.csv')
      .query({ periodStart: '2026-01-01', periodEnd: '2026-12-31' });
    expect(res.status).toBe(200);
    const [header, row] = res.text.split('\r\n');
    const column = (header as string).split(',').indexOf('referring_source');
    expect(column).toBeGreaterThan(-1);
    // In the file the cell is quoted (it holds commas), its quotes doubled (RFC 4180).
    expect(row).toContain(`"'${name.replace(/"/g, '""')}"`);
    expect(row).not.toMatch(/(^|,)"?[\s\u00a0]*[=+\-@＝＋－＠]/);
  });
});
