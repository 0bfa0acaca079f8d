import {
  activeCss,
  attributeName,
  descendants,
  isActiveUrl,
  isComment,
  isElement,
  parseHtmlFragment,
  textOf,
  XHTML_NS,
} from './html-safety.js';

/**
 * Narrative safety (R4 txt-1, txt-2 and https://hl7.org/fhir/R4/narrative.html#security): the XHTML
 * in `text.div` may use only basic formatting. Anything that can run code or fetch content on the
 * reader's screen is refused: script and style-sheet elements, event-handler attributes, frames,
 * forms, embedded objects, and `javascript:`/`vbscript:`/`data:` URLs (other than raster images in
 * an img's src: https://hl7.org/fhir/R4/narrative.html#xhtml allows images, and `data:image/svg+xml`
 * can carry script).
 *
 * Decided on the tree parse5 builds from the text — what a browser given the narrative as HTML
 * builds — so attribute values are entity-decoded and a `>` inside quotes ends nothing. The HTML
 * tree shows at least every element an XML reader would see (HTML comments and processing
 * instructions end no later than XML's), and CDATA, processing instructions and DOCTYPEs, where the
 * two readings differ, are refused outright.
 */
const ALLOWED_ELEMENTS = new Set(
  (
    'a abbr acronym b big blockquote br caption cite code col colgroup dd dfn div dl dt em h1 h2 h3 h4 h5 h6 hr i img ' +
    'li ol p pre q samp small span strong sub sup table tbody td tfoot th thead tr tt ul var'
  ).split(' '),
);
const ALLOWED_ATTRIBUTES = new Set(
  'xmlns xml:lang lang dir id class style title href name src alt width height colspan rowspan align valign border cellpadding cellspacing span summary abbr axis headers scope char charoff start type value'.split(
    ' ',
  ),
);
/** XML whitespace (https://www.w3.org/TR/xml/#NT-S): a no-break space is content (txt-2). */
const XML_SPACE_ONLY = /^[ \t\r\n]*$/;
/** Enough to say what is wrong; a hostile narrative could otherwise produce one per element. */
const MAX_PROBLEMS = 20;

export interface NarrativeProblem {
  message: string;
}

export function checkNarrative(div: string): NarrativeProblem[] {
  const problems: NarrativeProblem[] = [];
  const add = (message: string): void => {
    if (problems.length < MAX_PROBLEMS) problems.push({ message });
  };
  const { root: fragment } = parseHtmlFragment(div);
  const top = fragment.childNodes.filter((n) => {
    const text = textOf(n);
    return text === undefined || !XML_SPACE_ONLY.test(text);
  });
  const root = top[0];
  if (
    top.length !== 1 ||
    !root ||
    !isElement(root) ||
    root.tagName !== 'div' ||
    !root.attrs.some((a) => attributeName(a) === 'xmlns' && a.value === XHTML_NS)
  ) {
    add('The narrative must be one XHTML <div> in the namespace http://www.w3.org/1999/xhtml');
  }
  // A fragment parser drops a DOCTYPE without a trace in the tree; XML would read one (and the
  // entities it may define). Nothing legitimate in a narrative starts with `<!doctype`.
  if (div.toLowerCase().includes('<!doctype')) {
    add('The narrative contains a DOCTYPE');
  }
  let hasContent = false;
  for (const node of descendants(fragment)) {
    const text = textOf(node);
    if (text !== undefined) {
      hasContent ||= !XML_SPACE_ONLY.test(text);
      continue;
    }
    if (isComment(node)) {
      // The HTML parser turns CDATA and processing instructions into comments; XML reads them otherwise.
      if (node.data.startsWith('[CDATA[') || node.data.startsWith('?')) {
        add('The narrative contains CDATA or a processing instruction');
      }
      continue;
    }
    if (!isElement(node)) continue;
    const name = node.tagName.toLowerCase();
    if (node.namespaceURI !== XHTML_NS || !ALLOWED_ELEMENTS.has(name)) {
      add(`The narrative contains the element <${name.slice(0, 40)}>, which is not allowed (txt-1)`);
      continue;
    }
    hasContent ||= name === 'img';
    for (const attr of node.attrs) {
      const attrName = attributeName(attr);
      if (attrName.startsWith('on') || !ALLOWED_ATTRIBUTES.has(attrName)) {
        add(
          `The narrative uses the attribute '${attrName.slice(0, 40)}' on <${name}>, which is not allowed (txt-1)`,
        );
      } else if ((attrName === 'href' || attrName === 'src') && isActiveUrl(attr.value, name === 'img')) {
        add(`The narrative links to an active URL in '${attrName}' on <${name}>`);
      } else if (attrName === 'style' && activeCss(attr.value, true)) {
        add(`The narrative has an active style on <${name}>`);
      }
    }
  }
  if (!hasContent) {
    add('The narrative must have some non-whitespace content (txt-2)');
  }
  return problems;
}
