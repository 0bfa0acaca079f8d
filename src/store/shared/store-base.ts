import type { StoreStats } from '../fhir-store.js';
import { ReaderThrough } from './reader-through.js';
import { Versioning } from './versioning.js';

/** What both dialects' stores share: reads through a reader, and their own versioning and counts. */
export abstract class StoreBase extends ReaderThrough {
  /** This store's alone: its lastUpdated clock and its counts are not shared with other stores. */
  protected readonly versions = new Versioning();

  get stats(): StoreStats {
    return this.versions.stats;
  }
}
