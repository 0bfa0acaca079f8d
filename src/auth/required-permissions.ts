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

export function permissionsFor(method: string, path: string): Need[] | 'public' | 'bundle' {
  const parts = path.split('/').filter(Boolean).map(decodeURIComponent);
  const [first, second, third] = parts;
  if (parts.length === 0) return method === 'POST' ? 'bundle' : [];
  if (first === 'metadata' && method === 'GET') return 'public';
  if (first === '_history') return [{ resourceType: '*', permission: 'r' }];
  if (first === '$process-message') return [{ resourceType: 'ServiceRequest', permission: 'c' }];
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
    const [pathPart = '', query] = url.replace(/^.*\/fhir\//, '').split('?');
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
