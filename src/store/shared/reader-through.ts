import type { Resource } from '@medplum/fhirtypes';
import type { SearchQuery } from '../../fhir/search/search-query.js';
import type { HistoryPage, HistoryRequest, SearchResult, StoreReader, StoredVersion } from '../fhir-store.js';

/**
 * A StoreReader that hands every read to another reader, reached through `reading` (which may take
 * a lock, or pick the transaction's connection). The stores and their transactions all read so.
 */
export abstract class ReaderThrough implements StoreReader {
  protected abstract reading<T>(work: (reader: StoreReader) => Promise<T>): Promise<T>;

  read(resourceType: string, id: string): Promise<StoredVersion | undefined> {
    return this.reading((r) => r.read(resourceType, id));
  }

  vread(resourceType: string, id: string, versionId: string): Promise<StoredVersion | undefined> {
    return this.reading((r) => r.vread(resourceType, id, versionId));
  }

  search(query: SearchQuery): Promise<SearchResult> {
    return this.reading((r) => r.search(query));
  }

  readReferences(references: string[]): Promise<Resource[]> {
    return this.reading((r) => r.readReferences(references));
  }

  history(request: HistoryRequest): Promise<HistoryPage> {
    return this.reading((r) => r.history(request));
  }
}
