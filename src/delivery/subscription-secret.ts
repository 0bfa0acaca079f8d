import type { Resource, Subscription } from '@medplum/fhirtypes';
import { EXT } from './subscription-settings.js';

/**
 * The signing secret (`EXT.signingSecret`) is write-only: the worker reads it from the store, no
 * response ever carries it (http/send.ts strips it from every body on the way out: reads,
 * searches, histories, includes, Bundle responses, operation results), and an update that leaves
 * it out keeps the one stored. To change it, send a new one.
 */
type Extended = { extension?: { url: string }[] };

export function withSecretKept(subscription: Subscription, previous: Subscription | undefined): Subscription {
  const has = (s: Extended | undefined) => (s?.extension ?? []).some((e) => e.url === EXT.signingSecret);
  if (has(subscription) || !has(previous)) return subscription;
  const kept = (previous?.extension ?? []).filter((e) => e.url === EXT.signingSecret);
  return { ...subscription, extension: [...(subscription.extension ?? []), ...kept] };
}

function stripSubscription(subscription: Subscription): Subscription {
  if (!(subscription.extension ?? []).some((e) => e.url === EXT.signingSecret)) return subscription;
  const extension = (subscription.extension ?? []).filter((e) => e.url !== EXT.signingSecret);
  const { extension: _e, ...rest } = subscription;
  return (extension.length > 0 ? { ...rest, extension } : rest) as Subscription;
}

/**
 * `body` with every Subscription's secret removed, wherever it sits: the body itself, Bundle
 * entries (nested Bundles too), contained resources, Parameters. Untouched objects are returned
 * as they are (no copy for bodies that hold no Subscription).
 */
export function withoutSecrets<T>(body: T, depth = 0): T {
  if (depth > 8 || typeof body !== 'object' || body === null) return body;
  const resource = body as unknown as Resource & Record<string, unknown>;
  let out: Record<string, unknown> = resource;
  const replace = (key: string, value: unknown): void => {
    if (value !== out[key]) out = { ...out, [key]: value };
  };
  if (resource.resourceType === 'Subscription') out = stripSubscription(resource as Subscription) as never;
  if (Array.isArray(resource.contained)) replace('contained', mapArray(resource.contained, depth));
  if (resource.resourceType === 'Bundle' && Array.isArray(resource.entry)) {
    replace(
      'entry',
      mapArray(resource.entry as unknown[], depth, (entry) => {
        const e = entry as Record<string, unknown>;
        let next = e;
        const r = withoutSecrets(e.resource, depth + 1);
        if (r !== e.resource) next = { ...next, resource: r };
        const response = e.response as Record<string, unknown> | undefined;
        const outcome = response ? withoutSecrets(response.outcome, depth + 1) : undefined;
        if (response && outcome !== response.outcome) next = { ...next, response: { ...response, outcome } };
        return next;
      }),
    );
  }
  if (resource.resourceType === 'Parameters' && Array.isArray(resource.parameter)) {
    replace(
      'parameter',
      mapArray(resource.parameter as unknown[], depth, (p) => parameter(p, depth)),
    );
  }
  return out as T;
}

function parameter(p: unknown, depth: number): unknown {
  const param = p as Record<string, unknown>;
  let next = param;
  const r = withoutSecrets(param.resource, depth + 1);
  if (r !== param.resource) next = { ...next, resource: r };
  if (Array.isArray(param.part)) {
    const part = mapArray(param.part as unknown[], depth + 1, (x) => parameter(x, depth + 1));
    if (part !== param.part) next = { ...next, part };
  }
  return next;
}

/** Maps an array; the same array when nothing changed. */
function mapArray(
  items: unknown[],
  depth: number,
  map = (x: unknown) => withoutSecrets(x, depth + 1),
): unknown[] {
  let changed = false;
  const out = items.map((item) => {
    const next = map(item);
    if (next !== item) changed = true;
    return next;
  });
  return changed ? out : items;
}
