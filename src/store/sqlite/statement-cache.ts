import type Database from 'better-sqlite3';

/**
 * Prepared statements kept per SQLite connection. Search SQL varies with the query (one `?` per
 * value, one clause per parameter), so caching every text for ever grew without bound (300
 * differently sized `_id` lists: +192 MB). 200 holds every fixed statement of the store plus the
 * common search shapes; a shape dropped is prepared again when it comes back (tens of µs).
 */
export const STATEMENT_CACHE_SIZE = 200;

/** Least recently used eviction over a Map, whose iteration order is insertion order. */
export class StatementCache {
  private readonly statements = new Map<string, Database.Statement>();

  constructor(
    private readonly prepare: (sql: string) => Database.Statement,
    private readonly capacity = STATEMENT_CACHE_SIZE,
  ) {}

  get size(): number {
    return this.statements.size;
  }

  get(sql: string): Database.Statement {
    let statement = this.statements.get(sql);
    if (statement) {
      // Most recently used goes last.
      this.statements.delete(sql);
    } else {
      statement = this.prepare(sql);
      if (this.statements.size >= this.capacity) {
        const oldest = this.statements.keys().next().value as string;
        // better-sqlite3 finalizes a statement when it is garbage-collected.
        this.statements.delete(oldest);
      }
    }
    this.statements.set(sql, statement);
    return statement;
  }
}
