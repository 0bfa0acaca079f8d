import type { Bundle } from '@medplum/fhirtypes';
import type { Permission } from './scopes.js';

/**
 * The SMART permission each FHIR interaction needs (https://hl7.org/fhir/smart-app-launch/scopes-and-launch-context.html#scopes-for-requesting-fhir-resources):
 * create c, read/vread/history r, update u, delete d, search s. Operations take the permission of
 * what they do. A Bundle needs the permissions of each of its entries.
 */
export interface Need {
  resourceType: string;
  permission: Permission;
}

export function permissionsFor(method: string, path: string): Need[] | 'public' | 'bundle' | 'message' {
  // A malformed %-escape is left as it is (the router answers 400), never thrown here (500).
  const parts = path
    .split('/')
    .filter(Boolean)
    .map((p) => {
      try {
        return decodeURIComponent(p);
      } catch {
        return p;
      }
    });
  const [first, second, third] = parts;
  if (parts.length === 0) return method === 'POST' ? 'bundle' : [];
  // Only `GET /metadata` itself, as the router matches it (not /metadata/..., not %-encoded).
  if (/^\/metadata\/?$/.test(path) && method === 'GET') return 'public';
  if (first === '_history') return [{ resourceType: '*', permission: 'r' }];
  // A message stores each of its resources: it needs create on each type (see messageNeeds).
  if (first === '$process-message') return 'message';
  const type = first as string;
  if (parts.length === 1) {
    return [
      {
        resourceType: type,
        permission:
          ({ GET: 's', HEAD: 's', POST: 'c', PUT: 'u', DELETE: 'd' } as const)[method as 'GET'] ?? 'r',
      },
    ];
  }
  if (second === '_search' || second === '_history') {
    return [{ resourceType: type, permission: second === '_search' ? 's' : 'r' }];
  }
  if (second === '$validate' || third === '$validate') return [{ resourceType: type, permission: 'r' }];
  if (third === '$progress-report') return [{ resourceType: 'Communication', permission: 'c' }];
  if (parts.length === 2) {
    return [
      {
        resourceType: type,
        permission: ({ GET: 'r', HEAD: 'r', PUT: 'u', DELETE: 'd' } as const)[method as 'GET'] ?? 'c',
      },
    ];
  }
  return [{ resourceType: type, permission: 'r' }];
}

/** What a batch or transaction Bundle needs: each entry's permission. */
export function bundleNeeds(bundle: unknown): Need[] {
  const entries = (bundle as Bundle | undefined)?.entry ?? [];
  const needs: Need[] = [];
  for (const entry of Array.isArray(entries) ? entries : []) {
    const method = entry?.request?.method;
    const url = typeof entry?.request?.url === 'string' ? entry.request.url : '';
    // The query is split off first: a '/fhir/' inside it must not pick the type (Bundle entry
    // 'ServiceRequest?x=/fhir/Patient' is a ServiceRequest search).
    const [rawPath = '', query] = url.split('?');
    const pathPart = rawPath.replace(/^.*\/fhir\//, '');
    const parts = pathPart.split('/').filter(Boolean);
    const type = parts[0] ?? '';
    const permission: Permission =
      method === 'POST'
        ? 'c'
        : method === 'PUT'
          ? parts[1] || query
            ? 'u'
            : 'c'
          : method === 'DELETE'
            ? 'd'
            : parts[1]
              ? 'r'
              : 's';
    needs.push({ resourceType: type, permission });
  }
  return needs;
}

/**
 * What `$process-message` needs: it stores every resource of the message after the MessageHeader
 * (the sender's Task excepted, see rest/process-message.ts) as a create, and the referral itself.
 */
export function messageNeeds(bundle: unknown): Need[] {
  const entries = (bundle as Bundle | undefined)?.entry ?? [];
  const types = new Set(['ServiceRequest']);
  for (const entry of Array.isArray(entries) ? entries.slice(1) : []) {
    const type = (entry?.resource as { resourceType?: unknown } | undefined)?.resourceType;
    if (typeof type === 'string' && type !== 'Task') types.add(type);
  }
  return [...types].map((resourceType) => ({ resourceType, permission: 'c' as const }));
}
