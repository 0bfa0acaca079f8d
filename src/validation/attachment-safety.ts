import type { OperationOutcomeIssue, Resource } from '@medplum/fhirtypes';
import { ERROR_CODE_SYSTEM } from '../fhir/errors.js';
import {
  activeCss,
  attributeName,
  descendants,
  isActiveUrl,
  isComment,
  isElement,
  isScriptUrl,
  localName,
  parseHtmlDocument,
  parseHtmlFragment,
  textOf,
  type HtmlElement,
} from './html-safety.js';

/**
 * Active HTML content in client attachments is refused (issue 11, item 7): an Attachment (or a
 * Binary) whose content type a browser renders as a page — text/html, application/xhtml+xml,
 * image/svg+xml, XML — and whose base64 `data` carries script, event handlers, frames, forms,
 * script URLs, refreshes or style sheets that run code. A referrer's letter is shown to the
 * practice's staff and may be forwarded to other referrers; none of that may run in their browser.
 * See https://hl7.org/fhir/R4/datatypes.html#Attachment and https://hl7.org/fhir/R4/binary.html#security
 * ("Binary resources ... may contain executable content ... servers SHOULD ... validate").
 *
 * Decided on the parse5 tree of the decoded data, like narrative (narrative.ts). XML types
 * (XHTML, SVG, XML) are read by browsers with an XML parser, which sees markup where the HTML
 * parser sees text: for them the text of raw-text elements (style, script, title, ...) is parsed
 * again, DOCTYPEs with an internal subset (whose entities can expand to markup) and processing
 * instructions other than the XML declaration (`xml-stylesheet` runs XSLT) are refused, and
 * element names are compared without their namespace prefix (`x:script` is a script to XML).
 * Unlike narrative, whole documents are allowed (html, head, body, title, style): this is a
 * denylist of what can act, not the narrative's allowlist of formatting.
 */
type Kind = 'html' | 'xml';

const RENDERED_TYPES: Record<string, Kind> = {
  'text/html': 'html',
  'application/xhtml+xml': 'xml',
  'image/svg+xml': 'xml',
  'text/xml': 'xml',
  'application/xml': 'xml',
};

const ACTIVE_ELEMENTS = new Set(
  (
    'script iframe frame frameset object embed applet base link form input button select textarea isindex ' +
    'keygen portal foreignobject handler listener'
  ).split(' '),
);
/** SVG animation can set an attribute, e.g. `href` to a script URL. */
const ANIMATION_ELEMENTS = new Set(['set', 'animate', 'animatetransform', 'animatemotion', 'animatecolor']);
/** Attributes holding a URL a browser follows or fetches (local names: `xlink:href` is `href`). */
const URL_ATTRIBUTES = new Set(
  'href src action formaction background poster data codebase cite srcset lowsrc dynsrc longdesc usemap ping manifest to from by values'.split(
    ' ',
  ),
);
/** Where the HTML parser keeps text that an XML parser reads as markup. */
const RAW_TEXT_ELEMENTS = new Set(
  'style script title textarea xmp iframe noembed noframes noscript plaintext'.split(' '),
);
const HARMLESS_HTTP_EQUIV = new Set(['content-type', 'content-language']);
const MAX_REPARSE_DEPTH = 3;
const TOLERATED_DOCTYPE_ERRORS = new Set(['missing-doctype', 'non-conforming-doctype']);

/** One issue per Attachment with active content, named by its FHIRPath; 422 (business-rule). */
export function activeAttachmentIssues(resource: Resource): OperationOutcomeIssue[] {
  const issues: OperationOutcomeIssue[] = [];
  const refuse = (expression: string, text: string): void => {
    issues.push({
      severity: 'error',
      code: 'security',
      details: { coding: [{ system: ERROR_CODE_SYSTEM, code: 'business-rule' }], text },
      expression: [expression],
    });
  };
  for (const { value, path } of objectsWithPaths(resource)) {
    if (typeof value.contentType !== 'string') continue;
    // A viewer links to Attachment.url: a script URL there runs when someone opens the attachment.
    if (typeof value.url === 'string' && isScriptUrl(value.url)) {
      refuse(
        `${path}.url`,
        "The attachment's url is a script URL; active content is not accepted from clients",
      );
      continue;
    }
    if (typeof value.data !== 'string') continue;
    const kind = RENDERED_TYPES[value.contentType.split(';')[0]?.trim().toLowerCase() ?? ''];
    if (!kind) continue;
    const found = activeContent(decode(value.data, value.contentType), kind);
    if (!found) continue;
    // A Binary is the attachment itself: its data is the element at fault.
    refuse(
      typeof value.resourceType === 'string' ? `${path}.data` : path,
      `The attachment's ${kind === 'html' ? 'HTML' : 'XML'} content is active (${found}); active content is not accepted from clients`,
    );
  }
  return issues;
}

/** What in the document can act, or undefined when nothing can. */
export function activeContent(text: string, kind: Kind): string | undefined {
  const { root, errors } = parseHtmlDocument(text);
  // A DOCTYPE the HTML tokenizer could not read to its end (`[` of an internal subset); a missing
  // or merely non-HTML one (SVG 1.1's public identifier) is fine.
  if (
    kind === 'xml' &&
    errors.some((code) => code.includes('doctype') && !TOLERATED_DOCTYPE_ERRORS.has(code))
  ) {
    return 'a DOCTYPE the server cannot read completely, such as one with an internal subset';
  }
  return activeIn(root, kind, 0);
}

function activeIn(root: Parameters<typeof descendants>[0], kind: Kind, depth: number): string | undefined {
  for (const node of descendants(root)) {
    if (isComment(node)) {
      // The HTML parser keeps processing instructions as comments; only the XML declaration is inert.
      if (kind === 'xml' && node.data.startsWith('?') && !/^\?xml(\s|\?|$)/i.test(node.data)) {
        return 'a processing instruction';
      }
      continue;
    }
    if (!isElement(node)) continue;
    const found = activeElement(node);
    if (found) return found;
    if (kind === 'xml' && RAW_TEXT_ELEMENTS.has(localName(node.tagName)) && depth < MAX_REPARSE_DEPTH) {
      const inner = node.childNodes.map((n) => textOf(n) ?? '').join('');
      const again = activeIn(parseHtmlFragment(inner).root, kind, depth + 1);
      if (again) return again;
    }
  }
  return undefined;
}

function activeElement(element: HtmlElement): string | undefined {
  const name = localName(element.tagName);
  if (ACTIVE_ELEMENTS.has(name)) return `a <${name}> element`;
  const attr = (n: string): string | undefined =>
    element.attrs.find((a) => localName(attributeName(a)) === n)?.value;
  const httpEquiv = attr('http-equiv');
  if (
    name === 'meta' &&
    httpEquiv !== undefined &&
    !HARMLESS_HTTP_EQUIV.has(httpEquiv.trim().toLowerCase())
  ) {
    return `a <meta http-equiv="${httpEquiv.slice(0, 20)}">`;
  }
  if (ANIMATION_ELEMENTS.has(name)) {
    const target = localName(attr('attributename') ?? '');
    if (target === 'href' || target.startsWith('on')) return `an <${name}> of '${target.slice(0, 20)}'`;
  }
  if (name === 'style') {
    const css = element.childNodes.map((n) => textOf(n) ?? '').join('');
    const marker = activeCss(css, false);
    if (marker) return `a style sheet using ${marker}`;
  }
  for (const a of element.attrs) {
    const full = attributeName(a);
    const local = localName(full);
    if (local.startsWith('on')) return `the event handler '${full.slice(0, 40)}' on <${name}>`;
    if (isScriptUrl(a.value) || (local === 'values' && a.value.split(';').some(isScriptUrl))) {
      return `a script URL in '${full.slice(0, 40)}' on <${name}>`;
    }
    const image = (name === 'img' && local === 'src') || (name === 'image' && local === 'href');
    if (URL_ATTRIBUTES.has(local) && isActiveUrl(a.value, image)) {
      return `an active URL in '${full.slice(0, 40)}' on <${name}>`;
    }
    if (local === 'style' && activeCss(a.value, false)) return `an active style on <${name}>`;
  }
  return undefined;
}

/** The attachment's text: by its byte-order mark, else its charset parameter, else UTF-8. */
function decode(data: string, contentType: string): string {
  const bytes = Buffer.from(data, 'base64');
  if (bytes[0] === 0xff && bytes[1] === 0xfe) return bytes.subarray(2).toString('utf16le');
  if (bytes[0] === 0xfe && bytes[1] === 0xff) return swap16(bytes.subarray(2)).toString('utf16le');
  const charset = /charset\s*=\s*"?([a-z0-9_-]+)/i.exec(contentType)?.[1]?.toLowerCase();
  if (charset === 'utf-16be') return swap16(bytes).toString('utf16le');
  if (charset === 'utf-16' || charset === 'utf-16le') return bytes.toString('utf16le');
  return bytes.toString('utf8');
}

function swap16(bytes: Buffer): Buffer {
  const copy = Buffer.from(bytes.subarray(0, bytes.length - (bytes.length % 2)));
  return copy.swap16();
}

/** Every object in the resource with its FHIRPath (`Communication.payload[1].contentAttachment`). */
function* objectsWithPaths(resource: Resource): Generator<{ value: Record<string, unknown>; path: string }> {
  const stack: { value: unknown; path: string }[] = [{ value: resource, path: resource.resourceType }];
  while (stack.length > 0) {
    const { value, path } = stack.pop() as { value: unknown; path: string };
    if (Array.isArray(value)) {
      for (let i = value.length - 1; i >= 0; i--) stack.push({ value: value[i], path: `${path}[${i}]` });
    } else if (typeof value === 'object' && value !== null) {
      const obj = value as Record<string, unknown>;
      yield { value: obj, path };
      for (const key of Object.keys(obj).reverse()) {
        if (typeof obj[key] === 'object') stack.push({ value: obj[key], path: `${path}.${key}` });
      }
    }
  }
}
