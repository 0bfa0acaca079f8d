import type { NextFunction, Request, Response } from 'express';
import { fhirError, isFhirError } from '../fhir/errors.js';

/**
 * Reads and parses request bodies for the FHIR API, instead of express.json(), to give every
 * failure its own 4xx and OperationOutcome: wrong media type (415), too large (413), invalid
 * UTF-8, nesting deeper than any real resource, prototype-polluting keys, or not JSON (400).
 */
const JSON_TYPES = new Set(['application/fhir+json', 'application/json', 'application/json+fhir']);
const FORM_TYPE = 'application/x-www-form-urlencoded';
/** Real resources nest well under this (deep Questionnaires reach ~20); JSON bombs go far deeper. */
export const MAX_JSON_DEPTH = 100;
const FORBIDDEN_KEYS = new Set(['__proto__', 'constructor', 'prototype']);

export interface ParsedBody {
  json?: unknown;
  form?: [string, string][];
}

declare module 'express-serve-static-core' {
  interface Request {
    fhirBody?: ParsedBody;
  }
}

export function readFhirBody(limitBytes: number) {
  return async (req: Request, res: Response, next: NextFunction): Promise<void> => {
    // PATCH is not implemented: its body is left unread so the router answers 405, not 415.
    if (req.method !== 'POST' && req.method !== 'PUT') {
      return next();
    }
    try {
      const mediaType = (req.headers['content-type'] ?? '').split(';')[0]?.trim().toLowerCase() ?? '';
      const charset = /charset=([^;]+)/i
        .exec(req.headers['content-type'] ?? '')?.[1]
        ?.trim()
        .toLowerCase();
      const declared = Number(req.headers['content-length'] ?? '0');
      if (declared > limitBytes) {
        throw tooLarge(res, limitBytes);
      }
      const raw = await readRaw(req, res, limitBytes);
      const isSearch = req.path.endsWith('/_search');
      if (raw.length === 0) {
        req.fhirBody = {};
        return next();
      }
      if (isSearch && mediaType === FORM_TYPE) {
        req.fhirBody = { form: [...new URLSearchParams(decodeUtf8(raw))] };
        return next();
      }
      if (!JSON_TYPES.has(mediaType)) {
        throw fhirError(
          'unsupported-media-type',
          `Content-Type '${mediaType || '(none)'}' is not supported; send application/fhir+json`,
        );
      }
      if (charset && charset !== 'utf-8' && charset !== 'utf8') {
        throw fhirError(
          'unsupported-media-type',
          `Charset '${charset}' is not supported; FHIR JSON is UTF-8`,
        );
      }
      req.fhirBody = { json: parseFhirJson(decodeUtf8(raw)) };
      next();
    } catch (err) {
      next(err);
    }
  };
}

/**
 * 413, and the connection is closed after the answer (`Connection: close`): otherwise Node would
 * go on reading, and discarding, whatever the client still sends of the refused body.
 */
function tooLarge(res: Response, limitBytes: number): Error {
  if (!res.headersSent) res.setHeader('Connection', 'close');
  return fhirError('body-too-large', `The body is larger than the limit of ${limitBytes} bytes`);
}

async function readRaw(req: Request, res: Response, limitBytes: number): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let size = 0;
  try {
    for await (const chunk of req) {
      size += (chunk as Buffer).length;
      if (size > limitBytes) throw tooLarge(res, limitBytes);
      chunks.push(chunk as Buffer);
    }
  } catch (err) {
    if (isFhirError(err)) throw err;
    // The client went away mid-body (the stream was aborted): there is no one left to answer,
    // and it is the client's doing, not the server's (a 4xx, never a logged 500).
    throw fhirError('body-not-json', 'The body ended before it was complete (the upload was cut off)');
  }
  return Buffer.concat(chunks);
}

const utf8 = new TextDecoder('utf-8', { fatal: true });

function decodeUtf8(raw: Buffer): string {
  try {
    return utf8.decode(raw).replace(/^\uFEFF/, '');
  } catch {
    throw fhirError('body-invalid-utf8', 'The body is not valid UTF-8');
  }
}

/** Parses JSON after checking nesting depth, and rejects keys that could pollute prototypes. */
export function parseFhirJson(text: string): unknown {
  assertDepth(text);
  let forbidden: string | undefined;
  let parsed: unknown;
  try {
    parsed = JSON.parse(text, (key, value) => {
      if (FORBIDDEN_KEYS.has(key)) {
        forbidden = key;
      }
      return value;
    });
  } catch {
    throw fhirError('body-not-json', 'The body is not valid JSON');
  }
  if (forbidden) {
    throw fhirError('body-forbidden-key', `The property name '${forbidden}' is not allowed`);
  }
  return parsed;
}

function assertDepth(text: string): void {
  let depth = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (c === 92 /* \ */) i++;
      else if (c === 34 /* " */) inString = false;
    } else if (c === 34) {
      inString = true;
    } else if (c === 123 /* { */ || c === 91 /* [ */) {
      if (++depth > MAX_JSON_DEPTH) {
        throw fhirError('body-too-deep', `The JSON nests deeper than ${MAX_JSON_DEPTH} levels`);
      }
    } else if (c === 125 || c === 93) {
      depth--;
    }
  }
}
