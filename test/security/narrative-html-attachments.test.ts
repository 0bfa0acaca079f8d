import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import request from 'supertest';
import type { OperationOutcome } from '@medplum/fhirtypes';
import { FHIR_JSON, startTestApp, type TestApp } from '../support/test-app.js';

/**
 * Issue 11, item 7: active HTML content from clients is refused. An Attachment whose content type
 * a browser renders as a page (text/html, application/xhtml+xml, image/svg+xml) and whose `data`
 * carries script, event handlers or script URLs is refused with 422, naming the Attachment;
 * decided on the parse5 tree of the decoded data, as narrative is.
 */
const b64 = (text: string): string => Buffer.from(text, 'utf8').toString('base64');

function communication(contentType: string, text: string, encode = b64) {
  return {
    resourceType: 'Communication',
    status: 'completed',
    payload: [
      { contentString: 'See the letter' },
      { contentAttachment: { contentType, data: encode(text), title: 'Letter' } },
    ],
  };
}

describe('HTML attachments from clients', () => {
  let t: TestApp;
  beforeAll(async () => {
    t = await startTestApp();
  });
  afterAll(async () => {
    await t?.close();
  });

  const post = (body: unknown, path = '/fhir/Communication') =>
    request(t.app).post(path).set('content-type', FHIR_JSON).send(JSON.stringify(body));

  it.each([
    ['text/html', '<html><body><p>Dear colleague</p><script>alert(1)</script></body></html>'],
    ['text/html; charset=utf-8', '<p title=">" onclick="alert(1)">Dear colleague</p>'],
    ['TEXT/HTML', '<a href="java&Tab;script:alert(1)">open</a>'],
    ['text/html', '<iframe src="https://evil.example"></iframe>'],
    ['text/html', '<meta http-equiv="refresh" content="0;url=https://evil.example">'],
    ['application/xhtml+xml', '<html xmlns="http://www.w3.org/1999/xhtml"><body onload="alert(1)"/></html>'],
    ['application/xhtml+xml', '<x:script xmlns:x="http://www.w3.org/1999/xhtml">alert(1)</x:script>'],
    ['image/svg+xml', '<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>'],
    [
      'image/svg+xml',
      '<svg xmlns="http://www.w3.org/2000/svg"><a xlink:href="javascript:alert(1)"><text>x</text></a></svg>',
    ],
    [
      'image/svg+xml',
      '<svg xmlns="http://www.w3.org/2000/svg"><p><style><script>alert(1)</script></style></p></svg>',
    ],
    [
      'image/svg+xml',
      '<svg xmlns="http://www.w3.org/2000/svg"><set attributeName="href" to="javascript:alert(1)"/></svg>',
    ],
    [
      'image/svg+xml',
      '<?xml-stylesheet type="text/xsl" href="https://evil.example/x.xsl"?><svg xmlns="http://www.w3.org/2000/svg"/>',
    ],
    [
      'image/svg+xml',
      '<!DOCTYPE svg [<!ENTITY x "<script>alert(1)</script>">]><svg xmlns="http://www.w3.org/2000/svg">&x;</svg>',
    ],
  ])('refuses a %s attachment with active content (%s) with 422 naming it', async (contentType, text) => {
    const res = await post(communication(contentType, text));
    expect(res.status, JSON.stringify(res.body)).toBe(422);
    const issue = (res.body as OperationOutcome).issue?.[0];
    expect(issue?.code).toBe('security');
    expect(issue?.expression?.[0]).toBe('Communication.payload[1].contentAttachment');
  });

  it.each([
    ['application/pdf', 'javascript:alert(1)'],
    ['text/html', 'JaVaScRiPt:alert(1)'],
  ])('refuses a %s attachment whose url is a script URL (%j)', async (contentType, url) => {
    const res = await post({
      resourceType: 'Communication',
      status: 'completed',
      payload: [{ contentAttachment: { contentType, url, title: 'Letter' } }],
    });
    expect(res.status, JSON.stringify(res.body)).toBe(422);
    expect((res.body as OperationOutcome).issue?.[0]?.expression?.[0]).toBe(
      'Communication.payload[0].contentAttachment.url',
    );
  });

  it('refuses a UTF-16 HTML attachment with a script, decoded by its byte-order mark', async () => {
    const utf16 = (text: string) =>
      Buffer.concat([Buffer.from([0xff, 0xfe]), Buffer.from(text, 'utf16le')]).toString('base64');
    const res = await post(communication('text/html', '<script>alert(1)</script>', utf16));
    expect(res.status, JSON.stringify(res.body)).toBe(422);
  });

  it('names the attachment inside a transaction entry', async () => {
    const res = await post(
      {
        resourceType: 'Bundle',
        type: 'transaction',
        entry: [
          {
            fullUrl: 'urn:uuid:7d1c5c1e-6a5e-4b59-9d0e-1c3a43b9f001',
            resource: communication('text/html', '<img src=x onerror=alert(1)>'),
            request: { method: 'POST', url: 'Communication' },
          },
        ],
      },
      '/fhir',
    );
    expect(res.status, JSON.stringify(res.body)).toBe(422);
    expect((res.body as OperationOutcome).issue?.[0]?.expression?.[0]).toBe(
      'Bundle.entry[0].resource.payload[1].contentAttachment',
    );
  });

  it.each([
    [
      'text/html',
      '<html><head><title>Letter</title><style>p { color: #333 }</style></head><body><p>Dear colleague, <a href="https://example.org">notes</a></p></body></html>',
    ],
    [
      'image/svg+xml',
      '<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"><rect width="10" height="10"/></svg>',
    ],
    ['text/plain', '<script>alert(1)</script> is how a script looks'],
  ])('accepts a %s attachment without active content', async (contentType, text) => {
    const res = await post(communication(contentType, text));
    expect(res.status, JSON.stringify(res.body)).toBe(201);
  });
});
