import Database from 'better-sqlite3';
import type pg from 'pg';
import { expect } from 'vitest';
import { captureSourceSchema } from '@owui-sync/engine/restore';
import { provisionTenant, runTenantSync } from '@owui-sync/engine/sync';
import { registerTenant } from '../engine/helpers.ts';

export { scratchDir, makeMiniOpenWebUI, NS_BASE } from '../engine/helpers.ts';

/** Registers, provisions (recording the source DDL) and fully syncs a tenant; returns its scope. */
export async function backUp(
  pools: { admin: pg.Pool; service: pg.Pool; serviceRole: string; adminUrl: string },
  name: string,
  file: string,
): Promise<{ hostId: string }> {
  const { hostId } = await registerTenant(pools.adminUrl, name, file);
  await provisionTenant({ adminPool: pools.admin, clientName: name, sqlitePath: file, serviceRole: pools.serviceRole });
  await captureSourceSchema({ pool: pools.admin, clientName: name });
  await sync(pools.service, name, hostId);
  return { hostId };
}

export async function sync(service: pg.Pool, name: string, hostId: string, fullSync = false): Promise<void> {
  const r = await runTenantSync({ pool: service, clientName: name, scope: { hostId }, triggeredBy: 'test', fullSync });
  expect(r, r.error).toMatchObject({ status: 'success', rowsFailed: 0 });
}

type Dump = {
  schema: { type: string; name: string; tbl_name: string; sql: string | null }[];
  rows: Record<string, string[]>;
};

/** Everything a restore must reproduce: sqlite_master, and every row with each value's storage class and bytes. */
export function dumpDatabase(file: string): Dump {
  const db = new Database(file, { readonly: true });
  try {
    const schema = db
      .prepare(
        `SELECT type, name, tbl_name, sql FROM sqlite_master WHERE name NOT LIKE 'sqlite\\_%' ESCAPE '\\'
            OR name LIKE 'sqlite_autoindex%' ORDER BY type, name`,
      )
      .all() as Dump['schema'];
    const rows: Record<string, string[]> = {};
    for (const t of schema.filter((o) => o.type === 'table')) {
      const cols = (db.prepare(`PRAGMA table_info("${t.name}")`).all() as { name: string }[]).map((c) => c.name);
      const exprs = cols.map((c) => `typeof("${c}") || ':' || quote("${c}")`).join(` || '|' || `);
      rows[t.name] = (db.prepare(`SELECT ${exprs} FROM "${t.name}"`).pluck().all() as string[]).sort();
    }
    return { schema, rows };
  } finally {
    db.close();
  }
}

export function integrityCheck(file: string): string {
  const db = new Database(file, { readonly: true });
  try {
    return String(db.pragma('integrity_check', { simple: true }));
  } finally {
    db.close();
  }
}
