import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { ClientRegistration } from './clients.js';
import { generateClientKeys, registration } from './client-keys.js';

/**
 * Secure by default, and still easy to start: with no CLIENTS_FILE, the service creates one local
 * development client (an admin, full scopes) whose private key stays in the data folder, and
 * prints how to get a token with it. Nothing is open without a token.
 */
export const DEV_CLIENT_ID = 'local-dev';

export async function ensureDevClient(
  dir: string,
): Promise<{ clients: Map<string, ClientRegistration>; privateKeyFile: string; created: boolean }> {
  const registryFile = join(dir, 'clients.json');
  const privateKeyFile = join(dir, `${DEV_CLIENT_ID}.private.jwk.json`);
  let created = false;
  if (!existsSync(registryFile) || !existsSync(privateKeyFile)) {
    mkdirSync(dir, { recursive: true });
    const keys = await generateClientKeys();
    writeFileSync(privateKeyFile, JSON.stringify(keys.privateJwk, null, 2), { mode: 0o600 });
    writeFileSync(
      registryFile,
      JSON.stringify([registration(DEV_CLIENT_ID, keys, 'admin', 'system/*.cruds')], null, 2),
    );
    created = true;
  }
  const list = JSON.parse(readFileSync(registryFile, 'utf8')) as ClientRegistration[];
  return { clients: new Map(list.map((c) => [c.client_id, c])), privateKeyFile, created };
}
