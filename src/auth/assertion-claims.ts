import { OAuthError } from './oauth-error.js';

/**
 * The claims of a client assertion that do not depend on who the client is (RFC 7523 §3, SMART
 * Backend Services "Authenticating to the token endpoint"), checked on the unverified payload
 * before the client is looked up: a refusal for them reads the same for a registered client and
 * for an unknown one. The signature check (token-service.ts) verifies the same claims again.
 */
export const MAX_ASSERTION_LIFETIME_S = 300;
/** How far ahead of our clock `iat` may be: clocks differ, but not by minutes. */
export const MAX_IAT_SKEW_S = 60;
/** `jti` is an identifier, not a payload: it is remembered until `exp`, so it stays small. */
export const MAX_JTI_LENGTH = 256;

export function checkAssertionClaims(
  claims: Record<string, unknown>,
  tokenUrls: string[],
  nowMs: number,
): void {
  const refuse = (description: string): never => {
    throw new OAuthError(401, 'invalid_client', description);
  };
  const nowS = Math.floor(nowMs / 1000);
  const { iss, sub, aud, exp, iat, jti } = claims;
  if (typeof iss !== 'string' || iss === '' || sub !== iss) {
    refuse('client_assertion iss and sub must both be the client_id');
  }
  if (typeof exp !== 'number' || !Number.isFinite(exp)) refuse('client_assertion claim exp is missing');
  if ((exp as number) <= nowS) refuse('client_assertion has expired');
  if ((exp as number) - nowS > MAX_ASSERTION_LIFETIME_S) {
    refuse('client_assertion exp is more than 5 minutes ahead');
  }
  if (iat !== undefined && (typeof iat !== 'number' || !Number.isFinite(iat))) {
    refuse('client_assertion claim iat must be a number');
  }
  if (typeof iat === 'number' && iat > nowS + MAX_IAT_SKEW_S) {
    refuse(`client_assertion iat is more than ${MAX_IAT_SKEW_S} s in the future`);
  }
  if (typeof jti !== 'string' || jti === '' || jti.length > MAX_JTI_LENGTH) {
    refuse(`client_assertion jti must be a string of 1 to ${MAX_JTI_LENGTH} characters`);
  }
  const audiences = typeof aud === 'string' ? [aud] : Array.isArray(aud) ? aud : [];
  if (!audiences.some((a) => typeof a === 'string' && tokenUrls.includes(a))) {
    refuse('client_assertion claim aud is not valid: it must be the token URL');
  }
}
