import { readdirSync, readFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { join } from 'node:path';
import type { Bundle, Resource } from '@medplum/fhirtypes';
import { PROFILES } from '../src/validation/profile-registry.js';
import { ResourceValidator, type ValidationOptions } from '../src/validation/resource-validator.js';
import { envNumber, environment, fixed, printTable, saveResults } from './support/report.js';

/**
 * What validation costs per resource, in process and without HTTP or storage: the CPU that every
 * create spends in ResourceValidator.validate before anything is written.
 *
 * Env: BENCH_N (calls per timed batch, default 200), BENCH_BATCHES (timed batches, default 7;
 * the median is reported, so one GC pause or scheduler hiccup does not move the figure).
 */
const N = envNumber('BENCH_N', 200);
const BATCHES = envNumber('BENCH_BATCHES', 7);
const FIXTURES = new URL('../fixtures/', import.meta.url).pathname;

interface Case {
  name: string;
  resources: Resource[];
  options?: ValidationOptions;
}

interface Row {
  name: string;
  usPerResource: number;
  resourcesPerSecond: number;
  /**
   * Process CPU time per call: it moves much less than wall time when other processes compete for
   * the CPU, so figures from a busy machine stay comparable.
   */
  cpuUsPerResource: number;
  batchUs: number[];
}

function fixture<T extends Resource>(file: string): T {
  return JSON.parse(readFileSync(join(FIXTURES, file), 'utf8')) as T;
}

/** The ServiceRequest without its meta.profile claim, so only base R4 is checked. */
function withoutProfileClaim(resource: Resource): Resource {
  const { meta: _meta, ...rest } = resource;
  return rest as Resource;
}

/**
 * Median µs per call over BATCHES batches of N calls, after a warm-up of N calls (JIT, caches).
 * For a case with several resources (all 10 Bundles) each call takes the next one in turn, so the
 * figure is the mean over them.
 */
function measure(validator: ResourceValidator, c: Case): Row {
  const run = (count: number): void => {
    for (let i = 0; i < count; i++) {
      const result = validator.validate(c.resources[i % c.resources.length] as Resource, c.options);
      // An invalid fixture would time the error path, not an intake: refuse to report it.
      if (result.failure) {
        throw new Error(`${c.name}: fixture is invalid (${result.issues[0]?.details?.text ?? '?'})`);
      }
    }
  };
  run(N);
  const batchUs: number[] = [];
  const batchCpuUs: number[] = [];
  for (let b = 0; b < BATCHES; b++) {
    const cpu = process.cpuUsage();
    const started = performance.now();
    run(N);
    batchUs.push(((performance.now() - started) * 1000) / N);
    const used = process.cpuUsage(cpu);
    batchCpuUs.push((used.user + used.system) / N);
  }
  const usPerResource = median(batchUs);
  return {
    name: c.name,
    usPerResource,
    resourcesPerSecond: 1e6 / usPerResource,
    cpuUsPerResource: median(batchCpuUs),
    batchUs,
  };
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)] ?? Number.NaN;
}

function main(): void {
  // Other work on the machine inflates every figure; the 1-minute load average says how much.
  const loadBefore = loadavg()[0] ?? Number.NaN;
  const constructStarted = performance.now();
  const validator = new ResourceValidator();
  const constructionMs = performance.now() - constructStarted;

  const referral = fixture<Resource>('ServiceRequest-referral-knee-oa.json');
  const bundleFiles = readdirSync(FIXTURES)
    .filter((f) => /^Bundle-referral-.*\.json$/.test(f))
    .sort();
  const bundles = bundleFiles.map((f) => ({ file: f, bundle: fixture<Bundle>(f) }));
  // "Largest" by serialised size: that is what a client sends and what validation walks.
  const largest = bundles.reduce((a, b) =>
    JSON.stringify(b.bundle).length > JSON.stringify(a.bundle).length ? b : a,
  );

  const cases: Case[] = [
    { name: 'ServiceRequest, base R4 only', resources: [withoutProfileClaim(referral)] },
    {
      name: 'ServiceRequest + referral profile',
      resources: [referral],
      options: { profiles: [PROFILES.referralServiceRequest] },
    },
    {
      name: `Bundle, largest (${largest.file.replace(/^Bundle-referral-|\.json$/g, '')}, ${largest.bundle.entry?.length ?? 0} entries)`,
      resources: [largest.bundle],
    },
    { name: `Bundle, mean of all ${bundles.length}`, resources: bundles.map((b) => b.bundle) },
    { name: 'Patient (example-patient)', resources: [fixture<Resource>('Patient-example-patient.json')] },
  ];
  const rows = cases.map((c) => measure(validator, c));
  const loadAfter = loadavg()[0] ?? Number.NaN;

  console.log(
    `ResourceValidator construction: ${fixed(constructionMs, 0)} ms (FHIR definitions, terminology, profiles)`,
  );
  console.log(
    `median of ${BATCHES} batches of ${N} calls each, after ${N} warm-up calls; load average ${fixed(loadBefore, 2)} → ${fixed(loadAfter, 2)}\n`,
  );
  printTable(
    ['case', 'µs/resource', 'resources/s', 'CPU µs/resource'],
    rows.map((r) => [
      r.name,
      fixed(r.usPerResource, 1),
      fixed(r.resourcesPerSecond, 0),
      fixed(r.cpuUsPerResource, 1),
    ]),
  );
  const file = saveResults('validation-cost', {
    environment: environment(),
    n: N,
    batches: BATCHES,
    constructionMs,
    loadAverage: { before: loadBefore, after: loadAfter },
    rows,
  });
  console.log(`\nsaved ${file}`);
}

main();
