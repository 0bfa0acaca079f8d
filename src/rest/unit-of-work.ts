import type { Resource } from '@medplum/fhirtypes';
import { withLabels, type AccessLabelRule } from '../access/access-labels.js';
import type { AuthContext } from '../access/client-identity.js';
import { fhirError } from '../fhir/errors.js';
import type { StoreTransaction, StoredVersion } from '../store/fhir-store.js';
import type { TransactionViews, WriteTarget } from '../store/write-target.js';

export type { TransactionViews, WriteTarget };
import type { ResourceValidator } from '../validation/resource-validator.js';
import { toFhirError } from '../validation/resource-validator.js';
import { prepareResource } from './prepare-resource.js';
import { withAssignedIds } from './resource-identity.js';

/**
 * The one write path. Every write — a client's request, a Bundle entry, and the server's own
 * (episodes, Tasks, Communications, AuditEvents, Subscription status) — goes through
 * `UnitOfWork.write`: validate (client writes), the handlers modules registered for the type and
 * phase in their stated order, store (the store versions, labels and indexes it), and the
 * handlers that react. Work a handler defers runs before commit (or after it), in order.
 * Modelled on HAPI FHIR's named, ordered pointcuts and deferred TransactionDetails.
 */
export type WritePhase = 'validate' | 'before-store' | 'after-store';
export type CommitPhase = 'before-commit' | 'after-commit';
export type Origin = 'client' | 'server';
export type WriteAction = 'create' | 'update' | 'delete';

export interface Change {
  action: WriteAction;
  resourceType: string;
  id: string;
  origin: Origin;
  /** What is about to be stored (absent for a delete); the stored content after `after-store`. */
  resource?: Resource;
  /** The current version before this write (a deleted one counts as absent for `action`). */
  previous?: StoredVersion;
  /** Set for `after-store`: the version written. */
  written?: StoredVersion;
}

export interface WriteHandler {
  /** `module.rule`, e.g. `referral.intake`; also the re-entrancy key. */
  name: string;
  phase: WritePhase;
  /** Lower runs first within a phase. */
  order: number;
  types: readonly string[];
  /** Default: every action. */
  actions?: readonly WriteAction[];
  /** Default: client and server writes. */
  origins?: readonly Origin[];
  /** `before-store` handlers may answer the resource to store instead. */
  run(uow: UnitOfWork, change: Change): Promise<Resource | void> | Resource | void;
}

/** Recognises a re-sent resource (a conditional create the client did not ask for). */
export interface IdentityRule {
  types: readonly string[];
  criteria(resource: Resource): string | undefined;
}

/** What modules contribute to the write path. */
export interface WriteModule {
  handlers?: readonly WriteHandler[];
  identity?: readonly IdentityRule[];
  /** Who may see the versions of a type (access/access-labels.ts). */
  labels?: readonly AccessLabelRule[];
  /** `Type/id`s every client may reference without seeing them (the practice it refers to). */
  publicReferences?: readonly string[];
}

/** The handlers of every module, indexed by phase and type once at start-up. */
export class WriteHandlers {
  private readonly byPhaseAndType = new Map<string, WriteHandler[]>();
  private readonly identity: IdentityRule[];
  private readonly labelRules: AccessLabelRule[];
  private readonly publicReferences: Set<string>;

  constructor(modules: readonly WriteModule[]) {
    const all = modules.flatMap((m) => m.handlers ?? []);
    const names = new Set<string>();
    for (const handler of all) {
      if (names.has(handler.name)) throw new Error(`Two write handlers are named ${handler.name}`);
      names.add(handler.name);
      for (const type of handler.types) {
        const key = `${handler.phase} ${type}`;
        const list = this.byPhaseAndType.get(key) ?? [];
        list.push(handler);
        this.byPhaseAndType.set(key, list);
      }
    }
    for (const [key, list] of this.byPhaseAndType) {
      // Handlers for every type (`*`) join each type's list, so one order decides within a phase.
      const [phase, type] = key.split(' ');
      if (type !== '*') list.push(...(this.byPhaseAndType.get(`${phase} *`) ?? []));
      list.sort((a, b) => a.order - b.order);
    }
    this.identity = modules.flatMap((m) => m.identity ?? []);
    this.publicReferences = new Set(modules.flatMap((m) => m.publicReferences ?? []));
    this.labelRules = modules.flatMap((m) => m.labels ?? []);
  }

  /** The access labels of a version: every declared rule for its type, sorted, once each. */
  async labelsFor(resource: Resource, context: Parameters<AccessLabelRule['labels']>[1]): Promise<string[]> {
    const labels = new Set<string>();
    for (const rule of this.labelRules) {
      if (!rule.types.includes('*') && !rule.types.includes(resource.resourceType)) continue;
      for (const label of await rule.labels(resource, context)) labels.add(label);
    }
    return [...labels].sort();
  }

  isPublicReference(reference: string): boolean {
    return this.publicReferences.has(reference);
  }

  for(phase: WritePhase, change: Change): WriteHandler[] {
    const list =
      this.byPhaseAndType.get(`${phase} ${change.resourceType}`) ?? this.byPhaseAndType.get(`${phase} *`);
    return (list ?? []).filter(
      (h) =>
        (!h.actions || h.actions.includes(change.action)) &&
        (!h.origins || h.origins.includes(change.origin)),
    );
  }

  identityCriteria(resource: Resource): string | undefined {
    for (const rule of this.identity) {
      if (!rule.types.includes(resource.resourceType)) continue;
      const criteria = rule.criteria(resource);
      if (criteria) return criteria;
    }
    return undefined;
  }
}

export interface RestServices {
  validator: ResourceValidator;
  handlers: WriteHandlers;
  /** Clock, injectable for tests. */
  now(): string;
}

export interface WriteInput {
  resourceType: string;
  id: string;
  /** The resource to store; absent to delete. */
  resource?: Resource;
  origin: Origin;
  /** Validated already (a transaction Bundle as a whole), or built by one of the service's own pure mappers. */
  validated?: boolean;
  /** Where issues about this resource point (a Bundle entry's `Bundle.entry[2].resource`). */
  expression?: string;
}

interface Deferred {
  order: number;
  seq: number;
  key?: string;
  run(): Promise<void> | void;
}

export class UnitOfWork {
  /** Every version this unit wrote, in order. */
  readonly changes: Change[] = [];
  /** Ids the server assigned during this unit (rest/resource-identity.ts `newId`). */
  readonly assignedIds = new Set<string>();
  private readonly running = new Set<string>();
  private readonly deferred: Record<CommitPhase, Deferred[]> = { 'before-commit': [], 'after-commit': [] };
  private readonly deferredKeys = new Set<string>();
  private seq = 0;

  constructor(
    readonly services: RestServices,
    private readonly views: TransactionViews,
    /** Who is writing (undefined when authentication is off, or for the server's own work). */
    readonly auth?: AuthContext,
  ) {}

  /** The client's view: its access rules apply. */
  get tx(): StoreTransaction {
    return this.views.client;
  }

  /** The server's own view inside the client's request: every resource, writes still labelled. */
  get system(): StoreTransaction {
    return this.views.server;
  }

  now(): string {
    return this.services.now();
  }

  /**
   * Writes one version through the handlers: validate (client writes, unless validated as part
   * of a Bundle), `validate` and `before-store` handlers, the store, `after-store` handlers.
   * A handler does not run again for writes it causes itself (the re-entrancy guard).
   */
  async write(input: WriteInput): Promise<StoredVersion> {
    const view = input.origin === 'client' ? this.views.client : this.views.server;
    const previous = await this.views.server.read(input.resourceType, input.id);
    if (
      input.origin === 'client' &&
      this.views.restricted &&
      !this.assignedIds.has(input.id) &&
      !(await this.views.client.read(input.resourceType, input.id))
    ) {
      // A restricted client changes only what it can see; what it cannot see does not exist for
      // it, and the answer is the same whether the id exists for someone else or for nobody. Nor
      // does it create under an id of its choosing (update-as-create, which R4 leaves to the
      // server: https://hl7.org/fhir/R4/http.html#upsert): only the ids the server assigns.
      throw fhirError('resource-not-found', `${input.resourceType}/${input.id} does not exist`);
    }
    const live = previous && !previous.deleted ? previous : undefined;
    let resource = input.resource;
    if (resource && !input.validated) this.validate(resource, input.expression);
    const change: Change = {
      action: resource ? (live ? 'update' : 'create') : 'delete',
      resourceType: input.resourceType,
      id: input.id,
      origin: input.origin,
      resource,
      previous: live,
    };
    for (const phase of ['validate', 'before-store'] as const) {
      for (const handler of this.services.handlers.for(phase, change)) {
        const replaced = await this.guarded(handler, change);
        if (replaced && phase === 'before-store') {
          resource = prepareResource(replaced, input.resourceType, input.id, input.expression).resource;
          change.resource = resource;
        }
      }
    }
    if (resource) {
      const labelView = input.origin === 'client' ? this.views.client : this.views.server;
      const labels = await this.services.handlers.labelsFor(resource, {
        previous: previous?.resource,
        actsFor: input.origin === 'client' && this.auth?.role === 'referrer' ? this.auth.actsFor : undefined,
        read: async (type, id) => (await labelView.read(type, id))?.resource,
      });
      resource = withLabels(resource, labels);
    }
    const written = await view.write(
      resource
        ? { resourceType: input.resourceType, id: input.id, resource }
        : { resourceType: input.resourceType, id: input.id, deleted: true },
    );
    change.written = written;
    change.resource = written.resource;
    this.changes.push(change);
    for (const handler of this.services.handlers.for('after-store', change)) {
      await this.guarded(handler, change);
    }
    return written;
  }

  /** Base R4 and claimed profiles; issues name `expression` (a Bundle entry) when given. */
  validate(resource: Resource, expression?: string): void {
    const result = this.services.validator.validate(resource);
    if (result.failure) {
      throw toFhirError(withPrefix(result, expression, resource.resourceType), result.failure);
    }
  }

  /**
   * Runs `work` when every write of the unit is done (`before-commit`, lower order first, inside
   * the transaction; it may write more) or once the transaction has committed (`after-commit`).
   * A `key` defers the same work once however often it is asked for.
   */
  defer(
    phase: CommitPhase,
    run: () => Promise<void> | void,
    options: { order?: number; key?: string } = {},
  ): void {
    if (options.key !== undefined) {
      if (this.deferredKeys.has(`${phase} ${options.key}`)) return;
      this.deferredKeys.add(`${phase} ${options.key}`);
    }
    this.deferred[phase].push({ order: options.order ?? 50, seq: this.seq++, key: options.key, run });
  }

  /** Drains the before-commit work; work it defers joins the queue in its order. */
  async beforeCommit(): Promise<void> {
    const queue = this.deferred['before-commit'];
    while (queue.length > 0) {
      queue.sort((a, b) => a.order - b.order || a.seq - b.seq);
      const next = queue.shift() as Deferred;
      await next.run();
    }
  }

  async afterCommit(): Promise<void> {
    for (const item of this.deferred['after-commit'].splice(0)) await item.run();
  }

  private async guarded(handler: WriteHandler, change: Change): Promise<Resource | void> {
    if (this.running.has(handler.name)) return undefined;
    this.running.add(handler.name);
    try {
      return await handler.run(this, change);
    } finally {
      this.running.delete(handler.name);
    }
  }
}

/**
 * One unit of work in one store transaction: `work`, its deferred before-commit work, commit, then
 * the after-commit work. The store may run the transaction more than once (PostgreSQL retries
 * serialisation failures), so each try starts a fresh unit.
 */
export async function runUnitOfWork<T>(
  target: WriteTarget,
  services: RestServices,
  work: (uow: UnitOfWork) => Promise<T>,
  auth?: AuthContext,
): Promise<T> {
  let committed: UnitOfWork | undefined;
  const result = await target.transactionViews(async (views) => {
    const uow = new UnitOfWork(services, views, auth);
    const value = await withAssignedIds(uow.assignedIds, async () => {
      const result = await work(uow);
      await uow.beforeCommit();
      return result;
    });
    committed = uow;
    return value;
  });
  await committed?.afterCommit();
  return result;
}

/** Runs the server's own writes (audit records, Subscription status) as units of work of their own. */
export type ServerWriter = <T>(work: (uow: UnitOfWork) => Promise<T>) => Promise<T>;

export function serverWriter(target: WriteTarget, services: RestServices): ServerWriter {
  return (work) => runUnitOfWork(target, services, work);
}

/** Issues about a Bundle entry's resource name it from the Bundle: `Bundle.entry[2].resource.name`. */
function withPrefix<T extends { issues: { expression?: string[] }[] }>(
  result: T,
  prefix: string | undefined,
  resourceType: string,
): T {
  if (!prefix) return result;
  return {
    ...result,
    issues: result.issues.map((issue) => ({
      ...issue,
      expression: issue.expression?.map((e) =>
        e.startsWith(resourceType) ? `${prefix}${e.slice(resourceType.length)}` : e,
      ),
    })),
  };
}
