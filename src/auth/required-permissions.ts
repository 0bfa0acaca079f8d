import type { Bundle } from '@medplum/fhirtypes';
import { classify, splitEntryUrl, type Interaction } from '../rest/interaction.js';
import type { Permission } from './scopes.js';

/**
 * The SMART permission each FHIR interaction needs (https://hl7.org/fhir/smart-app-launch/scopes-and-launch-context.html#scopes-for-requesting-fhir-resources):
 * create c, read/vread/history r, update u, delete d, search s. Operations take the permission
 * their registry entry declares. A batch or transaction Bundle needs what each of its entries
 * would need as a request of its own: each entry is classified by the same `classify`.
 */
export interface Need {
  resourceType: string;
  permission: Permission;
}

/** The one unauthenticated interaction: `GET [base]/metadata` (https://hl7.org/fhir/R4/http.html#capabilities). */
export function isPublic(interaction: Interaction | undefined): boolean {
  return interaction?.kind === 'capabilities' && interaction.method === 'GET';
}

/**
 * The operations (src/operations/registry.ts): each declares what an invocation needs. Handed in,
 * so that src/auth needs nothing from the modules the operations are made of.
 */
export interface OperationPermissions {
  resolve(interaction: Interaction): { permissions(interaction: Interaction, body: unknown): Need[] };
}

export interface PermissionContext {
  operations: OperationPermissions;
  /** The base URL entry URLs may be absolute under. */
  baseUrl: string;
}

/**
 * What `interaction` (with its body) needs. Throws what the request will be answered anyway for an
 * operation that does not exist where it was invoked (404) or is invoked with the wrong method (405).
 */
export function requiredPermissions(
  interaction: Interaction,
  body: unknown,
  context: PermissionContext,
  depth = 0,
): Need[] {
  const type = interaction.type as string;
  switch (interaction.kind) {
    case 'capabilities':
      return [];
    case 'read':
    case 'vread':
    case 'history-instance':
    case 'history-type':
      return [{ resourceType: type, permission: 'r' }];
    case 'history-system':
      return [{ resourceType: '*', permission: 'r' }];
    case 'search-type':
      return [{ resourceType: type, permission: 's' }];
    case 'create':
      return [{ resourceType: type, permission: 'c' }];
    case 'update':
    case 'conditional-update':
      return [{ resourceType: type, permission: 'u' }];
    case 'delete':
    case 'conditional-delete':
      return [{ resourceType: type, permission: 'd' }];
    case 'batch':
      return bundleNeeds(body, context, depth);
    case 'operation':
      return context.operations.resolve(interaction).permissions(interaction, body);
  }
}

/**
 * What a batch or transaction Bundle needs: each entry's permission, decided exactly as for the
 * same request sent on its own (the same `classify`, the same rules above).
 */
function bundleNeeds(bundle: unknown, context: PermissionContext, depth: number): Need[] {
  const entries = (bundle as Bundle | undefined)?.entry;
  const needs: Need[] = [];
  // A Bundle inside a Bundle entry is refused by the Bundle; its needs are not looked for forever.
  if (!Array.isArray(entries) || depth > 1) return needs;
  for (const entry of entries) {
    const request = (entry as { request?: { method?: unknown; url?: unknown } } | undefined)?.request;
    if (typeof request?.method !== 'string' || typeof request.url !== 'string') continue;
    const { path, query } = splitEntryUrl(request.url, context.baseUrl);
    try {
      needs.push(
        ...requiredPermissions(classify(request.method, path, query), entry?.resource, context, depth + 1),
      );
    } catch {
      needs.push(...unclassifiedEntryNeeds(request.method, path));
    }
  }
  return needs;
}

/**
 * An entry URL that names no interaction would be answered 404/405 on its own. The Bundle
 * processor (rest/bundle-interaction.ts) still parses entry URLs itself, and more loosely (it
 * takes `PUT Patient/1/_history` as an update of Patient/1), so such an entry needs what its
 * method would need on the type it starts with: a malformed URL never skips the scope check.
 */
function unclassifiedEntryNeeds(method: string, path: string): Need[] {
  const parts = path.split('/').filter((p) => p !== '');
  let type = parts[0] ?? '';
  try {
    type = decodeURIComponent(type);
  } catch {
    // Left as sent: the Bundle refuses a type it does not know.
  }
  if (!/^[A-Z][A-Za-z]+$/.test(type)) return [];
  const m = method.toUpperCase();
  const permission: Permission =
    m === 'POST'
      ? 'c'
      : m === 'PUT' || m === 'PATCH'
        ? 'u'
        : m === 'DELETE'
          ? 'd'
          : parts.length > 1
            ? 'r'
            : 's';
  return [{ resourceType: type, permission }];
}
