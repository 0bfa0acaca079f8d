/** An RFC 6749 §5.2 error answer (429 with Retry-After past a limit, RFC 6585 §4). */
export class OAuthError extends Error {
  constructor(
    readonly status: 400 | 401 | 429,
    readonly error:
      | 'invalid_request'
      | 'invalid_client'
      | 'invalid_grant'
      | 'unauthorized_client'
      | 'unsupported_grant_type'
      | 'invalid_scope',
    readonly description: string,
    readonly retryAfterSeconds?: number,
  ) {
    super(description);
  }
}
