/**
 * The one place identifiers are turned into SQL. Everything else is passed as a parameter.
 */

const MAX_IDENTIFIER_BYTES = 63;

/** Quotes an identifier for PostgreSQL (doubling embedded quotes); rejects empty, NUL-bearing or over-long names. */
export function quoteIdent(name: string): string {
  if (name.length === 0) throw new Error('identifier must not be empty');
  if (name.includes('\u0000')) throw new Error('identifier must not contain NUL');
  if (Buffer.byteLength(name, 'utf8') > MAX_IDENTIFIER_BYTES) {
    throw new Error(`identifier "${name.slice(0, 20)}…" is longer than ${MAX_IDENTIFIER_BYTES} bytes`);
  }
  return `"${name.replaceAll('"', '""')}"`;
}

/** `schema.table`, both parts quoted. */
export function qualified(schema: string, table: string): string {
  return `${quoteIdent(schema)}.${quoteIdent(table)}`;
}

/** A string literal for the few statements that cannot take parameters (ALTER ROLE … PASSWORD). */
export function quoteLiteral(value: string): string {
  if (value.includes('\u0000')) throw new Error('literal must not contain NUL');
  const escaped = value.replaceAll("'", "''");
  return value.includes('\\') ? `E'${escaped.replaceAll('\\', '\\\\')}'` : `'${escaped}'`;
}
