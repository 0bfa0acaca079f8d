/**
 * `Subscription.channel.header`: the Backport IG lets a subscriber give headers the server adds
 * to each notification, typically its endpoint's own credentials
 * (https://hl7.org/fhir/R4/subscription-definitions.html#Subscription.channel.header). This
 * server's one mechanism for that: an `Authorization` header (at most one) and other custom
 * headers are sent as given; headers that would change what the request is, who it is for, or
 * that the service alone sets (the signature) are refused on write and never sent.
 */
export const MAX_CHANNEL_HEADERS = 10;

/** Names the HTTP layer or the service itself owns, or that speak for an intermediary. */
const RESERVED = new Set([
  'host',
  'cookie',
  'cookie2',
  'content-type',
  'content-length',
  'content-encoding',
  'transfer-encoding',
  'connection',
  'keep-alive',
  'upgrade',
  'expect',
  'te',
  'trailer',
  'forwarded',
  'via',
  // The service's HMAC of the body (signature.ts): a client-set value would forge or confuse it.
  'x-signature',
  'x-hub-signature',
  'x-hub-signature-256',
]);

export function headerName(header: string): string {
  const i = header.indexOf(':');
  return i > 0 ? header.slice(0, i).trim().toLowerCase() : '';
}

/** Why a header cannot be sent, or undefined when it can. */
export function headerProblem(header: string): string | undefined {
  const i = header.indexOf(':');
  if (i <= 0) return 'must be "Name: value"';
  const name = header.slice(0, i).trim();
  try {
    new Headers([[name, header.slice(i + 1).trim()]]);
  } catch {
    return 'must be "Name: value" with a valid HTTP name and value';
  }
  const lower = name.toLowerCase();
  if (
    RESERVED.has(lower) ||
    lower.startsWith('proxy-') ||
    lower.startsWith('x-forwarded-') ||
    lower.startsWith('sec-')
  ) {
    return `may not set ${name}: the service sets it, or it would change where the request goes`;
  }
  return undefined;
}

/** The headers a notification carries from the channel: only the sendable ones, names lower-cased. */
export function sendableHeaders(headers: readonly string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const header of headers) {
    if (headerProblem(header) !== undefined) continue;
    const i = header.indexOf(':');
    out[header.slice(0, i).trim().toLowerCase()] = header.slice(i + 1).trim();
  }
  return out;
}
