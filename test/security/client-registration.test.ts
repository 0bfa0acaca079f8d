import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import type { JWK } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { signClientAssertion, tokenRequestBody } from '../../src/auth/client-keys.js';
import { parseClients, type ClientRegistration } from '../../src/auth/clients.js';
import { startSecureApp, type SecureApp } from '../support/secure-app.js';

/**
 * `npm run client:new` (scripts/new-client.ts), run for real: the entry it prints is accepted by
 * parseClients (the CLIENTS_FILE checks), it holds no private key, and the private key it writes
 * gets a token from a service that registered the entry.
 */
const run = promisify(execFile);
const ROOT = new URL('../../', import.meta.url).pathname;

let dir: string;
let t: SecureApp;
let stdout: string;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'client-new-'));
  const result = await run(
    'npm',
    [
      'run',
      '--silent',
      'client:new',
      '--',
      '--id',
      'acme-ehr',
      '--role',
      'referrer',
      '--acts-for',
      'Organization/acme-clinic,Practitioner/dr-jones',
      '--out',
      dir,
    ],
    { cwd: ROOT, timeout: 30_000, env: { ...process.env, NODE_OPTIONS: '' } },
  );
  stdout = result.stdout;
  t = await startSecureApp();
}, 60_000);
afterAll(async () => {
  await t?.close();
  rmSync(dir, { recursive: true, force: true });
});

function printedEntry(): ClientRegistration {
  const marker = 'Add this entry to the CLIENTS_FILE array:';
  expect(stdout).toContain(marker);
  return JSON.parse(stdout.slice(stdout.indexOf(marker) + marker.length)) as ClientRegistration;
}

describe('npm run client:new', () => {
  it('prints an entry that parseClients accepts, with the role, acts_for and the default referrer scopes', () => {
    const entry = printedEntry();
    const clients = parseClients([entry]);
    const parsed = clients.get('acme-ehr');
    expect(parsed).toMatchObject({
      client_id: 'acme-ehr',
      role: 'referrer',
      acts_for: ['Organization/acme-clinic', 'Practitioner/dr-jones'],
    });
    expect(parsed?.scope).toContain('system/ServiceRequest.cru');
    expect(entry.jwks?.keys).toHaveLength(1);
    expect(entry.jwks?.keys[0]).toMatchObject({ kty: 'EC', crv: 'P-384', alg: 'ES384', use: 'sig' });
    expect('d' in (entry.jwks?.keys[0] ?? {})).toBe(false);
  });

  it('writes the private key (mode 0600) that matches the registered public key', () => {
    const file = join(dir, 'acme-ehr.private.jwk.json');
    expect(statSync(file).mode & 0o777).toBe(0o600);
    const privateJwk = JSON.parse(readFileSync(file, 'utf8')) as JWK;
    const publicJwk = printedEntry().jwks?.keys[0] as JWK;
    expect(privateJwk.d).toBeTruthy();
    expect([privateJwk.x, privateJwk.y, privateJwk.kid]).toEqual([publicJwk.x, publicJwk.y, publicJwk.kid]);
  });

  it('the written key gets a token from a service that registered the entry, and the token works', async () => {
    const entry = parseClients([printedEntry()]).get('acme-ehr') as ClientRegistration;
    t.clients.set(entry.client_id, entry);
    const privateJwk = JSON.parse(readFileSync(join(dir, 'acme-ehr.private.jwk.json'), 'utf8')) as JWK;
    const assertion = await signClientAssertion('acme-ehr', privateJwk, t.tokenUrl);
    const res = await t.tokenRequest(tokenRequestBody(assertion));
    expect(res.status, JSON.stringify(res.body)).toBe(200);
    expect(res.body.scope).toBe(entry.scope);
    // The default referrer scopes: Communications are searchable (ServiceRequests only c, r, u).
    const search = await t.fhir('GET', '/fhir/Communication', { token: res.body.access_token });
    expect(search.status).toBe(200);
    expect(search.body.total).toBe(0);
  });

  it('refuses to print an entry the service would refuse (a referrer acting for no one)', async () => {
    const failed = await run('npm', ['run', '--silent', 'client:new', '--', '--id', 'nobody', '--out', dir], {
      cwd: ROOT,
      timeout: 30_000,
    }).catch((err: { code?: number; stdout?: string; stderr?: string }) => err);
    expect((failed as { code?: number }).code).not.toBe(0);
    expect((failed as { stdout?: string }).stdout ?? '').not.toContain('Add this entry');
  }, 40_000);
});
