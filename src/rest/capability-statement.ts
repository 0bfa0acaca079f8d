import type { CapabilityStatement, CapabilityStatementRestResource } from '@medplum/fhirtypes';
import { getResourceTypeNames } from '../fhir/definitions.js';
import { REFERRAL_PROGRESS_TOPIC } from '../fhir/canonical-urls.js';
import { getIndexedSearchParameters } from '../fhir/search/search-parameters.js';

/**
 * The CapabilityStatement (https://hl7.org/fhir/R4/capabilitystatement.html), generated from what the
 * server really does: the search parameters listed are exactly the indexed ones, and the includes
 * are the reference parameters that `_include`/`_revinclude` accept.
 */
export interface ServerInfo {
  name: string;
  version: string;
  baseUrl: string;
  startedAt: string;
  /** Present when SMART Backend Services authentication is on. */
  authentication?: { publicOrigin?: string; scopes?: string[] };
  /**
   * The operations the server implements (src/operations/registry.ts): each is listed where it is
   * invoked, `rest.operation` for the system level and `rest.resource.operation` for a type or an
   * instance, with the canonical of its OperationDefinition (https://hl7.org/fhir/R4/capabilitystatement-definitions.html#CapabilityStatement.rest.resource.operation).
   */
  operations?: readonly AdvertisedOperation[];
}

/** What the CapabilityStatement says of an operation (src/operations/types.ts AdvertisedOperation has it). */
export interface AdvertisedOperation {
  name: string;
  levels: readonly ('system' | 'type' | 'instance')[];
  resourceTypes: readonly string[] | '*';
  definition: { url?: string };
}

let cached:
  { operations: readonly AdvertisedOperation[]; resources: CapabilityStatementRestResource[] } | undefined;

export function buildCapabilityStatement(info: ServerInfo): CapabilityStatement {
  const operations = info.operations ?? [];
  if (cached?.operations !== operations) cached = { operations, resources: buildResources(operations) };
  const resources = cached.resources;
  const systemOperations = operations
    .filter((o) => o.levels.includes('system'))
    .map((o) => ({ name: o.name, definition: o.definition.url as string }));
  return {
    resourceType: 'CapabilityStatement',
    status: 'active',
    date: info.startedAt,
    kind: 'instance',
    name: 'PtReferralFhirServer',
    title: 'Physical-therapy referral FHIR server',
    publisher: 'pt-referral-fhir',
    software: { name: info.name, version: info.version },
    implementation: {
      description: 'HL7 FHIR R4 electronic-referral service for physical-therapy practices',
      url: info.baseUrl,
    },
    // Conformance to the Subscriptions Backport IG, so receivers find the topic without our docs.
    instantiates: [
      'http://hl7.org/fhir/uv/subscriptions-backport/CapabilityStatement/backport-subscription-server-r4',
    ],
    fhirVersion: '4.0.1',
    format: ['application/fhir+json', 'json'],
    rest: [
      {
        mode: 'server',
        ...(info.authentication ? { security: smartSecurity(info) } : {}),
        resource: resources,
        interaction: [{ code: 'transaction' }, { code: 'batch' }, { code: 'history-system' }],
        ...(systemOperations.length > 0 ? { operation: systemOperations } : {}),
      },
    ],
  };
}

function buildResources(operations: readonly AdvertisedOperation[]): CapabilityStatementRestResource[] {
  const types = [...getResourceTypeNames()].sort();
  const revIncludes = new Map<string, string[]>();
  for (const type of types) {
    for (const param of getIndexedSearchParameters(type).values()) {
      if (param.table !== 'reference') continue;
      for (const target of param.targets) {
        const list = revIncludes.get(target) ?? [];
        list.push(`${type}:${param.code}`);
        revIncludes.set(target, list);
      }
    }
  }
  return types.map((type): CapabilityStatementRestResource => {
    const params = [...getIndexedSearchParameters(type).values()];
    const typeOperations = operations
      .filter(
        (o) =>
          (o.levels.includes('type') || o.levels.includes('instance')) &&
          (o.resourceTypes === '*' || o.resourceTypes.includes(type)),
      )
      .map((o) => ({ name: o.name, definition: o.definition.url as string }));
    return {
      ...(type === 'Subscription' ? subscriptionExtras() : {}),
      type: type as CapabilityStatementRestResource['type'],
      profile: `http://hl7.org/fhir/StructureDefinition/${type}`,
      interaction: [
        'read',
        'vread',
        'update',
        'delete',
        'history-instance',
        'history-type',
        'create',
        'search-type',
      ].map((code) => ({ code: code as 'read' })),
      versioning: 'versioned',
      readHistory: true,
      updateCreate: true,
      conditionalCreate: true,
      conditionalUpdate: true,
      conditionalDelete: 'single',
      conditionalRead: 'not-supported',
      searchInclude: params.filter((p) => p.table === 'reference').map((p) => `${type}:${p.code}`),
      searchRevInclude: revIncludes.get(type) ?? [],
      searchParam: [
        { name: '_id', type: 'token', definition: 'http://hl7.org/fhir/SearchParameter/Resource-id' },
        {
          name: '_lastUpdated',
          type: 'date',
          definition: 'http://hl7.org/fhir/SearchParameter/Resource-lastUpdated',
        },
        ...params.map((p) => ({
          name: p.code,
          type: p.definition.type as 'token',
          ...(p.definition.url ? { definition: p.definition.url } : {}),
        })),
      ],
      ...(typeOperations.length > 0 ? { operation: typeOperations } : {}),
    };
  });
}

/** The Backport IG's way to advertise topics and the subscription operations on R4. */
function subscriptionExtras(): Partial<CapabilityStatementRestResource> {
  return {
    extension: [
      {
        url: 'http://hl7.org/fhir/uv/subscriptions-backport/StructureDefinition/capabilitystatement-subscriptiontopic-canonical',
        valueCanonical: REFERRAL_PROGRESS_TOPIC,
      },
    ],
    supportedProfile: [
      'http://hl7.org/fhir/uv/subscriptions-backport/StructureDefinition/backport-subscription',
    ],
    // $status and $events are listed from the operation registry, like every operation.
  };
}

/** How clients find the token endpoint (https://hl7.org/fhir/smart-app-launch/conformance.html). */
function smartSecurity(info: ServerInfo): NonNullable<CapabilityStatement['rest']>[number]['security'] {
  const origin = info.authentication?.publicOrigin ?? new URL(info.baseUrl).origin;
  return {
    cors: false,
    service: [
      {
        coding: [
          { system: 'http://terminology.hl7.org/CodeSystem/restful-security-service', code: 'SMART-on-FHIR' },
        ],
      },
    ],
    description:
      'SMART Backend Services: client_credentials with a private_key_jwt client assertion (RS384 or ES384); ' +
      `scopes supported: ${(info.authentication?.scopes ?? []).join(' ')}; see /.well-known/smart-configuration.`,
    extension: [
      {
        url: 'http://fhir-registry.smarthealthit.org/StructureDefinition/oauth-uris',
        extension: [{ url: 'token', valueUri: `${origin}/auth/token` }],
      },
    ],
  };
}
