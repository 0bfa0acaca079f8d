import { createHmac } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { signBody, SIGNATURE_HEADER, verifySignature } from '../../src/delivery/signature.js';

/** `X-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>`. */

const SECRET = 's3cret';
const T = 1_793_700_000;
const BODY = '{"resourceType":"Bundle","type":"history"}';

describe('notification signatures', () => {
  it('the header is t=<seconds>,v1=<hex HMAC-SHA256 of "t.body">', () => {
    const header = signBody(SECRET, BODY, T);
    const mac = createHmac('sha256', SECRET).update(`${T}.${BODY}`).digest('hex');
    expect(header).toBe(`t=${T},v1=${mac}`);
    expect(SIGNATURE_HEADER).toBe('x-signature');
  });

  it('a genuine signature verifies, within the tolerance either side', () => {
    const header = signBody(SECRET, BODY, T);
    expect(verifySignature(SECRET, BODY, header, T)).toBe(true);
    expect(verifySignature(SECRET, BODY, header, T + 300)).toBe(true);
    expect(verifySignature(SECRET, BODY, header, T - 300)).toBe(true);
  });

  it('a forged body, a wrong secret or a tampered MAC does not verify', () => {
    const header = signBody(SECRET, BODY, T);
    expect(verifySignature(SECRET, BODY.replace('history', 'batch'), header, T)).toBe(false);
    expect(verifySignature(SECRET, `${BODY} `, header, T)).toBe(false);
    expect(verifySignature('another-secret', BODY, header, T)).toBe(false);
    const mac = header.split('v1=')[1] as string;
    const flipped = `${mac.slice(0, -1)}${mac.endsWith('0') ? '1' : '0'}`;
    expect(verifySignature(SECRET, BODY, `t=${T},v1=${flipped}`, T)).toBe(false);
  });

  it('the timestamp is covered by the MAC: moving it forward breaks the signature', () => {
    const mac = signBody(SECRET, BODY, T).split('v1=')[1] as string;
    expect(verifySignature(SECRET, BODY, `t=${T + 60},v1=${mac}`, T + 60)).toBe(false);
  });

  it('an expired (or future) signature does not verify, even with a genuine MAC', () => {
    const header = signBody(SECRET, BODY, T);
    expect(verifySignature(SECRET, BODY, header, T + 301)).toBe(false);
    expect(verifySignature(SECRET, BODY, header, T - 301)).toBe(false);
    expect(verifySignature(SECRET, BODY, header, T + 3_600, 300)).toBe(false);
    expect(verifySignature(SECRET, BODY, header, T + 3_600, 7_200)).toBe(true);
  });

  it.each([
    ['missing', undefined],
    ['empty', ''],
    ['garbage', 'not a signature'],
    ['without v1', `t=${T}`],
    ['without t', `v1=${'ab'.repeat(32)}`],
    ['a non-numeric t', `t=yesterday,v1=${'ab'.repeat(32)}`],
    ['a non-hex v1', `t=${T},v1=zz`],
    ['a truncated v1', `t=${T},v1=abcd`],
  ])('a header that is %s does not verify (and does not throw)', (_what, header) => {
    expect(verifySignature(SECRET, BODY, header, T)).toBe(false);
  });
});
