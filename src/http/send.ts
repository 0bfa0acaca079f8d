import type { Request, Response } from 'express';
import type { OperationOutcome, Resource } from '@medplum/fhirtypes';
import { withoutSecrets } from '../delivery/subscription-secret.js';
import { informationOutcome } from '../fhir/errors.js';
import { versionLocation, weakEtag, type RestResult } from '../rest/rest-result.js';
import type { Preferences } from './prefer.js';

export const FHIR_JSON = 'application/fhir+json; charset=utf-8';

/**
 * Every FHIR body leaves through here, so write-only elements (a Subscription's signing secret)
 * are removed in this one place, whichever interaction produced the body.
 */
export function sendJson(res: Response, status: number, body: Resource | OperationOutcome): void {
  res
    .status(status)
    .type(FHIR_JSON)
    .send(JSON.stringify(withoutSecrets(body)));
}

/**
 * Frames an interaction result: ETag/Last-Modified for every version, Location for creates, and the
 * body chosen by `Prefer: return=` (https://hl7.org/fhir/R4/http.html#ops).
 */
export function sendResult(
  req: Request,
  res: Response,
  result: RestResult,
  prefer: Preferences,
  baseUrl: string,
): void {
  const v = result.version;
  if (v && !v.deleted) {
    res.setHeader('ETag', weakEtag(v.versionId));
    res.setHeader('Last-Modified', new Date(v.lastUpdated).toUTCString());
  }
  if (v && result.written && result.status === 201) {
    res.setHeader('Location', versionLocation(baseUrl, v));
  }
  if (result.status === 204 || !result.resource) {
    res.status(result.status === 200 && !result.resource ? 204 : result.status).end();
    return;
  }
  if (result.written || (req.method === 'POST' && result.status === 200)) {
    if (prefer.return === 'minimal') {
      res.status(result.status).end();
      return;
    }
    if (prefer.return === 'OperationOutcome') {
      sendJson(res, result.status, result.outcome ?? informationOutcome(`${req.method} succeeded`));
      return;
    }
  }
  sendJson(res, result.status, result.resource);
}
