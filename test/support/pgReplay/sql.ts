/** Quoting of identifiers and literals, as the provider quotes them. */

/** lib/pq QuoteIdentifier. */
export function quoteIdent(name: string): string {
  const end = name.indexOf("\u0000");
  const s = end >= 0 ? name.slice(0, end) : name;
  return `"${s.replace(/"/g, '""')}"`;
}

/** helpers.go pqQuoteLiteral (doubles backslashes and quotes), wrapped in quotes as its callers do. */
export function quoteLiteral(value: string): string {
  return `'${value.replace(/\\/g, "\\\\").replace(/'/g, "''")}'`;
}
