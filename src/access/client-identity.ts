/**
 * Who a request comes from, as the write path and the access views need to know it: the client,
 * its role and SMART scopes (https://hl7.org/fhir/smart-app-launch/scopes-and-launch-context.html),
 * and whom it acts for. Types only, below every folder that uses them, so the FHIR interactions
 * (rest/) and the token handling (auth/) both depend on it and not on each other.
 */
export type Role = 'referrer' | 'practice' | 'admin';

export type Permission = 'c' | 'r' | 'u' | 'd' | 's';

export interface Scope {
  resourceType: string; // '*' for all
  permissions: Set<Permission>;
}

export interface AuthContext {
  clientId: string;
  role: Role;
  scopes: Scope[];
  /** The referrer references (Practitioner/…, Organization/…) this client acts for. */
  actsFor: string[];
}
