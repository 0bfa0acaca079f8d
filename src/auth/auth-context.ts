import type { Role } from './clients.js';
import type { Scope } from './scopes.js';

/** Who a request comes from, as its verified access token says. */
export interface AuthContext {
  clientId: string;
  role: Role;
  scopes: Scope[];
  /** The referrer references (Practitioner/…, Organization/…) this client acts for. */
  actsFor: string[];
}
