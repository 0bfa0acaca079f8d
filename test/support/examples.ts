import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Resource } from '@medplum/fhirtypes';

/**
 * Public FHIR example data written outside this project (the official R4 examples in `r4-core/`,
 * from GitHub FHIR/fhir-test-cases `r4/examples`, CC0), read-only. The repository does not ship
 * them: they are found through the one setting FHIR_EXAMPLES_DIR (a path, relative to the working
 * directory), by default the folder `shared/fhir-examples` beside the repository.
 */
const REPO_ROOT = fileURLToPath(new URL('../../', import.meta.url));
const SETTING = process.env.FHIR_EXAMPLES_DIR;
export const EXAMPLES_DIR = SETTING ? resolve(SETTING) : resolve(REPO_ROOT, '../shared/fhir-examples');
const PRESENT = existsSync(EXAMPLES_DIR);

/** CI as the CI services set it: any value but empty, 'false' or '0'. */
function underCi(): boolean {
  const ci = process.env.CI;
  return ci !== undefined && ci !== '' && ci !== 'false' && ci !== '0';
}

/**
 * Whether the suite named `suite` must skip because the examples folder is absent: outside CI it
 * prints a notice and answers true, for `describe.skipIf` / `it.skipIf`. Under CI, or when
 * FHIR_EXAMPLES_DIR names a folder that is not there, it throws, so the test file fails: a suite
 * that silently stops running proves nothing.
 */
export function skipWithoutExamples(suite: string): boolean {
  if (PRESENT) return false;
  const missing = `the FHIR examples folder ${EXAMPLES_DIR} does not exist`;
  if (underCi() || SETTING) {
    throw new Error(
      `${missing}, so "${suite}" cannot run` +
        (SETTING
          ? ' (FHIR_EXAMPLES_DIR names it).'
          : ' under CI. Set FHIR_EXAMPLES_DIR to the examples folder.'),
    );
  }
  console.warn(
    `[fhir-examples] SKIPPED "${suite}": ${missing}. To run it, set FHIR_EXAMPLES_DIR to a folder ` +
      'holding r4-core/ (the official FHIR R4 examples), or put that folder at ../shared/fhir-examples ' +
      'beside the repository.',
  );
  return true;
}

export function readExample<T extends Resource = Resource>(relativePath: string): T {
  return JSON.parse(readFileSync(join(EXAMPLES_DIR, relativePath), 'utf8')) as T;
}

/**
 * The example files of a folder, sorted. Without the examples (the suite skips) it is one
 * placeholder name, so that an `it.skipIf(...).each(...)` over it still counts as skipped.
 */
export function listExamples(folder: string): string[] {
  if (!PRESENT) return [`${folder}/*.json (examples absent)`];
  return readdirSync(join(EXAMPLES_DIR, folder))
    .filter((f) => f.endsWith('.json'))
    .sort();
}
