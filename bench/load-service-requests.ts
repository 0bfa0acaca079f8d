import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { loadFhirDefinitions } from '../src/fhir/definitions.js';
import type { Resource } from '@medplum/fhirtypes';
import { openStore } from '../src/store/open-store.js';
import {
  buildPatient,
  buildPractitioner,
  buildReferral,
  patientCount,
  PRACTITIONER_COUNT,
} from './support/referral.js';

/**
 * Fills a SQLite database with `count` realistic PT referrals (bench/support/referral.ts), plus
 * the Patients and Practitioners they reference, through the store contract as the service writes
 * them, but many per transaction: one commit (one fsync under synchronous=FULL) per request is
 * what makes loading over HTTP slow. The referrals are the ones the throughput benchmark posts
 * through the service's validation, and are indexed by the store as any write is, so
 * search sees what a real create stores. What the store contract does not do is run the referral
 * workflow: no EpisodeOfCare or Task is created per referral, and the status mix
 * (active/completed/revoked) is written as is.
 *
 * CLI: tsx bench/load-service-requests.ts <database file> <count> [batch size]
 */
export interface LoadOptions {
  /** A `sqlite:<path>` URL, as DATABASE_URL. */
  databaseUrl: string;
  count: number;
  /** Writes per transaction. */
  batchSize?: number;
  /** Patients to create besides Patient/pt-0..pt-(count/5 - 1), e.g. for later creates over HTTP. */
  extraPatientIds?: string[];
  /** Called after each committed batch with the number of referrals written so far. */
  onProgress?: (written: number) => void;
}

export interface LoadSummary {
  count: number;
  seconds: number;
  perSecond: number;
}

export async function loadServiceRequests(options: LoadOptions): Promise<LoadSummary> {
  const batchSize = options.batchSize ?? 2000;
  loadFhirDefinitions();
  const store = await openStore(options.databaseUrl);
  const started = performance.now();
  try {
    const referenced: Resource[] = [
      ...Array.from({ length: PRACTITIONER_COUNT }, (_, i) => buildPractitioner(`pr-${i}`)),
      ...Array.from({ length: patientCount(options.count) }, (_, i) => buildPatient(`pt-${i}`)),
      ...(options.extraPatientIds ?? []).map(buildPatient),
    ];
    for (let start = 0; start < referenced.length; start += batchSize) {
      await store.transaction(async (tx) => {
        for (const resource of referenced.slice(start, start + batchSize)) {
          const id = resource.id as string;
          await tx.write({
            resourceType: resource.resourceType,
            id,
            resource,
          });
        }
      });
    }
    for (let start = 0; start < options.count; start += batchSize) {
      const end = Math.min(options.count, start + batchSize);
      await store.transaction(async (tx) => {
        for (let i = start; i < end; i++) {
          // Ids are derived from the index, so a reload of the same file would update, not duplicate.
          const id = `sr-${i}`;
          const resource = { ...buildReferral(i, options.count), id };
          await tx.write({ resourceType: 'ServiceRequest', id, resource });
        }
      });
      options.onProgress?.(end);
    }
  } finally {
    await store.close();
  }
  const seconds = (performance.now() - started) / 1000;
  return { count: options.count, seconds, perSecond: options.count / seconds };
}

async function cli(): Promise<void> {
  const [file, countArg, batchArg] = process.argv.slice(2);
  const count = Number(countArg);
  if (!file || !Number.isInteger(count) || count <= 0) {
    console.error('usage: tsx bench/load-service-requests.ts <database file> <count> [batch size]');
    process.exitCode = 2;
    return;
  }
  const path = resolve(file);
  if (existsSync(path)) {
    console.warn(`${path} exists: referrals sr-0..sr-${count - 1} will be written as new versions`);
  }
  const summary = await loadServiceRequests({
    databaseUrl: `sqlite:${path}`,
    count,
    batchSize: batchArg ? Number(batchArg) : undefined,
    onProgress: (n) => process.stdout.write(`\r${n}/${count}`),
  });
  console.log(
    `\nLoaded ${summary.count} ServiceRequests, with their Patients and Practitioners, into ${path} ` +
      `in ${summary.seconds.toFixed(1)} s (${Math.round(summary.perSecond)} referrals/s)`,
  );
}

// Run as a CLI only when executed directly, not when imported by search-scaling.ts.
if (process.argv[1] && import.meta.url === pathToFileURL(resolve(process.argv[1])).href) {
  cli().catch((err: unknown) => {
    console.error(err);
    process.exitCode = 1;
  });
}
