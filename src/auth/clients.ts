import { readFileSync } from 'node:fs';
import type { JSONWebKeySet } from 'jose';
import type { Role } from '../access/client-identity.js';

/**
 * Registered clients (CLIENTS_FILE): who may ask for tokens, with which keys, scopes and role.
 * `acts_for` names the Organization/Practitioner/PractitionerRole references a referrer client
 * speaks for; it decides what that client can see and create.
 */
export type { Role } from '../access/client-identity.js';

export interface ClientRegistration {
  client_id: string;
  jwks?: JSONWebKeySet;
  jwks_uri?: string;
  scope: string;
  role: Role;
  acts_for?: string[];
}

export class ClientRegistryError extends Error {}

const REFERENCE = /^(Organization|Practitioner|PractitionerRole)\/[A-Za-z0-9\-.]{1,64}$/;

export function parseClients(json: unknown, source = 'CLIENTS_FILE'): Map<string, ClientRegistration> {
  if (!Array.isArray(json)) throw new ClientRegistryError(`${source} must hold a JSON array of clients`);
  const clients = new Map<string, ClientRegistration>();
  json.forEach((entry: Partial<ClientRegistration>, i) => {
    const where = `${source}[${i}]`;
    if (typeof entry?.client_id !== 'string' || !/^[A-Za-z0-9._~-]{1,128}$/.test(entry.client_id)) {
      throw new ClientRegistryError(`${where}.client_id is missing or not a simple token`);
    }
    if (clients.has(entry.client_id))
      throw new ClientRegistryError(`${where}: client_id ${entry.client_id} is registered twice`);
    if (!entry.jwks === !entry.jwks_uri)
      throw new ClientRegistryError(`${where} needs exactly one of jwks and jwks_uri`);
    if (entry.jwks && !Array.isArray(entry.jwks.keys))
      throw new ClientRegistryError(`${where}.jwks must be a JWK Set ({"keys": [...]})`);
    if (entry.jwks?.keys.some((k) => 'd' in k))
      throw new ClientRegistryError(`${where}.jwks holds a private key: register only public keys`);
    if (entry.jwks_uri && !/^https?:\/\//.test(entry.jwks_uri))
      throw new ClientRegistryError(`${where}.jwks_uri must be an http(s) URL`);
    if (typeof entry.scope !== 'string' || entry.scope.trim() === '')
      throw new ClientRegistryError(`${where}.scope is required`);
    if (!['referrer', 'practice', 'admin'].includes(entry.role as string))
      throw new ClientRegistryError(`${where}.role must be referrer, practice or admin`);
    const actsFor = entry.acts_for ?? [];
    if (!Array.isArray(actsFor) || actsFor.some((r) => typeof r !== 'string' || !REFERENCE.test(r))) {
      throw new ClientRegistryError(
        `${where}.acts_for must list Organization/Practitioner/PractitionerRole references`,
      );
    }
    if (entry.role === 'referrer' && actsFor.length === 0)
      throw new ClientRegistryError(`${where}: a referrer client must act for someone`);
    clients.set(entry.client_id, { ...entry, acts_for: actsFor } as ClientRegistration);
  });
  return clients;
}

export function loadClients(path: string): Map<string, ClientRegistration> {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch {
    throw new ClientRegistryError(`CLIENTS_FILE ${path} cannot be read`);
  }
  try {
    return parseClients(JSON.parse(text), path);
  } catch (err) {
    if (err instanceof ClientRegistryError) throw err;
    throw new ClientRegistryError(`CLIENTS_FILE ${path} is not valid JSON`);
  }
}
