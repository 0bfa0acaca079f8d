import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import request from 'supertest';
import type { OperationOutcome } from '@medplum/fhirtypes';
import { FHIR_JSON, startTestApp, type TestApp } from '../support/test-app.js';

/**
 * Issue 11, item 13: narrative safety is decided on the tree a real HTML parser builds (element
 * and attribute names, attribute values after entity decoding, URL schemes after the whitespace
 * and control characters a browser ignores are gone), not on regular expressions over the text.
 * See: https://hl7.org/fhir/R4/narrative.html#security (txt-1, txt-2).
 */
const XHTML = 'http://www.w3.org/1999/xhtml';
const div = (inner: string, open = `<div xmlns="${XHTML}">`): string => `${open}${inner}</div>`;

describe('narrative safety through a real HTML parser', () => {
  let t: TestApp;
  beforeAll(async () => {
    t = await startTestApp();
  });
  afterAll(async () => {
    await t?.close();
  });

  const post = (narrative: string) =>
    request(t.app)
      .post('/fhir/Patient')
      .set('content-type', FHIR_JSON)
      .send(
        JSON.stringify({
          resourceType: 'Patient',
          text: { status: 'generated', div: narrative },
          name: [{ family: 'Narrative' }],
        }),
      );

  it.each([
    ['an event handler after an attribute value holding ">"', div('<a title=">" onclick="alert(1)">x</a>')],
    ['an event handler after a single-quoted ">"', div(`<img title='>' src="x.png" onerror="alert(1)"/>x`)],
    ['a javascript: URL split by a named tab entity', div('<a href="java&Tab;script:alert(1)">x</a>')],
    [
      'a javascript: URL split by a named newline entity',
      div('<a href="java&NewLine;script:alert(1)">x</a>'),
    ],
    [
      'a javascript: URL with an entity-encoded colon, no semicolon',
      div('<a href="javascript&#58alert(1)">x</a>'),
    ],
    ['a vbscript: URL in upper case behind spaces', div('<a href="  VBSCRIPT:msgbox(1)">x</a>')],
    ['a data: URL that is not an image in a link', div('<a href="data:text/html,&lt;script&gt;">x</a>')],
    ['an SVG image as a data: URL', div('<img src="data:image/svg+xml;base64,PHN2Zz48L3N2Zz4=" alt="x"/>')],
    ['a CSS expression hidden by a CSS escape', div('<p style="width: expr\\65 ssion(alert(1))">x</p>')],
    [
      'a style url() to HTML content hidden by a CSS comment',
      div('<p style="background: u/**/rl(data:text/html,x)">x</p>'),
    ],
    ['a script element', div('<script>alert(1)</script>x')],
    ['an svg element carrying a script', div('<svg><script>alert(1)</script></svg>x')],
    ['a CDATA section', div('x<![CDATA[ y ]]>')],
    ['a processing instruction', div('x<?php echo 1 ?>')],
    [
      'a root div without the XHTML namespace even if a child declares it',
      div(`<span xmlns="${XHTML}">x</span>`, '<div>'),
    ],
    ['content after the root div', `${div('x')}<img src="x" onerror="alert(1)">`],
  ])('refuses %s with 400 unsafe-narrative at Patient.text.div', async (_what, narrative) => {
    const res = await post(narrative);
    expect(res.status, JSON.stringify(res.body)).toBe(400);
    const issue = (res.body as OperationOutcome).issue?.[0];
    expect(issue?.details?.coding?.[0]?.code).toBe('unsafe-narrative');
    expect(issue?.expression?.[0]).toBe('Patient.text.div');
  });

  it.each([
    ['markup-like text inside an attribute value', div('<span title="&lt;script&gt; is text">x</span>')],
    [
      'an entity-encoded "javascript:" as link text, not as a URL',
      div('<a href="https://example.org/a">java&#115;cript:</a>'),
    ],
    ['a raster image as a data: URL', div('<img src="data:image/png;base64,iVBORw0KGgo=" alt="dot"/>')],
    ['a link to a contained resource and a named anchor', div('<a href="#p1">see</a><a name="p1">here</a>')],
    ['a table with inline style', div('<table style="border: 1px solid"><tr><td>1</td></tr></table>')],
  ])('accepts %s', async (_what, narrative) => {
    const res = await post(narrative);
    expect(res.status, JSON.stringify(res.body)).toBe(201);
  });
});
