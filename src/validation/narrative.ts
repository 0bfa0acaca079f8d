/**
 * Narrative safety (R4 txt-1, txt-2 and https://hl7.org/fhir/R4/narrative.html#security): the XHTML
 * in `text.div` may use only basic formatting. Anything that can run code or fetch content on the
 * reader's screen is refused: script and style-sheet elements, event-handler attributes, frames,
 * forms, embedded objects, and `javascript:`/`vbscript:`/`data:` URLs (other than images).
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

export interface NarrativeProblem {
  message: string;
}

export function checkNarrative(div: string): NarrativeProblem[] {
  const problems: NarrativeProblem[] = [];
  if (!/^\s*<div[\s>]/i.test(div) || !/xmlns\s*=\s*["']http:\/\/www\.w3\.org\/1999\/xhtml["']/.test(div)) {
    problems.push({
      message: 'The narrative must be an XHTML <div> in the namespace http://www.w3.org/1999/xhtml',
    });
  }
  const text = div.replace(/<[^>]*>/g, '').replace(/&[a-z#0-9]+;/gi, 'x');
  const hasImage = /<img\s/i.test(div);
  if (text.trim() === '' && !hasImage) {
    problems.push({ message: 'The narrative must have some non-whitespace content (txt-2)' });
  }
  const tag = /<\/?([A-Za-z][A-Za-z0-9:-]*)([^>]*)>/g;
  for (let m = tag.exec(div); m; m = tag.exec(div)) {
    const name = (m[1] as string).toLowerCase();
    if (!ALLOWED_ELEMENTS.has(name)) {
      problems.push({
        message: `The narrative contains the element <${name}>, which is not allowed (txt-1)`,
      });
      continue;
    }
    const attributes = /([A-Za-z_:][A-Za-z0-9_:.-]*)\s*(?:=\s*("[^"]*"|'[^']*'|[^\s>]+))?/g;
    const rest = m[2] ?? '';
    for (let a = attributes.exec(rest); a; a = attributes.exec(rest)) {
      const attr = (a[1] as string).toLowerCase();
      const value = (a[2] ?? '').replace(/^["']|["']$/g, '');
      if (attr === '/') continue;
      if (attr.startsWith('on') || !ALLOWED_ATTRIBUTES.has(attr)) {
        problems.push({
          message: `The narrative uses the attribute '${attr}' on <${name}>, which is not allowed (txt-1)`,
        });
      } else if ((attr === 'href' || attr === 'src') && isActiveUrl(value, name)) {
        problems.push({ message: `The narrative links to an active URL in '${attr}' on <${name}>` });
      } else if (attr === 'style' && /expression\s*\(|url\s*\(|javascript:/i.test(value)) {
        problems.push({ message: `The narrative has an active style on <${name}>` });
      }
    }
  }
  if (/<!\[CDATA\[|<!DOCTYPE|<\?/i.test(div)) {
    problems.push({ message: 'The narrative contains CDATA, a DOCTYPE or a processing instruction' });
  }
  return problems;
}

// eslint-disable-next-line no-control-regex
const CONTROL_OR_SPACE = /[\s\u0000-\u001f]/g;

function isActiveUrl(value: string, element: string): boolean {
  // Browsers ignore whitespace and control characters inside a URL scheme (`java\tscript:`).
  const url = decodeEntities(value).replace(CONTROL_OR_SPACE, '').toLowerCase();
  if (url.startsWith('javascript:') || url.startsWith('vbscript:')) return true;
  return url.startsWith('data:') && !(element === 'img' && /^data:image\/(png|gif|jpeg|webp);/.test(url));
}

function decodeEntities(value: string): string {
  return value
    .replace(/&#x([0-9a-f]+);?/gi, (_, h: string) => String.fromCodePoint(parseInt(h, 16)))
    .replace(/&#(\d+);?/g, (_, d: string) => String.fromCodePoint(Number(d)))
    .replace(/&colon;/gi, ':');
}
