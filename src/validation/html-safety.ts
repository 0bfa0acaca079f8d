import { defaultTreeAdapter, html, parse, parseFragment, type DefaultTreeAdapterTypes } from 'parse5';

/**
 * The parts of deciding whether HTML is safe to show that narrative (narrative.ts) and HTML
 * attachments (attachment-safety.ts) share. Decisions are taken on the tree a WHATWG-compliant
 * parser (parse5) builds — the tree a browser builds from the same text — so attribute names and
 * values, entity-decoded, are what a browser would act on; never on regular expressions over the
 * markup, which a quoted `>` or an entity like `&Tab;` slips past.
 */
type Node = DefaultTreeAdapterTypes.Node;
type ParentNode = DefaultTreeAdapterTypes.ParentNode;
export type HtmlElement = DefaultTreeAdapterTypes.Element;
export type HtmlComment = DefaultTreeAdapterTypes.CommentNode;

export const XHTML_NS = 'http://www.w3.org/1999/xhtml';

export interface ParsedHtml<T> {
  root: T;
  /** parse5's parse-error codes (https://html.spec.whatwg.org/#parse-errors), in order. */
  errors: string[];
}

/**
 * Parsed as a browser parses `div.innerHTML = text` (a div context, as viewers show narrative).
 * Parse errors are collected only when asked for: tracking them doubles the cost of a parse.
 */
export function parseHtmlFragment(
  text: string,
  options: { errors?: boolean } = {},
): ParsedHtml<DefaultTreeAdapterTypes.DocumentFragment> {
  const errors: string[] = [];
  const context = defaultTreeAdapter.createElement('div', html.NS.HTML, []);
  const root = options.errors
    ? parseFragment(context, text, { onParseError: (e) => void errors.push(e.code) })
    : parseFragment(context, text, {});
  return { root, errors };
}

export function parseHtmlDocument(text: string): ParsedHtml<DefaultTreeAdapterTypes.Document> {
  const errors: string[] = [];
  return { root: parse(text, { onParseError: (e) => void errors.push(e.code) }), errors };
}

/** Every node under `root` in document order, without recursion (a deep tree cannot overflow the stack). */
export function* descendants(root: ParentNode): Generator<Node> {
  const stack: Node[] = [...root.childNodes].reverse();
  while (stack.length > 0) {
    const node = stack.pop() as Node;
    yield node;
    const children: Node[] = [];
    if ('childNodes' in node) children.push(...node.childNodes);
    // A <template>'s content is a separate fragment; it is still markup that can be cloned in.
    if (node.nodeName === 'template' && 'content' in node) children.push(...node.content.childNodes);
    for (let i = children.length - 1; i >= 0; i--) stack.push(children[i] as Node);
  }
}

export function isElement(node: Node): node is HtmlElement {
  return 'tagName' in node;
}

export function isComment(node: Node): node is HtmlComment {
  return node.nodeName === '#comment';
}

export function textOf(node: Node): string | undefined {
  return node.nodeName === '#text' ? (node as DefaultTreeAdapterTypes.TextNode).value : undefined;
}

/** An attribute's name as written (`xlink:href`, `xml:lang`), lower case. */
export function attributeName(attr: { name: string; prefix?: string }): string {
  return (attr.prefix ? `${attr.prefix}:${attr.name}` : attr.name).toLowerCase();
}

/** The name without a namespace prefix: `x:script` is a script element to an XML reader. */
export function localName(name: string): string {
  return name.slice(name.lastIndexOf(':') + 1).toLowerCase();
}

/**
 * Characters browsers drop or ignore inside a URL's scheme: C0 controls and space (the WHATWG URL
 * parser strips them at the ends and removes tab and newlines anywhere), C1 controls, and the
 * invisible format characters. Removing more than a browser does can only refuse more.
 */
// eslint-disable-next-line no-control-regex
const IGNORED_IN_SCHEME = /[\u0000-\u0020\u007f-\u009f\u00ad\u200b-\u200f\u2028\u2029\u2060\ufeff]/g;

/** The URL's scheme, lower case, as a browser would read it from the (entity-decoded) value. */
export function urlScheme(value: string): string | undefined {
  return /^([a-z][a-z0-9+.-]*):/.exec(value.replace(IGNORED_IN_SCHEME, '').toLowerCase())?.[1];
}

/** Schemes that run code in the page (https://html.spec.whatwg.org/#javascript-protocol and legacy ones). */
const SCRIPT_SCHEMES = new Set(['javascript', 'vbscript', 'livescript', 'mocha']);

export function isScriptUrl(value: string): boolean {
  const scheme = urlScheme(value);
  return scheme !== undefined && SCRIPT_SCHEMES.has(scheme);
}

/**
 * A URL that can run code or show active content: a script scheme, or `data:` other than a raster
 * image (`data:image/svg+xml` can carry script, `data:text/html` is a page). Raster images in
 * `data:` are accepted only where `allowImageData` (an img's src).
 */
export function isActiveUrl(value: string, allowImageData: boolean): boolean {
  const scheme = urlScheme(value);
  if (scheme === undefined) return false;
  if (SCRIPT_SCHEMES.has(scheme)) return true;
  if (scheme !== 'data') return false;
  const url = value.replace(IGNORED_IN_SCHEME, '').toLowerCase();
  return !(allowImageData && /^data:image\/(png|gif|jpeg|webp)[;,]/.test(url));
}

/**
 * What in CSS can run code or fetch active content, if anything: `expression()` (old IE), script
 * URLs, `-moz-binding`/`behavior` (XBL, HTC) and `@import`; and, where `checkUrls` (narrative),
 * a `url()` whose target is not safe (`safeStyleUrl`) and the functions taking bare URL strings
 * (`image()`, `image-set()`, `src()`), which a narrative does not need. R4 allows styles in
 * narrative (https://hl7.org/fhir/R4/narrative.html#css) and the IG Publisher writes
 * `background-image: url(tbl_bck1.png)`, so a url() to an image is allowed there. Decided after
 * removing comments and decoding CSS escapes (https://www.w3.org/TR/css-syntax-3/#consume-escaped-code-point),
 * so `expr\65 ssion(` and a comment splitting `url(` are seen for what they are.
 */
export function activeCss(css: string, checkUrls: boolean): string | undefined {
  const plain = normaliseCss(css);
  for (const marker of ['expression(', 'javascript:', 'vbscript:', '-moz-binding', 'behavior:', '@import']) {
    if (plain.includes(marker)) return marker;
  }
  if (!checkUrls) return undefined;
  for (const fn of ['image(', 'image-set(', 'src(']) {
    if (plain.includes(fn)) return fn;
  }
  for (const target of urlTargets(plain)) {
    if (!safeStyleUrl(target)) return 'url(';
  }
  return undefined;
}

/**
 * The targets of the `url(...)` tokens in normalised CSS, quoted or not
 * (https://www.w3.org/TR/css-syntax-3/#consume-url-token). Each search starts after the previous
 * target, so the scan is linear. A target cut short by a quote that was escaped in the source is
 * a prefix of the real one: its scheme, if any, is the real one's.
 */
function* urlTargets(plain: string): Generator<string> {
  let from = 0;
  for (let at = plain.indexOf('url(', from); at !== -1; at = plain.indexOf('url(', from)) {
    const start = at + 4;
    const quote = plain[start];
    if (quote === '"' || quote === "'") {
      const end = plain.indexOf(quote, start + 1);
      yield plain.slice(start + 1, end === -1 ? plain.length : end);
      from = end === -1 ? plain.length : end + 1;
    } else {
      const end = plain.indexOf(')', start);
      yield plain.slice(start, end === -1 ? plain.length : end);
      from = end === -1 ? plain.length : end + 1;
    }
  }
}

/** A style URL that only fetches an image: relative, http(s), or a raster image in `data:`. */
function safeStyleUrl(target: string): boolean {
  const scheme = urlScheme(target);
  if (scheme === undefined || scheme === 'http' || scheme === 'https') return true;
  return scheme === 'data' && !isActiveUrl(target, true);
}

/** CSS without comments, escapes decoded, without whitespace, lower case. Linear time. */
function normaliseCss(css: string): string {
  let out = '';
  let i = 0;
  while (i < css.length) {
    const c = css[i] as string;
    if (c === '/' && css[i + 1] === '*') {
      const end = css.indexOf('*/', i + 2);
      i = end === -1 ? css.length : end + 2;
      continue;
    }
    if (c === '\\') {
      let hex = '';
      let j = i + 1;
      while (j < css.length && hex.length < 6 && /[0-9a-fA-F]/.test(css[j] as string)) hex += css[j++];
      if (hex) {
        if (/\s/.test(css[j] ?? '')) j++;
        const cp = parseInt(hex, 16);
        out += cp > 0 && cp <= 0x10ffff ? String.fromCodePoint(cp) : '\ufffd';
        i = j;
      } else {
        // `\` before a newline is a line continuation; before anything else it is that character.
        out += css[i + 1] === '\n' ? '' : (css[i + 1] ?? '');
        i += 2;
      }
      continue;
    }
    out += c;
    i++;
  }
  return out.replace(/\s+/g, '').toLowerCase();
}
