/**
 * SMART on FHIR scopes for backend services (https://hl7.org/fhir/smart-app-launch/scopes-and-launch-context.html):
 * v2 `system/ServiceRequest.cru`, `system/*.rs`, and the v1 forms `system/*.read` (= rs) and
 * `system/ServiceRequest.write` (= cud). Query-restricted v2 scopes (`?category=...`) are not
 * supported and are not granted.
 */
import type { Permission, Scope } from '../access/client-identity.js';

export type { Permission, Scope };

const V1: Record<string, Permission[]> = {
  read: ['r', 's'],
  write: ['c', 'u', 'd'],
  '*': ['c', 'r', 'u', 'd', 's'],
};

export function parseScope(text: string): Scope | undefined {
  const m = /^system\/([A-Za-z]+|\*)\.([a-z*]+)$/.exec(text);
  if (!m) return undefined;
  const [, resourceType, access] = m as unknown as [string, string, string];
  const v1 = V1[access];
  if (v1) return { resourceType, permissions: new Set(v1) };
  if (!/^c?r?u?d?s?$/.test(access) || access === '') return undefined;
  return { resourceType, permissions: new Set(access.split('') as Permission[]) };
}

export function parseScopes(text: string | undefined): Scope[] {
  return (text ?? '')
    .split(/\s+/)
    .filter(Boolean)
    .map(parseScope)
    .filter((s): s is Scope => s !== undefined);
}

export function allows(scopes: Scope[], resourceType: string, permission: Permission): boolean {
  return scopes.some(
    (s) => (s.resourceType === '*' || s.resourceType === resourceType) && s.permissions.has(permission),
  );
}

/**
 * The scopes granted for a request: each requested scope that one of the client's registered
 * scopes covers (same or wider type, superset of permissions). With no request, the registered ones.
 */
export function grantScopes(requested: string | undefined, registered: string): string[] {
  const allowed = parseScopes(registered);
  const asked = (requested ?? registered).split(/\s+/).filter(Boolean);
  return asked.filter((text) => {
    const scope = parseScope(text);
    return (
      scope !== undefined &&
      allowed.some(
        (a) =>
          (a.resourceType === '*' || a.resourceType === scope.resourceType) &&
          [...scope.permissions].every((p) => a.permissions.has(p)),
      )
    );
  });
}
