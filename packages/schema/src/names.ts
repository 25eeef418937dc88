/**
 * Tenant names become PostgreSQL schema names, so they are validated strictly and every use is quoted as well.
 */

export const CLIENT_NAME_PATTERN = /^[a-z0-9][a-z0-9_-]{0,47}$/;
export const SCHEMA_PREFIX = 'client_';

export type NameCheck = { readonly ok: true; readonly value: string } | { readonly ok: false; readonly reason: string };

/** Validates a tenant (client) name: 1–48 chars of a-z, 0-9, `-`, `_`, starting with a letter or digit. */
export function checkClientName(name: string): NameCheck {
  if (typeof name !== 'string' || name.length === 0) return { ok: false, reason: 'client name must not be empty' };
  if (name.length > 48) return { ok: false, reason: `client name is ${name.length} characters; the limit is 48` };
  if (!CLIENT_NAME_PATTERN.test(name)) {
    const shown = JSON.stringify(name.length > 40 ? `${name.slice(0, 40)}…` : name);
    return {
      ok: false,
      reason:
        `client name ${shown} is not allowed: use lowercase letters, digits, "-" and "_", ` +
        'starting with a letter or digit (it becomes a PostgreSQL schema name)',
    };
  }
  return { ok: true, value: name };
}

/** The tenant's schema name: `client_` + the name with `-` turned into `_` (e.g. acme-corp → client_acme_corp). */
export function schemaNameFor(clientName: string): string {
  const check = checkClientName(clientName);
  if (!check.ok) throw new Error(check.reason);
  return `${SCHEMA_PREFIX}${clientName.replaceAll('-', '_')}`;
}
