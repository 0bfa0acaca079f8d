import type { StoreTransaction } from './fhir-store.js';

/**
 * The two views of one store transaction that a unit of work writes through: the client's (its
 * access rules apply) and the server's own (every resource, writes still labelled). Typed handles,
 * so no code recovers one view from the other.
 */
export interface TransactionViews {
  client: StoreTransaction;
  server: StoreTransaction;
  /** True when the client's view hides some resources (a referrer's). */
  restricted: boolean;
}

/** Something that runs a transaction and hands out both views (auth/scoped-store.ts). */
export interface WriteTarget {
  transactionViews<T>(work: (views: TransactionViews) => Promise<T>): Promise<T>;
}
