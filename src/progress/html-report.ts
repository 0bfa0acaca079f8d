import type { ReportDoc } from './report-doc.js';

/**
 * The update as a small, complete HTML document a physician can open in their EHR
 * (Communication.payload.contentAttachment). Every string from the record is escaped: patient
 * names, goal texts and advice are data, never markup. No scripts, no external resources.
 */
export function renderHtml(doc: ReportDoc): string {
  const body: string[] = [`<h1>${escapeHtml(doc.title)}</h1>`, `<p>${escapeHtml(doc.referralLine)}</p>`];
  for (const block of doc.blocks) {
    switch (block.kind) {
      case 'paragraph':
        body.push(`<p>${escapeHtml(block.text)}</p>`);
        break;
      case 'list':
        body.push(
          `<h2>${escapeHtml(block.heading)}</h2>`,
          `<ul>${block.items.map((i) => `<li>${escapeHtml(i)}</li>`).join('')}</ul>`,
        );
        break;
      case 'outcomes':
        body.push(
          `<h2>${escapeHtml(block.heading)}</h2>`,
          '<table>',
          '<thead><tr><th>Measure</th><th>Latest</th><th>Initial</th><th>Change</th></tr></thead>',
          '<tbody>',
          ...block.rows.map(
            (r) =>
              `<tr><td>${escapeHtml(r.label)}</td><td>${escapeHtml(r.latest)}</td>` +
              `<td>${escapeHtml(r.baseline ?? '')}</td>` +
              `<td>${escapeHtml([r.change, r.mcid && `(${r.mcid})`].filter(Boolean).join(' '))}</td></tr>`,
          ),
          '</tbody>',
          '</table>',
        );
        break;
    }
  }
  body.push(`<p>${doc.signOff.map(escapeHtml).join('<br>')}</p>`);
  return [
    '<!DOCTYPE html>',
    '<html lang="en">',
    '<head>',
    '<meta charset="utf-8">',
    `<title>${escapeHtml(doc.title)}</title>`,
    '<style>body{font-family:sans-serif;max-width:48em}table{border-collapse:collapse}' +
      'th,td{border:1px solid #999;padding:4px 8px;text-align:left;vertical-align:top}</style>',
    '</head>',
    '<body>',
    ...body,
    '</body>',
    '</html>',
    '',
  ].join('\n');
}

const ESCAPES: Record<string, string> = {
  '&': '&amp;',
  '<': '&lt;',
  '>': '&gt;',
  '"': '&quot;',
  "'": '&#39;',
};

/** Text content and attribute values alike (https://html.spec.whatwg.org/#escapingString). */
export function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => ESCAPES[c] as string);
}
