import type { Resource } from '@medplum/fhirtypes';
import type { AuthContext } from '../access/client-identity.js';
import { fhirError } from '../fhir/errors.js';
import type { FhirStore, StoreReader } from '../store/fhir-store.js';
import {
  buildCapabilityStatement,
  type AdvertisedOperation,
  type ServerInfo,
} from './capability-statement.js';
import { processBundle } from './bundle-interaction.js';
import type { Interaction } from './interaction.js';
import { readHistory, readResource, vreadResource } from './read-interactions.js';
import type { RestResult } from './rest-result.js';
import { searchResources } from './search-interaction.js';
import type { RestServices, WriteContext, WriteTarget } from './write-context.js';
import {
  conditionalDelete,
  conditionalUpdate,
  createResource,
  deleteResource,
  updateResource,
} from './write-interactions.js';

/**
 * Runs one classified interaction (src/rest/interaction.ts) against a request scope and answers
 * what it produced, independent of HTTP: the routes (src/http/fhir-routes.ts) frame the result, and
 * a Bundle entry can be run through here too, with a scope whose `reader` and `write` are the
 * Bundle's transaction, so an entry does exactly what the same request on its own would do.
 */
export interface RequestScope {
  /**
   * Where reads go: the client's view of the store for a request of its own, the transaction's
   * client view for an entry of a transaction Bundle.
   */
  reader: StoreReader;
  /** The client's view of the whole store, for what runs as a request of its own (a Bundle, a message, the event log). */
  store: FhirStore & WriteTarget;
  services: RestServices;
  auth?: AuthContext;
  /** The public base URL of the FHIR endpoint, without a trailing slash. */
  baseUrl: string;
  /** Runs write work in one unit of work: the request's own, or the Bundle's. */
  write<T>(work: (ctx: WriteContext) => Promise<T>): Promise<T>;
}

/**
 * The operations (src/operations/registry.ts is the one there is): handed in, so that src/rest
 * needs nothing from the modules the operations are made of.
 */
export interface OperationResolver<S extends RequestScope> {
  readonly entries: readonly AdvertisedOperation[];
  resolve(interaction: Interaction): {
    handler(interaction: Interaction, body: unknown, scope: S): Promise<RestResult>;
  };
}

export interface DispatchInput {
  /** The JSON body (a resource, a Bundle, Parameters), when there is one. */
  body?: unknown;
  /** Search parameters from an `application/x-www-form-urlencoded` body (`POST [type]/_search`). */
  form?: [string, string][];
  /** If-None-Exist (conditional create) / Bundle `request.ifNoneExist`. */
  ifNoneExist?: string;
  /** If-Match (version-aware update) / Bundle `request.ifMatch`. */
  ifMatch?: string;
  /** `Prefer: handling=strict`: unknown search parameters are errors. */
  strict?: boolean;
  /** `Prefer: return=minimal`: a Bundle's response entries without resources. */
  returnMinimal?: boolean;
}

/** The CapabilityStatement's facts that are not the base URL (only `capabilities` needs them). */
export type ServerFacts = Omit<ServerInfo, 'baseUrl' | 'operations'>;

export interface DispatchOptions<S extends RequestScope> {
  /** Without it, an operation answers 404 (as one the server does not have). */
  operations?: OperationResolver<S>;
  /** Without it, `metadata` answers 404 (a Bundle entry cannot ask for it). */
  server?: ServerFacts;
}

export async function dispatch<S extends RequestScope>(
  interaction: Interaction,
  input: DispatchInput,
  scope: S,
  options: DispatchOptions<S> = {},
): Promise<RestResult> {
  const { baseUrl } = scope;
  const type = interaction.type as string;
  const id = interaction.id as string;
  const ok = (resource: Resource): RestResult => ({ status: 200, resource });
  switch (interaction.kind) {
    case 'capabilities':
      if (!options.server) throw fhirError('unknown-route', 'No CapabilityStatement here');
      return ok(
        buildCapabilityStatement({
          ...options.server,
          baseUrl,
          operations: options.operations?.entries ?? [],
        }),
      );
    case 'read':
      return readResource(scope.reader, type, id);
    case 'vread':
      return vreadResource(scope.reader, type, id, interaction.vid as string);
    case 'search-type':
      return ok(
        await searchResources(scope.reader, {
          resourceType: type,
          params: [...interaction.query, ...(input.form ?? [])],
          baseUrl,
          selfUrl: `${baseUrl}/${type}`,
          strict: input.strict ?? false,
          scopes: scope.auth?.scopes,
        }),
      );
    case 'history-system':
    case 'history-type':
    case 'history-instance': {
      const path =
        interaction.kind === 'history-system'
          ? '_history'
          : interaction.kind === 'history-type'
            ? `${type}/_history`
            : `${type}/${id}/_history`;
      // readHistory only reads (read, history): the reader is all it uses of the store.
      return ok(
        await readHistory(scope.reader as FhirStore, {
          ...(interaction.kind === 'history-system' ? {} : { resourceType: type }),
          ...(interaction.kind === 'history-instance' ? { id } : {}),
          params: interaction.query,
          baseUrl,
          selfUrl: `${baseUrl}/${path}`,
        }),
      );
    }
    case 'create': {
      const resource = need(input.body);
      return scope.write((ctx) => createResource(ctx, type, resource, { ifNoneExist: input.ifNoneExist }));
    }
    case 'update': {
      const resource = need(input.body);
      return scope.write((ctx) => updateResource(ctx, type, id, resource, { ifMatch: input.ifMatch }));
    }
    case 'conditional-update': {
      const resource = need(input.body);
      const criteria = new URLSearchParams(interaction.query).toString();
      return scope.write((ctx) =>
        conditionalUpdate(ctx, type, criteria, resource, { ifMatch: input.ifMatch }),
      );
    }
    case 'delete':
      return scope.write((ctx) => deleteResource(ctx, type, id));
    case 'conditional-delete': {
      const criteria = new URLSearchParams(interaction.query).toString();
      return scope.write((ctx) => conditionalDelete(ctx, type, criteria));
    }
    case 'batch':
      return ok(
        await processBundle(scope.store, scope.services, need(input.body), {
          baseUrl,
          returnMinimal: input.returnMinimal ?? false,
          auth: scope.auth,
        }),
      );
    case 'operation': {
      if (!options.operations) {
        throw fhirError('unknown-route', `No operation $${String(interaction.operation)} here`);
      }
      return options.operations.resolve(interaction).handler(interaction, input.body, scope);
    }
  }
}

/** The interactions that take a resource refuse a request without one (400 body-missing). */
function need(body: unknown): unknown {
  if (body === undefined) {
    throw fhirError('body-missing', 'This interaction needs a FHIR resource in the body');
  }
  return body;
}
