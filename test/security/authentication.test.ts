import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { CapabilityStatement } from '@medplum/fhirtypes';
import {
  exportJWK,
  exportSPKI,
  generateKeyPair,
  importJWK,
  decodeProtectedHeader,
  SignJWT,
  type CryptoKey,
  type JWK,
} from 'jose';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { SCOPES_SUPPORTED } from '../../src/app.js';
import { KeyRing } from '../../src/auth/key-ring.js';
import { CLIENT_ASSERTION_TYPE, TokenService } from '../../src/auth/token-service.js';
import { ConfigError, loadConfig } from '../../src/config/config.js';
import { expectOutcome, patient } from '../http/http-helpers.js';
import { PUBLIC_ORIGIN, startSecureApp, type SecureApp } from '../support/secure-app.js';

/**
 * Acceptance (issue 5, item 1): without a valid token every FHIR endpoint but `metadata` (and the
 * SMART discovery document) answers 401 with an OperationOutcome; the token endpoint refuses every
 * bad client assertion with the RFC 6749 §5.2 error; bad access tokens are refused. Plus discovery,
 * key rotation, rate limits, security headers and the AUTH=off guard.
 */
const b64 = (value: unknown): string => Buffer.from(JSON.stringify(value)).toString('base64url');

/** A JWT signed with whatever key and header the test wants: claims default to a valid assertion. */
async function signed(
  key: CryptoKey | Uint8Array,
  header: { alg: string; kid?: string; typ?: string },
  claims: Record<string, unknown>,
): Promise<string> {
  return new SignJWT(claims).setProtectedHeader(header).sign(key);
}

function assertionClaims(t: SecureApp, clientId: string, overrides: Record<string, unknown> = {}) {
  const now = Math.floor(Date.now() / 1000);
  return {
    iss: clientId,
    sub: clientId,
    aud: t.tokenUrl,
    iat: now,
    exp: now + 240,
    jti: randomUUID(),
    ...overrides,
  };
}

async function privateKeyOf(t: SecureApp, clientId: string): Promise<{ key: CryptoKey; jwk: JWK }> {
  const jwk = t.clientKeys.get(clientId)?.privateJwk as JWK;
  return { key: (await importJWK(jwk, 'ES384')) as CryptoKey, jwk };
}

const form = (assertion: string, extra: Record<string, string> = {}) => ({
  grant_type: 'client_credentials',
  client_assertion_type: CLIENT_ASSERTION_TYPE,
  client_assertion: assertion,
  ...extra,
});

describe('every FHIR endpoint but metadata needs a token', () => {
  let t: SecureApp;
  let existingPatient: string;
  beforeAll(async () => {
    t = await startSecureApp();
    const admin = await t.token('admin');
    existingPatient = (await t.fhir('POST', '/fhir/Patient', { token: admin, body: patient() })).body.id;
  });
  afterAll(() => t.close());

  const bundle = { resourceType: 'Bundle', type: 'transaction', entry: [] };
  const endpoints: [string, string, unknown?][] = [
    ['GET', '/fhir'],
    ['POST', '/fhir', bundle],
    ['GET', '/fhir/_history'],
    ['GET', '/fhir/Patient'],
    ['GET', '/fhir/Patient?name=Okafor'],
    ['POST', '/fhir/Patient/_search', 'name=Okafor'],
    ['GET', '/fhir/Patient/_history'],
    ['POST', '/fhir/Patient', { resourceType: 'Patient' }],
    ['PUT', '/fhir/Patient?identifier=x|y', { resourceType: 'Patient' }],
    ['DELETE', '/fhir/Patient?identifier=x|y'],
    ['GET', '/fhir/Patient/EXISTING'],
    ['GET', '/fhir/Patient/no-such-patient'],
    ['PUT', '/fhir/Patient/EXISTING', { resourceType: 'Patient', id: 'EXISTING' }],
    ['DELETE', '/fhir/Patient/EXISTING'],
    ['GET', '/fhir/Patient/EXISTING/_history'],
    ['GET', '/fhir/Patient/EXISTING/_history/1'],
    ['POST', '/fhir/Patient/$validate', { resourceType: 'Patient' }],
    ['POST', '/fhir/Patient/EXISTING/$validate', { resourceType: 'Patient' }],
    ['POST', '/fhir/$process-message', { resourceType: 'Bundle', type: 'message' }],
    ['POST', '/fhir/EpisodeOfCare/e1/$progress-report'],
    ['GET', '/fhir/Subscription/s1/$status'],
    ['GET', '/fhir/Subscription/s1/$events'],
    ['GET', '/fhir/AuditEvent'],
    ['PATCH', '/fhir/Patient/EXISTING', []],
    ['POST', '/fhir/metadata', {}],
    ['GET', '/fhir/metadata/_history'],
    ['GET', '/fhir/metadata/x'],
    ['GET', '/fhir/%6Detadata'],
    ['GET', '/fhir/METADATA'],
    ['GET', '/fhir/Patient/%E0%A4%A'],
    ['GET', '/fhir/no/such/route/at/all'],
    // The body is never looked at before the token: not even a malformed one.
    ['POST', '/fhir/Patient', '{"resourceType": "Patient", '],
  ];

  it.each(endpoints)(
    '%s %s without a token: 401 with an OperationOutcome and a challenge',
    async (m, p, b) => {
      const path = p.replace('EXISTING', existingPatient);
      const res = await t.fhir(m, path, { body: b });
      expectOutcome(res, 401, 'login', 'unauthorized');
      expect(res.headers['www-authenticate']).toMatch(/^Bearer realm="fhir"/);
    },
  );

  it.each(endpoints)('%s %s with a garbage token: 401 invalid_token', async (m, p, b) => {
    const path = p.replace('EXISTING', existingPatient);
    const res = await t.fhir(m, path, { body: b, token: 'eyJhbGciOiJFUzI1NiJ9.e30.c2lnbmF0dXJl' });
    expectOutcome(res, 401, 'login', 'unauthorized');
    expect(res.headers['www-authenticate']).toContain('error="invalid_token"');
  });

  it('a header that is not a Bearer token is no token: Basic, token alone, empty Bearer', async () => {
    for (const authorization of ['Basic YWRtaW46YWRtaW4=', await t.token('admin'), 'Bearer ', 'Bearer a b']) {
      const res = await t.fhir('GET', '/fhir/Patient', { headers: { authorization } });
      expectOutcome(res, 401, 'login', 'unauthorized');
    }
  });

  it('HEAD without a token is refused too', async () => {
    const res = await t.fhir('HEAD', `/fhir/Patient/${existingPatient}`);
    expect(res.status).toBe(401);
  });

  it('metadata and the SMART discovery answer without a token', async () => {
    expect((await t.fhir('GET', '/fhir/metadata')).status).toBe(200);
    expect((await t.fhir('GET', '/fhir/metadata?_format=json')).status).toBe(200);
    expect((await t.fhir('GET', '/.well-known/smart-configuration')).status).toBe(200);
  });

  it('the same requests with a valid token are not refused for want of one', async () => {
    const token = await t.token('admin');
    const res = await t.fhir('GET', `/fhir/Patient/${existingPatient}`, { token });
    expect(res.status).toBe(200);
    const bad = await t.fhir('GET', '/fhir/Patient/%E0%A4%A', { token });
    expectOutcome(bad, 400, 'value', 'invalid-id');
  });
});

describe('the token endpoint (SMART Backend Services, RFC 7523)', () => {
  let t: SecureApp;
  beforeAll(async () => {
    t = await startSecureApp();
  });
  afterAll(() => t.close());

  const expectOAuthError = (
    res: { status: number; body: unknown; headers: Record<string, string> },
    status: number,
    error: string,
  ): void => {
    expect(res.status, JSON.stringify(res.body)).toBe(status);
    expect(res.headers['content-type']).toMatch(/^application\/json/);
    expect(res.headers['cache-control']).toBe('no-store');
    expect(res.body).toEqual({ error, error_description: expect.any(String) });
  };

  it('grants a short-lived ES256 bearer token for a valid ES384 assertion', async () => {
    const res = await t.tokenRequest(form(await t.assertion('practice')));
    expect(res.status).toBe(200);
    expect(res.headers['cache-control']).toBe('no-store');
    expect(res.headers.pragma).toBe('no-cache');
    expect(res.body).toMatchObject({ token_type: 'bearer', scope: 'system/*.cruds' });
    expect(res.body.expires_in).toBeGreaterThan(0);
    expect(res.body.expires_in).toBeLessThanOrEqual(300);
    const header = decodeProtectedHeader(res.body.access_token);
    expect(header).toMatchObject({ alg: 'ES256', typ: 'at+jwt', kid: t.keys.current.kid });
  });

  it('accepts RS384 assertions from a client registered with an RSA key', async () => {
    const { publicKey, privateKey } = await generateKeyPair('RS384', { extractable: true });
    const kid = randomUUID();
    t.clients.set('rsa-client', {
      client_id: 'rsa-client',
      jwks: { keys: [{ ...(await exportJWK(publicKey)), kid, alg: 'RS384', use: 'sig' }] },
      scope: 'system/*.rs',
      role: 'practice',
      acts_for: [],
    });
    const assertion = await signed(
      privateKey,
      { alg: 'RS384', kid, typ: 'JWT' },
      assertionClaims(t, 'rsa-client'),
    );
    const res = await t.tokenRequest(form(assertion));
    expect(res.status, JSON.stringify(res.body)).toBe(200);
    const token = res.body.access_token as string;
    expect((await t.fhir('GET', '/fhir/Patient', { token })).status).toBe(200);
  });

  it('grants the requested subset of the registered scopes, v1 and v2 forms alike', async () => {
    for (const scope of ['system/Patient.rs', 'system/*.read', 'system/ServiceRequest.write system/Task.r']) {
      const res = await t.tokenRequest(form(await t.assertion('practice'), { scope }));
      expect(res.status).toBe(200);
      expect(res.body.scope).toBe(scope);
    }
  });

  it('refuses an expired assertion: 401 invalid_client', async () => {
    const res = await t.tokenRequest(form(await t.assertion('practice', -60)));
    expectOAuthError(res, 401, 'invalid_client');
    expect(res.body.error_description).toMatch(/expired/);
  });

  it('refuses an assertion whose exp is more than 5 minutes ahead: 401 invalid_client', async () => {
    const res = await t.tokenRequest(form(await t.assertion('practice', 301 + 5)));
    expectOAuthError(res, 401, 'invalid_client');
    expect(res.body.error_description).toMatch(/5 minutes/);
    // Exactly 5 minutes is still fine.
    expect((await t.tokenRequest(form(await t.assertion('practice', 299)))).status).toBe(200);
  });

  it('refuses an assertion signed by another key (same kid): 401 invalid_client', async () => {
    const { privateKey } = await generateKeyPair('ES384');
    const kid = t.clientKeys.get('practice')?.kid as string;
    const assertion = await signed(
      privateKey,
      { alg: 'ES384', kid, typ: 'JWT' },
      assertionClaims(t, 'practice'),
    );
    expectOAuthError(await t.tokenRequest(form(assertion)), 401, 'invalid_client');
  });

  it('refuses an assertion whose claims were altered after signing: 401 invalid_client', async () => {
    const genuine = await t.assertion('referrer-a');
    const [h, , s] = genuine.split('.');
    const forged = `${h}.${b64(assertionClaims(t, 'admin'))}.${s}`;
    expectOAuthError(await t.tokenRequest(form(forged)), 401, 'invalid_client');
  });

  it('refuses another client key signing for this client (iss admin, key of referrer-a)', async () => {
    const { key, jwk } = await privateKeyOf(t, 'referrer-a');
    const assertion = await signed(key, { alg: 'ES384', kid: jwk.kid }, assertionClaims(t, 'admin'));
    expectOAuthError(await t.tokenRequest(form(assertion)), 401, 'invalid_client');
  });

  it('refuses a wrong audience: another server, the FHIR base, none', async () => {
    const { key, jwk } = await privateKeyOf(t, 'practice');
    for (const aud of ['https://other.example.org/auth/token', `${PUBLIC_ORIGIN}/fhir`, undefined]) {
      const claims = assertionClaims(t, 'practice', { aud });
      const assertion = await signed(key, { alg: 'ES384', kid: jwk.kid }, claims);
      const res = await t.tokenRequest(form(assertion));
      expectOAuthError(res, 401, 'invalid_client');
    }
  });

  it("refuses alg 'none' (an unsecured JWT): 401 invalid_client", async () => {
    for (const alg of ['none', 'None', 'NONE']) {
      const unsecured = `${b64({ alg, typ: 'JWT' })}.${b64(assertionClaims(t, 'practice'))}.`;
      expectOAuthError(await t.tokenRequest(form(unsecured)), 401, 'invalid_client');
    }
  });

  it('refuses HS256 signed with the public key as the HMAC secret (algorithm confusion)', async () => {
    const publicJwk = t.clientKeys.get('practice')?.publicJwk as JWK;
    const publicKey = (await importJWK(publicJwk, 'ES384')) as CryptoKey;
    const secrets = [
      new TextEncoder().encode(await exportSPKI(publicKey)),
      new TextEncoder().encode(JSON.stringify(publicJwk)),
    ];
    for (const secret of secrets) {
      for (const alg of ['HS256', 'HS384']) {
        const assertion = await signed(secret, { alg, kid: publicJwk.kid }, assertionClaims(t, 'practice'));
        expectOAuthError(await t.tokenRequest(form(assertion)), 401, 'invalid_client');
      }
    }
  });

  it('refuses an algorithm not offered even with the right key (ES256 instead of ES384)', async () => {
    const { publicKey, privateKey } = await generateKeyPair('ES256', { extractable: true });
    t.clients.set('es256-client', {
      client_id: 'es256-client',
      jwks: { keys: [{ ...(await exportJWK(publicKey)), kid: 'k1', alg: 'ES256' }] },
      scope: 'system/*.rs',
      role: 'practice',
      acts_for: [],
    });
    const assertion = await signed(
      privateKey,
      { alg: 'ES256', kid: 'k1' },
      assertionClaims(t, 'es256-client'),
    );
    expectOAuthError(await t.tokenRequest(form(assertion)), 401, 'invalid_client');
  });

  it('refuses a replayed assertion (the same jti twice): 401 invalid_client', async () => {
    const assertion = await t.assertion('practice');
    expect((await t.tokenRequest(form(assertion))).status).toBe(200);
    const again = await t.tokenRequest(form(assertion));
    expectOAuthError(again, 401, 'invalid_client');
    expect(again.body.error_description).toMatch(/replay/);
    // A different assertion with the same jti is a replay as well.
    const { key, jwk } = await privateKeyOf(t, 'practice');
    const jti = randomUUID();
    const first = await signed(key, { alg: 'ES384', kid: jwk.kid }, assertionClaims(t, 'practice', { jti }));
    const second = await signed(key, { alg: 'ES384', kid: jwk.kid }, assertionClaims(t, 'practice', { jti }));
    expect((await t.tokenRequest(form(first))).status).toBe(200);
    expectOAuthError(await t.tokenRequest(form(second)), 401, 'invalid_client');
  });

  it('refuses an assertion without jti or without exp', async () => {
    const { key, jwk } = await privateKeyOf(t, 'practice');
    for (const missing of ['jti', 'exp']) {
      const claims: Record<string, unknown> = assertionClaims(t, 'practice');
      delete claims[missing];
      const assertion = await signed(key, { alg: 'ES384', kid: jwk.kid }, claims);
      expectOAuthError(await t.tokenRequest(form(assertion)), 401, 'invalid_client');
    }
  });

  it('refuses iss different from sub: 401 invalid_client', async () => {
    const { key, jwk } = await privateKeyOf(t, 'referrer-a');
    const assertion = await signed(
      key,
      { alg: 'ES384', kid: jwk.kid },
      assertionClaims(t, 'referrer-a', { sub: 'admin' }),
    );
    expectOAuthError(await t.tokenRequest(form(assertion)), 401, 'invalid_client');
  });

  it('refuses an unknown client: 401 invalid_client', async () => {
    const { key, jwk } = await privateKeyOf(t, 'practice');
    const assertion = await signed(key, { alg: 'ES384', kid: jwk.kid }, assertionClaims(t, 'nobody'));
    const res = await t.tokenRequest(form(assertion));
    expectOAuthError(res, 401, 'invalid_client');
  });

  it('refuses a wrong grant_type: 400 unsupported_grant_type', async () => {
    for (const grant of ['authorization_code', 'password', 'refresh_token']) {
      const res = await t.tokenRequest(form(await t.assertion('practice'), { grant_type: grant }));
      expectOAuthError(res, 400, 'unsupported_grant_type');
    }
  });

  it('refuses a missing or other client_assertion_type, and a non-JWT: 400 invalid_request', async () => {
    const assertion = await t.assertion('practice');
    const { client_assertion_type: _omitted, ...withoutType } = form(assertion);
    expectOAuthError(await t.tokenRequest(withoutType), 400, 'invalid_request');
    expectOAuthError(
      await t.tokenRequest(form(assertion, { client_assertion_type: 'urn:other' })),
      400,
      'invalid_request',
    );
    expectOAuthError(await t.tokenRequest(form('not-a-jwt')), 400, 'invalid_request');
    expectOAuthError(await t.tokenRequest(form('')), 400, 'invalid_request');
  });

  it('refuses scopes the client is not registered for: 400 invalid_scope', async () => {
    await t.register('narrow', 'practice', 'system/ServiceRequest.rs');
    for (const scope of [
      'system/Patient.r',
      'system/ServiceRequest.c',
      'system/*.rs',
      'launch/patient',
      'openid',
    ]) {
      const res = await t.tokenRequest(form(await t.assertion('narrow'), { scope }));
      expectOAuthError(res, 400, 'invalid_scope');
    }
    const ok = await t.tokenRequest(form(await t.assertion('narrow'), { scope: 'system/ServiceRequest.s' }));
    expect(ok.status).toBe(200);
  });

  it('never answers with a token to a GET or to a JSON body', async () => {
    expect((await t.fhir('GET', '/auth/token')).status).toBe(404);
    const res = await t.fhir('POST', '/auth/token', {
      body: form(await t.assertion('practice')),
      headers: { 'content-type': 'application/json' },
    });
    expect(res.status).toBe(400);
    expect(res.body.access_token).toBeUndefined();
  });
});

describe('access tokens', () => {
  let t: SecureApp;
  beforeAll(async () => {
    t = await startSecureApp();
  });
  afterEach(() => {
    t.clock.offsetMs = 0;
  });
  afterAll(() => t.close());

  const expectInvalidToken = async (token: string): Promise<void> => {
    const res = await t.fhir('GET', '/fhir/Patient', { token });
    expectOutcome(res, 401, 'login', 'unauthorized');
    expect(res.headers['www-authenticate']).toBe('Bearer realm="fhir", error="invalid_token"');
  };

  it('a valid token works', async () => {
    const res = await t.fhir('GET', '/fhir/Patient', { token: await t.token('practice') });
    expect(res.status).toBe(200);
  });

  it('refuses a token whose payload was tampered with (scope, role, subject)', async () => {
    const token = await t.token('referrer-a', 'system/ServiceRequest.rs');
    const [h, p, s] = token.split('.') as [string, string, string];
    const claims = JSON.parse(Buffer.from(p, 'base64url').toString()) as Record<string, unknown>;
    for (const change of [
      { scope: 'system/*.cruds' },
      { role: 'admin' },
      { sub: 'admin' },
      { exp: 9999999999 },
    ]) {
      await expectInvalidToken(`${h}.${b64({ ...claims, ...change })}.${s}`);
    }
    // One flipped signature character.
    const flipped = s.startsWith('A') ? `B${s.slice(1)}` : `A${s.slice(1)}`;
    await expectInvalidToken(`${h}.${p}.${flipped}`);
  });

  it('refuses an expired token (the clock moved past exp)', async () => {
    const token = await t.token('practice');
    t.clock.offsetMs = 299_000;
    expect((await t.fhir('GET', '/fhir/Patient', { token })).status).toBe(200);
    t.clock.offsetMs = 301_000;
    await expectInvalidToken(token);
  });

  it("refuses alg 'none' and HS256 with the service's public key", async () => {
    const genuine = await t.token('practice');
    const claims = JSON.parse(Buffer.from(genuine.split('.')[1] as string, 'base64url').toString());
    await expectInvalidToken(`${b64({ alg: 'none', typ: 'at+jwt' })}.${b64(claims)}.`);
    const secret = new TextEncoder().encode(JSON.stringify(t.keys.current.publicJwk));
    await expectInvalidToken(
      await signed(secret, { alg: 'HS256', kid: t.keys.current.kid, typ: 'at+jwt' }, claims),
    );
  });

  it('refuses a client assertion presented as an access token', async () => {
    await expectInvalidToken(await t.assertion('admin'));
  });

  it("refuses a token signed by another instance's keys (same issuer, other ring)", async () => {
    const other = new TokenService({
      clients: t.clients,
      keys: await KeyRing.create(),
      issuer: PUBLIC_ORIGIN,
      tokenTtlSeconds: 300,
    });
    const foreign = await other.exchange(form(await t.assertion('admin')), [t.tokenUrl]);
    await expectInvalidToken(foreign.access_token);
  });

  it('refuses a token with another issuer or audience, signed by the right key', async () => {
    const genuine = await t.token('practice');
    const claims = JSON.parse(Buffer.from(genuine.split('.')[1] as string, 'base64url').toString());
    for (const change of [{ iss: 'https://evil.example' }, { aud: 'https://evil.example' }]) {
      const token = await signed(
        t.keys.current.privateKey,
        { alg: 'ES256', kid: t.keys.current.kid, typ: 'at+jwt' },
        { ...claims, ...change },
      );
      await expectInvalidToken(token);
    }
  });

  it('refuses the token of a client that is no longer registered', async () => {
    await t.register('short-lived', 'practice', 'system/*.rs');
    const token = await t.token('short-lived');
    expect((await t.fhir('GET', '/fhir/Patient', { token })).status).toBe(200);
    t.clients.delete('short-lived');
    await expectInvalidToken(token);
  });
});

describe('discovery', () => {
  let t: SecureApp;
  beforeAll(async () => {
    t = await startSecureApp();
  });
  afterAll(() => t.close());

  it('/.well-known/smart-configuration names the token endpoint, private_key_jwt, algorithms and scopes', async () => {
    const res = await t.fhir('GET', '/.well-known/smart-configuration');
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({
      token_endpoint: `${PUBLIC_ORIGIN}/auth/token`,
      token_endpoint_auth_methods_supported: ['private_key_jwt'],
      token_endpoint_auth_signing_alg_values_supported: expect.arrayContaining(['RS384', 'ES384']),
      grant_types_supported: ['client_credentials'],
      capabilities: expect.arrayContaining([
        'client-confidential-asymmetric',
        'permission-v1',
        'permission-v2',
      ]),
    });
    expect(res.body.scopes_supported).toEqual(SCOPES_SUPPORTED);
    expect(res.body.scopes_supported).toEqual(expect.arrayContaining(['system/*.read', 'system/*.rs']));
  });

  it('the CapabilityStatement (public) carries rest.security: SMART-on-FHIR, the token URL, private_key_jwt', async () => {
    const res = await t.fhir('GET', '/fhir/metadata');
    expect(res.status).toBe(200);
    const security = (res.body as CapabilityStatement).rest?.[0]?.security;
    expect(security?.service?.[0]?.coding?.[0]).toMatchObject({ code: 'SMART-on-FHIR' });
    const uris = security?.extension?.find(
      (e) => e.url === 'http://fhir-registry.smarthealthit.org/StructureDefinition/oauth-uris',
    );
    expect(uris?.extension).toContainEqual({ url: 'token', valueUri: `${PUBLIC_ORIGIN}/auth/token` });
    expect(security?.description).toContain('private_key_jwt');
  });

  it('the CapabilityStatement rest.security lists the supported scopes', async () => {
    const res = await t.fhir('GET', '/fhir/metadata');
    expect(JSON.stringify((res.body as CapabilityStatement).rest?.[0]?.security)).toContain('system/*.rs');
  });

  // Without BASE_URL the assertion audience is the service's own loopback token URL, never one
  // named by the Host header (src/auth/auth-routes.ts assertionAudiences).
  it('without BASE_URL an assertion for another server is refused whatever the Host', async () => {
    const derived = await startSecureApp({ publicOrigin: null });
    try {
      const { key, jwk } = await privateKeyOf(derived, 'practice');
      const claims = assertionClaims(derived, 'practice', { aud: 'http://other-fhir.example/auth/token' });
      const assertion = await signed(key, { alg: 'ES384', kid: jwk.kid }, claims);
      const res = await derived.fhir('POST', '/auth/token', {
        body: new URLSearchParams(form(assertion)).toString(),
        headers: { host: 'other-fhir.example', 'content-type': 'application/x-www-form-urlencoded' },
      });
      expect(res.status).toBe(401);
    } finally {
      await derived.close();
    }
  });

  it('without a configured public origin the token URL is the request origin', async () => {
    const derived = await startSecureApp({ publicOrigin: null });
    try {
      const res = await derived.fhir('GET', '/.well-known/smart-configuration', {
        headers: { host: 'fhir.clinic.example:8443' },
      });
      expect(res.body.token_endpoint).toBe('http://fhir.clinic.example:8443/auth/token');
    } finally {
      await derived.close();
    }
  });
});

describe('signing-key rotation', () => {
  it('keeps tokens signed before a rotation valid; new tokens carry the new kid', async () => {
    const t = await startSecureApp();
    try {
      const before = await t.token('practice');
      const oldKid = decodeProtectedHeader(before).kid;
      await t.keys.rotate();
      const after = await t.token('practice');
      const newKid = decodeProtectedHeader(after).kid;
      expect(newKid).toBe(t.keys.current.kid);
      expect(newKid).not.toBe(oldKid);
      expect((await t.fhir('GET', '/fhir/Patient', { token: before })).status).toBe(200);
      expect((await t.fhir('GET', '/fhir/Patient', { token: after })).status).toBe(200);
      // A rotation that drops keys older than 0 ms retires the old key: its tokens stop working.
      await t.keys.rotate(0);
      expect((await t.fhir('GET', '/fhir/Patient', { token: before })).status).toBe(401);
    } finally {
      await t.close();
    }
  });

  it('SIGNING_KEYS_FILE: a restarted instance verifies tokens from before the restart', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'keyring-'));
    try {
      const file = join(dir, 'signing-keys.json');
      const t = await startSecureApp();
      try {
        const first = await KeyRing.create(file);
        const service = new TokenService({
          clients: t.clients,
          keys: first,
          issuer: PUBLIC_ORIGIN,
          tokenTtlSeconds: 300,
        });
        const issued = await service.exchange(form(await t.assertion('admin')), [t.tokenUrl]);
        const restarted = new TokenService({
          clients: t.clients,
          keys: await KeyRing.create(file),
          issuer: PUBLIC_ORIGIN,
          tokenTtlSeconds: 300,
        });
        await expect(restarted.verifyAccessToken(issued.access_token)).resolves.toMatchObject({
          clientId: 'admin',
          role: 'admin',
        });
      } finally {
        await t.close();
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('SIGNING_KEYS_FILE shared by two instances: a token from the one that rotated verifies on the other', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'keyring-'));
    const t = await startSecureApp();
    try {
      const file = join(dir, 'signing-keys.json');
      const ringA = await KeyRing.create(file);
      const ringB = await KeyRing.create(file);
      const service = (keys: KeyRing) =>
        new TokenService({ clients: t.clients, keys, issuer: PUBLIC_ORIGIN, tokenTtlSeconds: 300 });
      const [a, b] = [service(ringA), service(ringB)];
      // Both instances rotate (each on its own daily timer); tokens of either verify on both.
      await ringA.rotate();
      const fromA = await a.exchange(form(await t.assertion('admin')), [t.tokenUrl]);
      await expect(b.verifyAccessToken(fromA.access_token)).resolves.toMatchObject({ clientId: 'admin' });
      await ringB.rotate();
      const fromB = await b.exchange(form(await t.assertion('admin')), [t.tokenUrl]);
      await expect(a.verifyAccessToken(fromB.access_token)).resolves.toMatchObject({ clientId: 'admin' });
      await expect(b.verifyAccessToken(fromA.access_token)).resolves.toMatchObject({ clientId: 'admin' });
    } finally {
      await t.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('rate limits', () => {
  it('answers 429 with Retry-After once a client exceeds its limit; other clients are unaffected', async () => {
    const t = await startSecureApp({ rateLimitPerMinute: 3 });
    try {
      const a = await t.token('referrer-a');
      for (let i = 0; i < 3; i++)
        expect((await t.fhir('GET', '/fhir/ServiceRequest', { token: a })).status).toBe(200);
      const limited = await t.fhir('GET', '/fhir/ServiceRequest', { token: a });
      expectOutcome(limited, 429, 'throttled', 'rate-limited');
      const retryAfter = Number(limited.headers['retry-after']);
      expect(Number.isInteger(retryAfter)).toBe(true);
      expect(retryAfter).toBeGreaterThanOrEqual(1);
      expect(retryAfter).toBeLessThanOrEqual(20);
      // Per client: B has its own bucket.
      const b = await t.token('referrer-b');
      expect((await t.fhir('GET', '/fhir/ServiceRequest', { token: b })).status).toBe(200);
      // Anonymous requests to the public metadata are limited per address.
      const statuses: number[] = [];
      for (let i = 0; i < 4; i++) statuses.push((await t.fhir('GET', '/fhir/metadata')).status);
      expect(statuses).toEqual([200, 200, 200, 429]);
    } finally {
      await t.close();
    }
  });
});

describe('hygiene', () => {
  let t: SecureApp;
  beforeAll(async () => {
    t = await startSecureApp();
  });
  afterAll(() => t.close());

  it.each([
    ['GET', '/fhir/metadata'],
    ['GET', '/fhir/Patient'],
    ['GET', '/.well-known/smart-configuration'],
    ['POST', '/auth/token'],
  ])('security headers (helmet) on %s %s', async (method, path) => {
    const res = await t.fhir(method, path);
    expect(res.headers['x-content-type-options']).toBe('nosniff');
    expect(res.headers['content-security-policy']).toContain("default-src 'self'");
    expect(res.headers['content-security-policy']).toContain("frame-ancestors 'self'");
    expect(res.headers['strict-transport-security']).toMatch(/max-age=\d+/);
    expect(res.headers['x-frame-options']).toBe('SAMEORIGIN');
    expect(res.headers['referrer-policy']).toBe('no-referrer');
    expect(res.headers['cross-origin-resource-policy']).toBe('same-origin');
    expect(res.headers['x-powered-by']).toBeUndefined();
  });

  it('AUTH=off is refused under NODE_ENV=production (ConfigError); on is the default', () => {
    expect(() => loadConfig({ AUTH: 'off', NODE_ENV: 'production' })).toThrow(ConfigError);
    expect(() => loadConfig({ AUTH: 'off', NODE_ENV: 'production' })).toThrow(/AUTH=off/);
    expect(
      loadConfig({ NODE_ENV: 'production', BASE_URL: 'https://fhir.example.org/fhir' }).auth.enabled,
    ).toBe(true);
    // In production the token URL (the assertion audience) must be configured, not taken from Host.
    expect(() => loadConfig({ NODE_ENV: 'production' })).toThrow(/BASE_URL is required/);
    expect(loadConfig({}).auth.enabled).toBe(true);
    expect(loadConfig({ AUTH: 'off', NODE_ENV: 'development' }).auth.enabled).toBe(false);
    expect(() => loadConfig({ AUTH: 'maybe' })).toThrow(ConfigError);
    expect(() => loadConfig({ AUTH: 'OFF', NODE_ENV: 'production' })).toThrow(ConfigError);
  });
});
