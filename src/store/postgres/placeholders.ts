/**
 * Turns the `?` placeholders of the shared SQL builder (src/store/sql/search-sql.ts) into
 * PostgreSQL's numbered `$1, $2, …`, leaving `?` inside quoted literals and identifiers alone.
 * The builder emits no comments and no `?`-operators, so a quote-aware scan is exact.
 */
export function numberPlaceholders(sql: string, firstIndex = 1): string {
  let out = '';
  let n = firstIndex;
  let quote: "'" | '"' | undefined;
  for (const ch of sql) {
    if (quote) {
      // A doubled quote inside a literal toggles twice, which comes to the same thing.
      if (ch === quote) {
        quote = undefined;
      }
      out += ch;
    } else if (ch === "'" || ch === '"') {
      quote = ch;
      out += ch;
    } else if (ch === '?') {
      out += `$${n++}`;
    } else {
      out += ch;
    }
  }
  return out;
}
