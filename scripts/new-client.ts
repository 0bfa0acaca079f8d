/**
 * Registers a new client: makes an ES384 key pair, writes the private key for the client to keep,
 * and prints the entry to add to the CLIENTS_FILE array.
 *
 *   npm run client:new -- --id acme-ehr --role referrer --acts-for Organization/acme,Practitioner/dr-jones \
 *     [--scope "system/*.crus"] [--out ./keys]
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { generateClientKeys, registration } from '../src/auth/client-keys.js';
import type { Role } from '../src/auth/clients.js';
import { parseClients } from '../src/auth/clients.js';

function arg(name: string, fallback?: string): string | undefined {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? process.argv[i + 1] : fallback;
}

async function main(): Promise<void> {
  const id = arg('id');
  const role = arg('role', 'referrer') as Role;
  const scope = arg(
    'scope',
    role === 'referrer'
      ? 'system/ServiceRequest.cru system/Communication.rs system/Task.rs system/Subscription.cruds'
      : 'system/*.cruds',
  );
  const actsFor = (arg('acts-for', '') ?? '').split(',').filter(Boolean);
  if (!id) {
    console.error(
      'usage: npm run client:new -- --id <client-id> [--role referrer|practice|admin] [--acts-for Organization/x,...] [--scope "..."] [--out dir]',
    );
    process.exit(2);
  }
  const keys = await generateClientKeys();
  const entry = registration(id, keys, role, scope as string, actsFor);
  parseClients([entry], 'the new entry'); // the same checks the service applies
  const out = arg('out', '.') as string;
  mkdirSync(out, { recursive: true });
  const keyFile = join(out, `${id}.private.jwk.json`);
  writeFileSync(keyFile, JSON.stringify(keys.privateJwk, null, 2), { mode: 0o600 });
  console.log(`Private key (keep it with the client, never register it): ${keyFile}`);
  console.log('Add this entry to the CLIENTS_FILE array:');
  console.log(JSON.stringify(entry, null, 2));
}

void main();
