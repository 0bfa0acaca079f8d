import type { AuthContext } from '../access/client-identity.js';
import { randomUUID } from 'node:crypto';
import {
  createLocalJWKSet,
  createRemoteJWKSet,
  decodeProtectedHeader,
  generateKeyPair,
  jwtVerify,
  SignJWT,
  type CryptoKey,
  type JWTVerifyGetKey,
} from 'jose';
import type { ClientRegistration } from './clients.js';
import type { KeyRing } from './key-ring.js';
import { checkAssertionClaims } from './assertion-claims.js';
import { OAuthError } from './oauth-error.js';
import { ReplayCache } from './replay-cache.js';
import { grantScopes, parseScopes } from './scopes.js';
import { TokenBuckets } from './token-buckets.js';

/**
 * SMART Backend Services (https://hl7.org/fhir/smart-app-launch/backend-services.html): a client
 * proves itself with a JWT signed by its own key (private_key_jwt, RFC 7523) and gets a short-lived
 * access token signed by the service. All cryptography is jose's.
 */
export const CLIENT_ASSERTION_TYPE = 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer';
export const ASSERTION_ALGORITHMS = ['RS384', 'ES384'];
/** Tokens one client may get a minute by default (TOKEN_RATE_LIMIT_PER_CLIENT). */
export const DEFAULT_TOKENS_PER_CLIENT_PER_MINUTE = 120;

/**
 * The one answer to every assertion that fails for want of the client: an unknown client_id, a
 * signature its keys do not verify, a key it has not registered. The same status and body for
 * each, so the token endpoint does not tell who is registered (RFC 6749 §5.2 invalid_client).
 */
export const CLIENT_AUTHENTICATION_FAILED =
  'The client could not be authenticated: unknown client, or a signature its registered keys do not verify';

export { OAuthError };

export type { AuthContext } from '../access/client-identity.js';

export interface TokenResponse {
  access_token: string;
  token_type: 'bearer';
  expires_in: number;
  scope: string;
}

export interface TokenServiceOptions {
  clients: Map<string, ClientRegistration>;
  keys: KeyRing;
  /** Identifies the service in the tokens it signs (iss and aud). */
  issuer: string;
  tokenTtlSeconds: number;
  now?: () => number;
  /** Tokens one client may get a minute, from any address (default 120). */
  clientRateLimitPerMinute?: number;
  /** Assertions remembered against replay at most (default 100,000). */
  replayCacheSize?: number;
}

export class TokenService {
  /** An assertion is accepted once (RFC 7523 §3, SMART: "jti never reused"): replay-cache.ts. */
  private readonly seenJti: ReplayCache;
  private readonly keySets = new Map<string, JWTVerifyGetKey>();
  /** Per client, whatever the address (the per-address limit is the route's, app.ts). */
  private readonly perClient: TokenBuckets;
  /** Verifies the assertions of unknown clients, so they cost what a known client's do. */
  private decoyKey: Promise<CryptoKey> | undefined;

  constructor(private readonly options: TokenServiceOptions) {
    this.seenJti = new ReplayCache(options.replayCacheSize, () => this.now());
    this.perClient = new TokenBuckets(
      options.clientRateLimitPerMinute ?? DEFAULT_TOKENS_PER_CLIENT_PER_MINUTE,
      () => this.now(),
    );
  }

  private now(): number {
    return this.options.now?.() ?? Date.now();
  }

  async exchange(form: Record<string, string | undefined>, tokenUrls: string[]): Promise<TokenResponse> {
    if (form.grant_type !== 'client_credentials') {
      throw new OAuthError(400, 'unsupported_grant_type', 'grant_type must be client_credentials');
    }
    if (form.client_assertion_type !== CLIENT_ASSERTION_TYPE || !form.client_assertion) {
      throw new OAuthError(
        400,
        'invalid_request',
        `client_assertion_type must be ${CLIENT_ASSERTION_TYPE}, with a client_assertion`,
      );
    }
    const assertion = form.client_assertion;
    let header: { alg?: string; kid?: string };
    try {
      header = decodeProtectedHeader(assertion);
    } catch {
      throw new OAuthError(400, 'invalid_request', 'client_assertion is not a JWT');
    }
    if (!header.alg || !ASSERTION_ALGORITHMS.includes(header.alg)) {
      throw new OAuthError(
        401,
        'invalid_client',
        `client_assertion must be signed with ${ASSERTION_ALGORITHMS.join(' or ')}`,
      );
    }
    const unverified = decodePayload(assertion);
    // The claims are checked before the client is looked up, so that what the answer says about
    // them is the same whether the client exists or not.
    checkAssertionClaims(unverified, tokenUrls, this.now());
    const client = this.options.clients.get(unverified.iss as string);
    if (!client) {
      await this.verifyWithDecoy(assertion);
      throw new OAuthError(401, 'invalid_client', CLIENT_AUTHENTICATION_FAILED);
    }
    let payload;
    try {
      ({ payload } = await jwtVerify(assertion, this.keySet(client), {
        algorithms: ASSERTION_ALGORITHMS,
        issuer: client.client_id,
        subject: client.client_id,
        audience: tokenUrls,
        currentDate: new Date(this.now()),
        requiredClaims: ['exp', 'jti'],
      }));
    } catch {
      throw new OAuthError(401, 'invalid_client', CLIENT_AUTHENTICATION_FAILED);
    }
    // Counted only once the client proved itself: a forged assertion naming a client cannot use
    // up that client's tokens (forgeries are limited per address).
    const taken = this.perClient.take(client.client_id);
    if (!taken.ok) {
      throw new OAuthError(
        429,
        'invalid_request',
        `Too many token requests for this client: the limit is ${this.perClient.perMinute} a minute`,
        taken.retryAfterSeconds,
      );
    }
    this.seenJti.remember(`${client.client_id}|${payload.jti as string}`, (payload.exp as number) * 1000);
    const nowS = Math.floor(this.now() / 1000);
    const granted = grantScopes(form.scope, client.scope);
    if (granted.length === 0) {
      throw new OAuthError(400, 'invalid_scope', 'None of the requested scopes is granted to this client');
    }
    const ttl = Math.min(this.options.tokenTtlSeconds, 300);
    const key = this.options.keys.current;
    const accessToken = await new SignJWT({
      scope: granted.join(' '),
      role: client.role,
      acts_for: client.acts_for ?? [],
    })
      .setProtectedHeader({ alg: 'ES256', kid: key.kid, typ: 'at+jwt' })
      .setIssuer(this.options.issuer)
      .setAudience(this.options.issuer)
      .setSubject(client.client_id)
      .setIssuedAt(nowS)
      .setExpirationTime(nowS + ttl)
      .setJti(randomUUID())
      .sign(key.privateKey);
    return { access_token: accessToken, token_type: 'bearer', expires_in: ttl, scope: granted.join(' ') };
  }

  async verifyAccessToken(token: string): Promise<AuthContext> {
    const { payload } = await jwtVerify(
      token,
      async (header) => {
        const key = await this.options.keys.resolve(header.kid);
        if (!key) throw new Error('unknown key');
        return key.publicKey;
      },
      {
        algorithms: ['ES256'],
        issuer: this.options.issuer,
        audience: this.options.issuer,
        currentDate: new Date(this.now()),
        typ: 'at+jwt',
      },
    );
    const client = this.options.clients.get(payload.sub as string);
    if (!client) throw new Error('the client is no longer registered');
    return {
      clientId: client.client_id,
      role: client.role,
      scopes: parseScopes(payload.scope as string),
      actsFor: client.acts_for ?? [],
    };
  }

  private keySet(client: ClientRegistration): JWTVerifyGetKey {
    let set = this.keySets.get(client.client_id);
    if (!set) {
      set = client.jwks
        ? createLocalJWKSet(client.jwks)
        : createRemoteJWKSet(new URL(client.jwks_uri as string));
      this.keySets.set(client.client_id, set);
    }
    return set;
  }

  private async verifyWithDecoy(assertion: string): Promise<void> {
    this.decoyKey ??= generateKeyPair('ES384').then((pair) => pair.publicKey);
    try {
      await jwtVerify(assertion, await this.decoyKey, { algorithms: ASSERTION_ALGORITHMS });
    } catch {
      // Expected: the decoy verifies nothing.
    }
  }
}

function decodePayload(jwt: string): Record<string, unknown> {
  try {
    return JSON.parse(Buffer.from(jwt.split('.')[1] ?? '', 'base64url').toString('utf8')) as Record<
      string,
      unknown
    >;
  } catch {
    throw new OAuthError(400, 'invalid_request', 'client_assertion is not a JWT');
  }
}
