/**
 * Gets an access token with a client's private key, as a backend service would:
 *
 *   npm run token -- --client local-dev --key data/dev-client/local-dev.private.jwk.json [--url http://localhost:8080] [--scope "system/*.rs"]
 *
 * Prints the access token; use it as `Authorization: Bearer <token>`.
 */
import { readFileSync } from 'node:fs';
import type { JWK } from 'jose';
import { signClientAssertion, tokenRequestBody } from '../src/auth/client-keys.js';

function arg(name: string, fallback?: string): string | undefined {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? process.argv[i + 1] : fallback;
}

async function main(): Promise<void> {
  const client = arg('client');
  const keyFile = arg('key');
  if (!client || !keyFile) {
    console.error(
      'usage: npm run token -- --client <id> --key <private.jwk.json> [--url http://localhost:8080] [--scope "..."]',
    );
    process.exit(2);
  }
  const tokenUrl = `${(arg('url', 'http://localhost:8080') as string).replace(/\/$/, '')}/auth/token`;
  const assertion = await signClientAssertion(
    client,
    JSON.parse(readFileSync(keyFile, 'utf8')) as JWK,
    tokenUrl,
  );
  const res = await fetch(tokenUrl, { method: 'POST', body: tokenRequestBody(assertion, arg('scope')) });
  const body = (await res.json()) as { access_token?: string; error?: string; error_description?: string };
  if (!res.ok || !body.access_token) {
    console.error(
      `token request failed (${res.status}): ${body.error ?? ''} ${body.error_description ?? ''}`,
    );
    process.exit(1);
  }
  console.log(body.access_token);
}

void main();
