import { randomUUID } from 'node:crypto';
import { importJWK, SignJWT, type CryptoKey, type JWK } from 'jose';
import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  generateClientKeys,
  registration,
  signClientAssertion,
  tokenRequestBody,
  type ClientKeyPair,
} from '../../src/auth/client-keys.js';
import type { ClientRegistration } from '../../src/auth/clients.js';
import { KeyRing } from '../../src/auth/key-ring.js';
import { LruMap } from '../../src/auth/lru-map.js';
import { TokenBuckets } from '../../src/auth/token-buckets.js';
import { CLIENT_ASSERTION_TYPE, OAuthError, TokenService } from '../../src/auth/token-service.js';
import { compose, type Composition } from '../../src/compose.js';
import { ConfigError, loadConfig } from '../../src/config/config.js';
import { sharedValidator } from '../support/test-app.js';
import { testConfig } from '../support/test-config.js';

/**
 * Issue 11, items 15 and 20: the token endpoint is limited per client as well as per address;
 * which address a request comes from follows an explicit TRUST_PROXY setting; the limiters' memory
 * is bounded without resetting everyone; token errors do not tell which client ids exist; `jti`
 * is short; `iat` far in the future is refused; the replay cache is bounded. Real keys, real
 * signatures, the composed service (src/compose.ts).
 */
const ORIGIN = 'https://referrals.example.test';
const TOKEN_URL = `${ORIGIN}/auth/token`;

interface Registry {
  clients: Map<string, ClientRegistration>;
  keys: Map<string, ClientKeyPair>;
}

async function registry(ids: string[]): Promise<Registry> {
  const clients = new Map<string, ClientRegistration>();
  const keys = new Map<string, ClientKeyPair>();
  for (const id of ids) {
    const pair = await generateClientKeys();
    clients.set(id, registration(id, pair, 'practice', 'system/*.cruds'));
    keys.set(id, pair);
  }
  return { clients, keys };
}

async function tokens(reg: Registry, options: Partial<ConstructorParameters<typeof TokenService>[0]> = {}) {
  return new TokenService({
    clients: reg.clients,
    keys: await KeyRing.create(),
    issuer: ORIGIN,
    tokenTtlSeconds: 300,
    ...options,
  });
}

/** An assertion with the claims the test wants, signed with `signer`'s registered key. */
async function assertion(
  reg: Registry,
  signer: string,
  claims: Record<string, unknown> = {},
): Promise<string> {
  const jwk = reg.keys.get(signer)?.privateJwk as JWK;
  const key = (await importJWK(jwk, 'ES384')) as CryptoKey;
  const now = Math.floor(Date.now() / 1000);
  return new SignJWT({
    iss: signer,
    sub: signer,
    aud: TOKEN_URL,
    iat: now,
    exp: now + 240,
    jti: randomUUID(),
    ...claims,
  })
    .setProtectedHeader({ alg: 'ES384', kid: jwk.kid, typ: 'JWT' })
    .sign(key);
}

const form = (a: string) => ({
  grant_type: 'client_credentials',
  client_assertion_type: CLIENT_ASSERTION_TYPE,
  client_assertion: a,
});

async function refusal(service: TokenService, a: string): Promise<OAuthError> {
  try {
    await service.exchange(form(a), [TOKEN_URL]);
  } catch (err) {
    if (err instanceof OAuthError) return err;
    throw err;
  }
  throw new Error('the assertion was accepted');
}

describe('token errors do not reveal which client ids exist', () => {
  let service: Composition;
  let reg: Registry;
  beforeAll(async () => {
    reg = await registry(['practice', 'admin']);
    service = await compose(testConfig({ LOG_LEVEL: 'silent' }), {
      validator: sharedValidator(),
      version: 'test',
      audit: false,
      security: { tokens: await tokens(reg), rateLimitPerMinute: 1_000_000, publicOrigin: ORIGIN },
    });
  });
  afterAll(() => service?.close());

  it('answers an unknown client and a bad signature with the same status and body', async () => {
    const post = async (a: string) => {
      const res = await request(service.app).post('/auth/token').type('form').send(form(a));
      return { status: res.status, body: res.body as unknown };
    };
    // Signed by practice's key: for 'nobody' (unknown), for 'admin' (a registered client whose
    // key did not sign it), and with a kid no one registered.
    const unknown = await post(await assertion(reg, 'practice', { iss: 'nobody', sub: 'nobody' }));
    const badSignature = await post(await assertion(reg, 'practice', { iss: 'admin', sub: 'admin' }));
    expect(unknown.status).toBe(401);
    expect(badSignature).toEqual(unknown);
    expect(JSON.stringify(unknown.body)).not.toMatch(/unknown client'?$|Unknown client/);
  });

  it('refuses a jti longer than 256 characters or not a string, and accepts one of 256', async () => {
    const t = await tokens(reg);
    for (const jti of ['j'.repeat(257), 'j'.repeat(100_000), 12345, { a: 1 }, '']) {
      const err = await refusal(t, await assertion(reg, 'practice', { jti }));
      expect(err.status).toBe(401);
      expect(err.error).toBe('invalid_client');
      expect(err.description).toMatch(/jti/);
    }
    await expect(
      t.exchange(form(await assertion(reg, 'practice', { jti: 'j'.repeat(256) })), [TOKEN_URL]),
    ).resolves.toMatchObject({ token_type: 'bearer' });
  });

  it('refuses an iat more than 60 s in the future, and accepts one 30 s ahead (clock skew)', async () => {
    const t = await tokens(reg);
    const now = Math.floor(Date.now() / 1000);
    for (const iat of [now + 61, now + 3600, now + 10 * 365 * 86_400]) {
      const err = await refusal(t, await assertion(reg, 'practice', { iat }));
      expect(err.status).toBe(401);
      expect(err.description).toMatch(/iat/);
    }
    await expect(
      t.exchange(form(await assertion(reg, 'practice', { iat: now + 30 })), [TOKEN_URL]),
    ).resolves.toMatchObject({ token_type: 'bearer' });
  });

  it('bounds the replay cache: entries expire with the assertion exp, and a hard cap refuses more (429) rather than forget one', async () => {
    const clock = { offsetMs: 0 };
    const t = await tokens(reg, { replayCacheSize: 2, now: () => Date.now() + clock.offsetMs });
    const first = await assertion(reg, 'practice', { exp: Math.floor(Date.now() / 1000) + 60 });
    await t.exchange(form(first), [TOKEN_URL]);
    await t.exchange(form(await assertion(reg, 'practice', { exp: Math.floor(Date.now() / 1000) + 60 })), [
      TOKEN_URL,
    ]);
    const full = await refusal(t, await assertion(reg, 'practice'));
    expect(full.status).toBe(429);
    expect(full.retryAfterSeconds).toBeGreaterThanOrEqual(1);
    // The replay of a remembered assertion is still a replay, not a "full" answer.
    expect((await refusal(t, first)).description).toMatch(/replay/);
    // Once their exp has passed, the entries are forgotten and new assertions are taken again.
    clock.offsetMs = 61_000;
    await expect(
      t.exchange(
        form(
          await assertion(reg, 'practice', {
            iat: Math.floor(Date.now() / 1000) + 61,
            exp: Math.floor(Date.now() / 1000) + 200,
          }),
        ),
        [TOKEN_URL],
      ),
    ).resolves.toMatchObject({ token_type: 'bearer' });
  });
});

describe('the token endpoint is limited per client and per address', () => {
  let behindProxy: Composition;
  let direct: Composition;
  let reg: Registry;
  beforeAll(async () => {
    reg = await registry(['practice', 'admin']);
    const build = async (env: Record<string, string>) =>
      compose(testConfig({ LOG_LEVEL: 'silent', ...env }), {
        validator: sharedValidator(),
        version: 'test',
        audit: false,
        security: {
          tokens: await tokens(reg, { clientRateLimitPerMinute: 3 }),
          rateLimitPerMinute: 5,
          publicOrigin: ORIGIN,
        },
      });
    behindProxy = await build({ TRUST_PROXY: 'loopback' });
    direct = await build({});
  });
  afterAll(async () => {
    await behindProxy?.close();
    await direct?.close();
  });

  const post = (app: Composition, body: Record<string, string>, from?: string) => {
    const req = request(app.app).post('/auth/token').type('form');
    return (from ? req.set('x-forwarded-for', from) : req).send(body);
  };

  it('limits one client across addresses: past its limit 429 with Retry-After, while another client is served', async () => {
    const statuses: number[] = [];
    for (let i = 0; i < 4; i++) {
      const res = await post(behindProxy, form(await assertion(reg, 'practice')), `10.1.0.${i + 1}`);
      statuses.push(res.status);
      if (res.status === 429) expect(Number(res.headers['retry-after'])).toBeGreaterThanOrEqual(1);
    }
    expect(statuses).toEqual([200, 200, 200, 429]);
    expect((await post(behindProxy, form(await assertion(reg, 'admin')), '10.1.0.9')).status).toBe(200);
  });

  it('a forged assertion naming a client does not use up that client’s limit', async () => {
    for (let i = 0; i < 4; i++) {
      const forged = await assertion(reg, 'practice', { iss: 'admin', sub: 'admin' });
      expect((await post(behindProxy, form(forged), `10.2.0.${i + 1}`)).status).toBe(401);
    }
    expect((await post(behindProxy, form(await assertion(reg, 'admin')), '10.2.0.9')).status).toBe(200);
  });

  it('with TRUST_PROXY the forwarded address is the one limited; without it X-Forwarded-For changes nothing', async () => {
    const garbage = { grant_type: 'client_credentials' };
    const behind: number[] = [];
    for (let i = 0; i < 6; i++) behind.push((await post(behindProxy, garbage, '10.3.0.1')).status);
    expect(behind).toEqual([400, 400, 400, 400, 400, 429]);
    expect((await post(behindProxy, garbage, '10.3.0.2')).status).toBe(400);

    const directStatuses: number[] = [];
    for (let i = 0; i < 6; i++) directStatuses.push((await post(direct, garbage, `10.4.0.${i + 1}`)).status);
    expect(directStatuses).toEqual([400, 400, 400, 400, 400, 429]);
  });

  it('TRUST_PROXY is false unless set; a hop count or a list of proxies; `true` (trust anyone) is refused', () => {
    const env = { AUTH: 'off' };
    expect(loadConfig(env).trustProxy).toBe(false);
    expect(loadConfig({ ...env, TRUST_PROXY: 'false' }).trustProxy).toBe(false);
    expect(loadConfig({ ...env, TRUST_PROXY: '2' }).trustProxy).toBe(2);
    expect(loadConfig({ ...env, TRUST_PROXY: 'loopback, 10.0.0.0/8' }).trustProxy).toEqual([
      'loopback',
      '10.0.0.0/8',
    ]);
    for (const bad of ['true', '0', '99', 'anyone', '10.0.0.0/8; rm']) {
      expect(() => loadConfig({ ...env, TRUST_PROXY: bad }), bad).toThrow(ConfigError);
    }
  });
});

describe('the limiters’ memory is bounded without resetting everyone', () => {
  it('a flood of new keys evicts the least recently seen buckets, never a limited key that is still active', () => {
    const buckets = new TokenBuckets(2, () => 0, 100);
    expect(buckets.take('victim').ok).toBe(true);
    expect(buckets.take('victim').ok).toBe(true);
    expect(buckets.take('victim').ok).toBe(false);
    for (let i = 0; i < 10_000; i++) {
      buckets.take(`flood-${i}`);
      // The limited key keeps asking: it stays among the most recently seen.
      if (i % 50 === 0) expect(buckets.take('victim').ok).toBe(false);
    }
    expect(buckets.size).toBeLessThanOrEqual(100);
    expect(buckets.take('victim').ok).toBe(false);
  });

  it('an LRU map keeps at most its capacity, dropping the least recently used first', () => {
    const map = new LruMap<string, number>(2);
    map.set('a', 1);
    map.set('b', 2);
    map.get('a');
    map.set('c', 3);
    expect([map.has('a'), map.has('b'), map.has('c')]).toEqual([true, false, true]);
    expect(map.size).toBe(2);
  });
});

// Kept for a client written with the library helpers (the path real clients take).
describe('a real client assertion', () => {
  it('still gets a token', async () => {
    const reg = await registry(['practice']);
    const t = await tokens(reg);
    const a = await signClientAssertion('practice', reg.keys.get('practice')?.privateJwk as JWK, TOKEN_URL);
    await expect(t.exchange(Object.fromEntries(tokenRequestBody(a)), [TOKEN_URL])).resolves.toMatchObject({
      token_type: 'bearer',
    });
  });
});
