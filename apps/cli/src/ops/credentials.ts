import { existsSync, chmodSync, renameSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { readCredentialsFile, InvalidInputError } from '@owui-sync/engine';

/** Percent-encodes everything but unreserved characters, like the design documents' `urlencode`. */
export function urlencode(text: string): string {
  let out = '';
  for (const byte of Buffer.from(text, 'utf8')) {
    const c = String.fromCharCode(byte);
    out += /[-_.~a-zA-Z0-9]/.test(c) ? c : `%${byte.toString(16).padStart(2, '0')}`;
  }
  return out;
}

/**
 * The service role's connection string derived from the admin one: same server and database, the service user and
 * its URL-encoded password. Through Supabase's pooler the user carries the project ref (`sync_service.<ref>`), as the
 * admin user does (`postgres.<ref>`).
 */
export function serviceUrlFrom(adminUrl: string, role: string, password: string): string {
  const u = new URL(adminUrl);
  const adminUser = decodeURIComponent(u.username);
  const dot = adminUser.indexOf('.');
  const pooler = /\.pooler\.supabase\.com$/i.test(u.hostname);
  const user = pooler && dot > 0 ? `${role}${adminUser.slice(dot)}` : role;
  u.username = urlencode(user);
  u.password = urlencode(password);
  return u.toString();
}

/** Puts `password` into a connection string that has none. */
export function withPassword(url: string, password: string): string {
  const u = new URL(url);
  if (!u.password) u.password = urlencode(password);
  return u.toString();
}

/** The values of an existing credentials file, or {} when there is none. */
export function readExistingCredentials(file: string): Record<string, string> {
  return existsSync(file) ? readCredentialsFile(file) : {};
}

const HEADER = [
  '# owui-sync credentials, written by `syncctl init`. Keep private: mode 600, never commit.',
  '# ADMIN_URL: installs and DDL (init, register, deregister). SYNC_URL: the restricted service role, used by',
  '# nodes and workers (export DATABASE_URL="$SYNC_URL"). Passwords in URLs are URL-encoded.',
];

/**
 * Writes the credentials file atomically with mode 600, keeping any other keys it already had (e.g.
 * SUPABASE_PROJECT_REF). The file stays shell-sourceable.
 */
export function writeCredentialsFile(file: string, values: Readonly<Record<string, string>>): void {
  const merged = { ...readExistingCredentials(file), ...values };
  const lines = [...HEADER];
  for (const [key, value] of Object.entries(merged)) {
    if (value.includes("'") || /[\r\n]/.test(value)) {
      throw new InvalidInputError(`${key} contains a quote or newline; choose a password without them`);
    }
    lines.push(/^[A-Za-z0-9_.:/@%?=&+,~-]*$/.test(value) ? `${key}=${value}` : `${key}='${value}'`);
  }
  const target = path.resolve(file);
  const tmp = `${target}.${process.pid}.tmp`;
  writeFileSync(tmp, `${lines.join('\n')}\n`, { mode: 0o600 });
  chmodSync(tmp, 0o600);
  renameSync(tmp, target);
}
