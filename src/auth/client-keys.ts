import { randomUUID } from 'node:crypto';
import { exportJWK, generateKeyPair, importJWK, SignJWT, type JWK } from 'jose';
import type { ClientRegistration, Role } from './clients.js';
import { CLIENT_ASSERTION_TYPE } from './token-service.js';

/**
 * What a client needs to talk to the service: an ES384 key pair (the public half registered, the
 * private half kept by the client) and a signed client assertion for each token request.
 * Used by `npm run client:new`, `npm run token`, the development client, and tests.
 */
export interface ClientKeyPair {
  kid: string;
  publicJwk: JWK;
  privateJwk: JWK;
}

export async function generateClientKeys(): Promise<ClientKeyPair> {
  const { publicKey, privateKey } = await generateKeyPair('ES384', { extractable: true });
  const kid = randomUUID();
  return {
    kid,
    publicJwk: { ...(await exportJWK(publicKey)), kid, alg: 'ES384', use: 'sig' },
    privateJwk: { ...(await exportJWK(privateKey)), kid, alg: 'ES384', use: 'sig' },
  };
}

export function registration(
  clientId: string,
  keys: ClientKeyPair,
  role: Role,
  scope: string,
  actsFor: string[] = [],
): ClientRegistration {
  return { client_id: clientId, jwks: { keys: [keys.publicJwk] }, scope, role, acts_for: actsFor };
}

/** A client assertion per SMART Backend Services: iss = sub = client id, aud = token URL, exp ≤ 5 min. */
export async function signClientAssertion(
  clientId: string,
  privateJwk: JWK,
  tokenUrl: string,
  lifetimeSeconds = 240,
): Promise<string> {
  const alg = (privateJwk.alg as string | undefined) ?? 'ES384';
  const key = await importJWK(privateJwk, alg);
  const now = Math.floor(Date.now() / 1000);
  return new SignJWT({})
    .setProtectedHeader({ alg, kid: privateJwk.kid, typ: 'JWT' })
    .setIssuer(clientId)
    .setSubject(clientId)
    .setAudience(tokenUrl)
    .setIssuedAt(now)
    .setExpirationTime(now + lifetimeSeconds)
    .setJti(randomUUID())
    .sign(key);
}

/** The form body of a token request. */
export function tokenRequestBody(assertion: string, scope?: string): URLSearchParams {
  return new URLSearchParams({
    grant_type: 'client_credentials',
    client_assertion_type: CLIENT_ASSERTION_TYPE,
    client_assertion: assertion,
    ...(scope ? { scope } : {}),
  });
}
