import type { Request } from 'express';

/** The `Prefer` header (RFC 7240) as FHIR uses it: https://hl7.org/fhir/R4/http.html#ops */
export interface Preferences {
  return: 'minimal' | 'representation' | 'OperationOutcome';
  strict: boolean;
}

export function readPreferences(req: Request): Preferences {
  const raw = req.headers.prefer ?? '';
  const header = Array.isArray(raw) ? raw.join(',') : raw;
  const tokens = header.split(/[,;]/).map((t) => t.trim());
  const ret = tokens
    .find((t) => t.startsWith('return='))
    ?.slice('return='.length)
    .replace(/"/g, '');
  return {
    return: ret === 'minimal' || ret === 'OperationOutcome' ? ret : 'representation',
    strict: tokens.includes('handling=strict'),
  };
}
