import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Resource } from '@medplum/fhirtypes';

/** The shared public FHIR examples (../shared/fhir-examples), read-only. */
export const SHARED_EXAMPLES_DIR = new URL('../../../shared/fhir-examples/', import.meta.url).pathname;

export function readExample<T extends Resource = Resource>(relativePath: string): T {
  return JSON.parse(readFileSync(join(SHARED_EXAMPLES_DIR, relativePath), 'utf8')) as T;
}

export function listExamples(folder: string): string[] {
  return readdirSync(join(SHARED_EXAMPLES_DIR, folder))
    .filter((f) => f.endsWith('.json'))
    .sort();
}
