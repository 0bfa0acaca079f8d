import type { AuthContext } from '../access/client-identity.js';
import { randomUUID } from 'node:crypto';
import {
  createLocalJWKSet,
  createRemoteJWKSet,
  decodeProtectedHeader,
  errors,
  jwtVerify,
  SignJWT,
  type JWTVerifyGetKey,
} from 'jose';
import type { ClientRegistration } from './clients.js';
import type { KeyRing } from './key-ring.js';
import { grantScopes, parseScopes } from './scopes.js';

/**
 * SMART Backend Services (https://hl7.org/fhir/smart-app-launch/backend-services.html): a client
 * proves itself with a JWT signed by its own key (private_key_jwt, RFC 7523) and gets a short-lived
 * access token signed by the service. All cryptography is jose's.
 */
export const CLIENT_ASSERTION_TYPE = 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer';
export const ASSERTION_ALGORITHMS = ['RS384', 'ES384'];
const MAX_ASSERTION_LIFETIME_S = 300;

/** An RFC 6749 §5.2 error answer. */
export class OAuthError extends Error {
  constructor(
    readonly status: 400 | 401,
    readonly error:
      | 'invalid_request'
      | 'invalid_client'
      | 'invalid_grant'
      | 'unauthorized_client'
      | 'unsupported_grant_type'
      | 'invalid_scope',
    readonly description: string,
  ) {
    super(description);
  }
}

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
}

export class TokenService {
  /** jti → expiry (ms): an assertion is accepted once (RFC 7523 §3, SMART: "jti never reused"). */
  private readonly seenJti = new Map<string, number>();
  private readonly keySets = new Map<string, JWTVerifyGetKey>();

  constructor(private readonly options: TokenServiceOptions) {}

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
    const client = typeof unverified.iss === 'string' ? this.options.clients.get(unverified.iss) : undefined;
    if (!client) {
      throw new OAuthError(401, 'invalid_client', 'Unknown client');
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
    } catch (err) {
      throw new OAuthError(401, 'invalid_client', describeJoseError(err));
    }
    const nowS = Math.floor(this.now() / 1000);
    if ((payload.exp as number) - nowS > MAX_ASSERTION_LIFETIME_S) {
      throw new OAuthError(401, 'invalid_client', 'client_assertion exp is more than 5 minutes ahead');
    }
    this.rememberJti(`${client.client_id}|${payload.jti}`, (payload.exp as number) * 1000);
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

  private rememberJti(key: string, expiresAt: number): void {
    const now = this.now();
    for (const [jti, exp] of this.seenJti) {
      if (exp < now) this.seenJti.delete(jti);
    }
    if (this.seenJti.has(key)) {
      throw new OAuthError(401, 'invalid_client', 'client_assertion jti was already used (replay)');
    }
    this.seenJti.set(key, expiresAt);
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

function describeJoseError(err: unknown): string {
  if (err instanceof errors.JWTExpired) return 'client_assertion has expired';
  if (err instanceof errors.JWTClaimValidationFailed)
    return `client_assertion claim ${err.claim} is not valid`;
  if (err instanceof errors.JWSSignatureVerificationFailed)
    return 'client_assertion signature does not verify';
  if (err instanceof errors.JWKSNoMatchingKey) return 'no registered key matches the client_assertion';
  return 'client_assertion could not be verified';
}
