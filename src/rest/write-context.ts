import type { Resource } from '@medplum/fhirtypes';
import type { StoreTransaction, StoredVersion } from '../store/fhir-store.js';
import type { AuthContext } from '../auth/token-service.js';
import type { ResourceValidator } from '../validation/resource-validator.js';

/**
 * What a write interaction runs with: the store transaction, the validator, and the domain hooks
 * (the referral workflow) that take part in the same transaction. Hooks let `rest/` stay a plain
 * FHIR server while `referral/` adds its rules at named points of a write.
 */
export interface WriteHook {
  /**
   * Before a version is written. May refuse the write (throw a FhirError) or return the resource
   * to store instead (e.g. with a derived field set). Not called for deletes.
   */
  beforeWrite?(ctx: WriteContext, change: PendingWrite): Promise<Resource | undefined>;
  /** After a version is written, in the same transaction. */
  afterWrite?(ctx: WriteContext, written: StoredVersion, previous: StoredVersion | undefined): Promise<void>;
  /** Once every write of the request (or transaction Bundle) is done, before commit. */
  beforeCommit?(ctx: WriteContext): Promise<void>;
  /**
   * Search criteria that identify an existing copy of a resource being created, so a re-sent
   * resource is recognised (conditional create without the client asking for it).
   */
  identityCriteria?(resource: Resource): string | undefined;
}

export interface PendingWrite {
  resourceType: string;
  id: string;
  resource: Resource;
  previous: StoredVersion | undefined;
}

export interface RestServices {
  validator: ResourceValidator;
  hooks: WriteHook[];
  /** Clock, injectable for tests. */
  now(): string;
  /** After a write transaction commits (e.g. to wake the delivery worker). */
  onCommitted?(ctx: WriteContext): void;
}

export interface WriteContext {
  tx: StoreTransaction;
  services: RestServices;
  /** Who is writing (undefined when authentication is off). */
  auth?: AuthContext;
  /**
   * The same transaction without the client's access restrictions, for what the server does on
   * its own behalf inside the request (writes are still labelled). Equal to `tx` without auth.
   */
  system: StoreTransaction;
  /** Scratch space for hooks, scoped to one transaction. */
  state: Map<string, unknown>;
}

export function newWriteContext(
  tx: StoreTransaction,
  services: RestServices,
  auth?: AuthContext,
): WriteContext {
  const system = (tx as StoreTransaction & { system?: StoreTransaction }).system ?? tx;
  return { tx, system, services, auth, state: new Map() };
}

/** Runs every hook's beforeCommit; hooks may write more, so this is the last step of a transaction. */
export async function runBeforeCommit(ctx: WriteContext): Promise<void> {
  for (const hook of ctx.services.hooks) {
    await hook.beforeCommit?.(ctx);
  }
}

/** One write request in one store transaction, hooks included: the unit every write route runs. */
export async function runWrite<T>(
  store: { transaction<R>(work: (tx: StoreTransaction) => Promise<R>): Promise<R> },
  services: RestServices,
  work: (ctx: WriteContext) => Promise<T>,
  auth?: AuthContext,
): Promise<T> {
  let committed: WriteContext | undefined;
  const result = await store.transaction(async (tx) => {
    const ctx = newWriteContext(tx, services, auth);
    const value = await work(ctx);
    await runBeforeCommit(ctx);
    committed = ctx;
    return value;
  });
  if (committed) services.onCommitted?.(committed);
  return result;
}
