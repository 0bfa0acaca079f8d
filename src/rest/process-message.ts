import type { Bundle, BundleEntry, MessageHeader, Resource } from '@medplum/fhirtypes';
import { fhirError } from '../fhir/errors.js';
import type { AuthContext } from '../access/client-identity.js';
import { toFhirError } from '../validation/resource-validator.js';
import { processBundle } from './bundle-interaction.js';
import { newId } from './resource-identity.js';
import type { RestServices, WriteTarget } from './unit-of-work.js';

/**
 * `$process-message` (https://hl7.org/fhir/R4/messageheader-operation-process-message.html),
 * synchronous: a message Bundle (MessageHeader first, its `focus` the ServiceRequest or a Task on
 * it, as the BSeR guide sends referrals) is stored as one transaction, exactly as if its resources
 * had come in a transaction Bundle, and answered with a response message.
 *
 * The sender's own Task is not stored: the service keeps one workflow Task per referral, its own.
 * Resources that carry an identifier are created conditionally on it, so a re-sent message does
 * not duplicate the patient or the referrer.
 */
const CONDITIONAL_BY_IDENTIFIER = new Set([
  'Patient',
  'Practitioner',
  'PractitionerRole',
  'Organization',
  'Coverage',
  'RelatedPerson',
]);

export async function processMessage(
  store: WriteTarget,
  services: RestServices,
  body: unknown,
  baseUrl: string,
  auth?: AuthContext,
): Promise<Bundle> {
  const message = body as Bundle;
  if (
    typeof body !== 'object' ||
    body === null ||
    message.resourceType !== 'Bundle' ||
    message.type !== 'message'
  ) {
    throw fhirError('invalid-bundle', '$process-message takes a Bundle of type message', 'Bundle.type');
  }
  const result = services.validator.validate(message);
  if (result.failure) {
    throw toFhirError(result, result.failure);
  }
  const header = message.entry?.[0]?.resource as MessageHeader | undefined;
  if (header?.resourceType !== 'MessageHeader') {
    throw fhirError(
      'invalid-bundle',
      'The first entry of a message must be its MessageHeader',
      'Bundle.entry[0].resource',
    );
  }
  const entries = (message.entry ?? []).slice(1);
  const aliases = referenceAliases(entries);
  const focus = (header.focus ?? []).map((f) => aliases.get(f.reference ?? '') ?? f.reference);
  const referralEntry = entries.find((e) => e.resource?.resourceType === 'ServiceRequest');
  if (!referralEntry || !focusesOnReferral(focus, referralEntry, entries, aliases)) {
    throw fhirError(
      'business-rule',
      'The MessageHeader must focus on the ServiceRequest, or on a Task whose focus is it',
      'MessageHeader.focus',
    );
  }
  const transaction: Bundle = {
    resourceType: 'Bundle',
    type: 'transaction',
    entry: entries
      .filter((e) => e.resource && e.resource.resourceType !== 'Task')
      .map((e) => toTransactionEntry(e, aliases)),
  };
  // The message was validated as a whole just above: its resources are not validated again.
  const response = await processBundle(store, services, transaction, {
    baseUrl,
    returnMinimal: true,
    auth,
    validated: true,
  });
  const referralIndex =
    transaction.entry?.findIndex((e) => e.resource?.resourceType === 'ServiceRequest') ?? -1;
  // The stored referral, new or recognised as a re-send: the response entry's fullUrl names it.
  const referral = response.entry?.[referralIndex]?.fullUrl?.slice(baseUrl.length + 1);
  return {
    resourceType: 'Bundle',
    type: 'message',
    timestamp: services.now(),
    entry: [
      {
        fullUrl: `urn:uuid:${newId()}`,
        resource: {
          resourceType: 'MessageHeader',
          eventCoding: header.eventCoding,
          eventUri: header.eventUri,
          source: { endpoint: baseUrl, name: 'pt-referral-fhir' },
          destination: header.source?.endpoint ? [{ endpoint: header.source.endpoint }] : undefined,
          response: { identifier: header.id ?? 'unknown', code: 'ok' },
          focus: referral ? [{ reference: referral }] : undefined,
        } as MessageHeader,
      },
      { fullUrl: `urn:uuid:${newId()}`, resource: response },
    ],
  };
}

/** Entries are referenced by fullUrl and, for RESTful fullUrls, by their relative `Type/id`. */
function referenceAliases(entries: BundleEntry[]): Map<string, string> {
  const aliases = new Map<string, string>();
  for (const entry of entries) {
    if (!entry.fullUrl) continue;
    aliases.set(entry.fullUrl, entry.fullUrl);
    const m = /([A-Z][A-Za-z]+\/[A-Za-z0-9\-.]{1,64})$/.exec(entry.fullUrl);
    if (m && !entry.fullUrl.startsWith('urn:')) aliases.set(m[1] as string, entry.fullUrl);
  }
  return aliases;
}

function focusesOnReferral(
  focus: (string | undefined)[],
  referral: BundleEntry,
  entries: BundleEntry[],
  aliases: Map<string, string>,
): boolean {
  return focus.some((f) => {
    if (f === referral.fullUrl) return true;
    const task = entries.find((e) => e.fullUrl === f && e.resource?.resourceType === 'Task')?.resource as
      { focus?: { reference?: string } } | undefined;
    return task?.focus?.reference !== undefined && aliases.get(task.focus.reference) === referral.fullUrl;
  });
}

function toTransactionEntry(entry: BundleEntry, aliases: Map<string, string>): BundleEntry {
  const resource = rewrite(entry.resource, aliases) as Resource & {
    identifier?: { system?: string; value?: string }[];
  };
  const { id: _id, ...withoutId } = resource;
  const identifier = resource.identifier?.find((i) => i.system && i.value);
  const conditional = CONDITIONAL_BY_IDENTIFIER.has(resource.resourceType) && identifier;
  return {
    fullUrl: entry.fullUrl,
    resource: withoutId as Resource,
    request: {
      method: 'POST',
      url: resource.resourceType,
      ...(conditional
        ? { ifNoneExist: `identifier=${encodeURIComponent(`${identifier.system}|${identifier.value}`)}` }
        : {}),
    },
  };
}

/** Relative references (`Patient/123`) to other entries become their fullUrl, which the transaction resolves. */
function rewrite(value: unknown, aliases: Map<string, string>): unknown {
  if (Array.isArray(value)) return value.map((v) => rewrite(v, aliases));
  if (typeof value !== 'object' || value === null) return value;
  return Object.fromEntries(
    Object.entries(value).map(([k, v]) => [
      k,
      k === 'reference' && typeof v === 'string' ? (aliases.get(v) ?? v) : rewrite(v, aliases),
    ]),
  );
}
