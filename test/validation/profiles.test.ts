import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Resource, StructureDefinition } from '@medplum/fhirtypes';
import { describe, expect, it } from 'vitest';
import { baseDefinitions, generateSnapshot, PROFILES_DIR, SOURCE_DIR } from '../../scripts/build-profiles.js';
import { sharedValidator } from '../support/test-app.js';

const read = <T>(path: string): T => JSON.parse(readFileSync(path, 'utf8')) as T;

describe('the service profiles', () => {
  const sources = readdirSync(SOURCE_DIR).filter((f) => f.endsWith('.json'));

  it.each(sources)('%s: the committed snapshot is exactly what the generator makes', (file) => {
    const source = read<StructureDefinition>(join(SOURCE_DIR, file));
    const base = baseDefinitions().get(source.baseDefinition as string) as StructureDefinition;
    const committed = read<StructureDefinition>(join(PROFILES_DIR, `StructureDefinition-${source.id}.json`));
    expect(committed).toEqual(generateSnapshot(source, base));
    expect(committed.differential?.element?.length).toBeGreaterThan(0);
    expect(committed.url).toMatch(/^https:\/\/ptreferral\.dev\/fhir\/StructureDefinition\//);
  });

  it.each(readdirSync(PROFILES_DIR).filter((f) => f.endsWith('.json')))(
    '%s is itself a valid R4 resource',
    (file) => {
      const resource = read<Resource>(join(PROFILES_DIR, file));
      const result = sharedValidator().validate(resource);
      expect(
        result.issues.filter((i) => i.severity === 'error'),
        file,
      ).toEqual([]);
    },
  );

  it('refuses to generate a snapshot for a differential path the base does not have', () => {
    const source = read<StructureDefinition>(join(SOURCE_DIR, sources[0] as string));
    const base = baseDefinitions().get(source.baseDefinition as string) as StructureDefinition;
    const broken = {
      ...source,
      differential: {
        element: [
          { id: 'ServiceRequest.identifier.system', path: 'ServiceRequest.identifier.system', min: 1 },
        ],
      },
    };
    expect(() => generateSnapshot(broken, base)).toThrow(/not in the base snapshot/);
  });
});
