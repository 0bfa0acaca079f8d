import { isKnownResourceType } from '../fhir/definitions.js';

/**
 * The format of `Reference.reference` (https://hl7.org/fhir/R4/references.html#literal):
 * - a relative RESTful reference `[type]/[id]` or `[type]/[id]/_history/[vid]`, where type is an R4
 *   resource type and id/vid are R4 ids (`[A-Za-z0-9\-\.]{1,64}`, https://hl7.org/fhir/R4/datatypes.html#id);
 * - an absolute URL with the scheme http or https and a host (RESTful or not: any URL may locate a
 *   resource), with no whitespace and no empty path segment;
 * - `urn:uuid:` and `urn:oid:` URNs (https://hl7.org/fhir/R4/bundle.html#references), as the R4
 *   `uuid` and `oid` datatypes write them (https://hl7.org/fhir/R4/datatypes.html#uuid);
 * - `#` and `#[id]`, a contained resource or the container (https://hl7.org/fhir/R4/references.html#contained).
 * Anything else (`Patient//1`, `javascript:…`, `Patient/`) cannot be resolved and is refused.
 *
 * Scanned by hand, one pass per check, so that a long near-miss costs linear time: no regular
 * expression here has a nested or ambiguous quantifier.
 */
export function referenceFormatProblem(reference: string): string | undefined {
  if (reference.startsWith('#')) {
    return reference === '#' || isId(reference.slice(1))
      ? undefined
      : 'a local reference is # followed by the id of a contained resource';
  }
  const colon = reference.indexOf(':');
  const slash = reference.indexOf('/');
  if (colon !== -1 && (slash === -1 || colon < slash)) {
    const scheme = reference.slice(0, colon).toLowerCase();
    if (scheme === 'http' || scheme === 'https') return absoluteUrlProblem(reference, colon);
    if (scheme === 'urn') return urnProblem(reference);
    return `the scheme '${scheme.slice(0, 20)}:' is not allowed (http, https, urn:uuid, urn:oid)`;
  }
  if (reference.includes('?')) {
    return 'conditional references (Type?search) are not supported';
  }
  return relativeProblem(reference);
}

const RELATIVE_FORM = 'expected Type/id or Type/id/_history/vid';

function relativeProblem(reference: string): string | undefined {
  const parts = reference.split('/');
  if (parts.length !== 2 && parts.length !== 4) return RELATIVE_FORM;
  const [type, id, history, vid] = parts as [string, string, string?, string?];
  if (type.length > 64 || !isKnownResourceType(type)) {
    return `'${type.slice(0, 40)}' is not an R4 resource type (${RELATIVE_FORM})`;
  }
  if (!isId(id)) return `'${id.slice(0, 70)}' is not a valid id (1-64 of A-Z a-z 0-9 - .)`;
  if (parts.length === 4) {
    if (history !== '_history') return RELATIVE_FORM;
    if (!isId(vid as string)) return `'${(vid as string).slice(0, 70)}' is not a valid version id`;
  }
  return undefined;
}

function absoluteUrlProblem(reference: string, colon: number): string | undefined {
  // scheme "://" host: `https:///x` would be read by a WHATWG parser as host "x".
  if (reference.slice(colon + 1, colon + 3) !== '//' || reference.length === colon + 3) {
    return 'an absolute reference is scheme://host/path';
  }
  if (reference[colon + 3] === '/') return 'an absolute reference names a host';
  for (let i = 0; i < reference.length; i++) {
    const c = reference.charCodeAt(i);
    // Spaces and controls are not URL characters (RFC 3986 section 2).
    if (c <= 0x20 || (c >= 0x7f && c <= 0x9f)) return 'a URL contains no whitespace or control characters';
  }
  let url: URL;
  try {
    url = new URL(reference);
  } catch {
    return 'not a valid URL';
  }
  if (!url.hostname) return 'an absolute reference names a host';
  const authorityEnd = reference.indexOf('/', colon + 3);
  if (authorityEnd !== -1) {
    const pathEnd = firstOf(reference, authorityEnd, '?', '#');
    if (reference.slice(authorityEnd, pathEnd).includes('//')) return 'the URL has an empty path segment';
  }
  return undefined;
}

function firstOf(text: string, from: number, ...chars: string[]): number {
  let end = text.length;
  for (const c of chars) {
    const i = text.indexOf(c, from);
    if (i !== -1 && i < end) end = i;
  }
  return end;
}

/** `urn:uuid:` + the R4 uuid form (https://hl7.org/fhir/R4/datatypes.html#uuid), hex of either case. */
const UUID = /^urn:uuid:[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$/;

function urnProblem(reference: string): string | undefined {
  const lower = reference.slice(0, 9).toLowerCase();
  if (lower === 'urn:uuid:') {
    return reference.length === 45 && UUID.test(reference)
      ? undefined
      : 'a urn:uuid: reference is urn:uuid: and a UUID (8-4-4-4-12 hexadecimal digits)';
  }
  if (lower.startsWith('urn:oid:')) {
    return isOid(reference.slice(8))
      ? undefined
      : 'a urn:oid: reference is urn:oid: and an OID (e.g. 2.16.840.1)';
  }
  return 'only urn:uuid: and urn:oid: URNs are allowed';
}

/** R4 oid: `[0-2](\.(0|[1-9][0-9]*))+` (https://hl7.org/fhir/R4/datatypes.html#oid), scanned arc by arc. */
function isOid(value: string): boolean {
  const arcs = value.split('.');
  if (arcs.length < 2 || !['0', '1', '2'].includes(arcs[0] as string)) return false;
  for (let a = 1; a < arcs.length; a++) {
    const arc = arcs[a] as string;
    if (arc.length === 0 || (arc.length > 1 && arc[0] === '0')) return false;
    for (let i = 0; i < arc.length; i++) {
      const c = arc.charCodeAt(i);
      if (c < 48 || c > 57) return false;
    }
  }
  return true;
}

/** R4 id: 1-64 of `[A-Za-z0-9\-\.]` (https://hl7.org/fhir/R4/datatypes.html#id). */
export function isId(value: string): boolean {
  if (value.length < 1 || value.length > 64) return false;
  for (let i = 0; i < value.length; i++) {
    const c = value.charCodeAt(i);
    const ok = (c >= 48 && c <= 57) || (c >= 65 && c <= 90) || (c >= 97 && c <= 122) || c === 45 || c === 46;
    if (!ok) return false;
  }
  return true;
}
