import fs from 'node:fs';
import Database from 'better-sqlite3';
import type pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createPool, createMetrics } from '@owui-sync/engine';
import { restoreTenant, verifyTenant } from '@owui-sync/engine/restore';
import { ERAS, generateOpenWebUIDatabase } from '@owui-sync/fixtures';
import { provisionTenant } from '@owui-sync/engine/sync';
import { registerTenant } from '../engine/helpers.ts';
import { useTestDatabase } from '../support/db.ts';
import { NS_BASE, backUp, dumpDatabase, integrityCheck, makeMiniOpenWebUI, scratchDir, sync } from './helpers.ts';

describe('restore and verify', () => {
  const db = useTestDatabase();
  const scratch = scratchDir('owui-restore-');
  let admin: pg.Pool;
  let service: pg.Pool;
  const pools = () => ({ admin, service, serviceRole: db.current.serviceRole, adminUrl: db.current.adminUrl });

  beforeAll(() => {
    admin = createPool(db.current.adminUrl, { max: 2 });
    service = createPool(db.current.serviceUrl, { max: 4 });
  });
  afterAll(async () => {
    await service?.end();
    await admin?.end();
    scratch.cleanup();
  });

  it.each(ERAS.map((era, i) => [era, i] as const))(
    'era %s: sync → restore gives the same schema, rows and stored values; verify matches',
    async (era, i) => {
      const source = scratch.file(`src-${i}.db`);
      generateOpenWebUIDatabase({ path: source, era, seed: 11 });
      const name = `era${i}`;
      const { hostId } = await backUp(pools(), name, source);
      const to = scratch.file(`restored-${i}.db`);
      const progress: string[] = [];
      const r = await restoreTenant({
        pool: service,
        clientName: name,
        to,
        scope: { hostId },
        onProgress: (p) => progress.push(p.table),
      });
      expect(r.ddl).toBe('captured');
      expect(r.warnings).toEqual([]);
      expect(integrityCheck(to)).toBe('ok');
      const expected = dumpDatabase(source);
      expect(Object.values(expected.rows).flat().length).toBeGreaterThan(20);
      expect(dumpDatabase(to)).toEqual(expected);
      expect(progress.length).toBeGreaterThan(0);
      const metrics = createMetrics();
      const v = await verifyTenant({ pool: service, clientName: name, scope: { hostId }, metrics });
      expect(v.match, JSON.stringify(v.tables.filter((t) => t.status !== 'ok'))).toBe(true);
      expect((await metrics.verifyResult.get()).values).toEqual([
        expect.objectContaining({ labels: { client: name }, value: 1 }),
      ]);
    },
  );

  it('keeps awkward values exact: nanoseconds, JSON null vs NULL, JSON numbers, INTEGER booleans, DATETIME epochs', async () => {
    const source = scratch.file('mini.db');
    makeMiniOpenWebUI(source, { chats: 30 });
    const { hostId } = await backUp(pools(), 'mini', source);
    const to = scratch.file('mini-restored.db');
    await restoreTenant({ pool: service, clientName: 'mini', to, scope: { hostId } });
    expect(dumpDatabase(to)).toEqual(dumpDatabase(source));
    const d = new Database(to, { readonly: true });
    const ns = d.prepare('SELECT min(created_at) FROM message').safeIntegers(true).pluck().get() as bigint;
    expect(ns >= NS_BASE).toBe(true);
    expect(d.prepare("SELECT typeof(value) FROM config WHERE typeof(value) <> 'text'").pluck().all()).not.toEqual([]);
    d.close();
  });

  it('rows deleted in the source are left out after the next sync (unless --include-deleted)', async () => {
    const source = scratch.file('del.db');
    makeMiniOpenWebUI(source, { chats: 20 });
    const { hostId } = await backUp(pools(), 'del', source);
    const s = new Database(source);
    const gone = s.prepare('SELECT id FROM chat ORDER BY id LIMIT 3').pluck().all() as string[];
    s.prepare(`DELETE FROM chat_message WHERE chat_id IN (${gone.map(() => '?').join(',')})`).run(...gone);
    s.prepare(`DELETE FROM chat WHERE id IN (${gone.map(() => '?').join(',')})`).run(...gone);
    s.close();
    await sync(service, 'del', hostId, true);
    const to = scratch.file('del-restored.db');
    const r = await restoreTenant({ pool: service, clientName: 'del', to, scope: { hostId } });
    expect(r.rowsLeftOutDeleted).toBeGreaterThanOrEqual(3);
    expect(dumpDatabase(to)).toEqual(dumpDatabase(source));
    const v = await verifyTenant({ pool: service, clientName: 'del', scope: { hostId } });
    expect(v.match).toBe(true);
    expect(v.tables.find((t) => t.table === 'chat')?.tombstoned).toBe(3);

    const all = scratch.file('del-all.db');
    await restoreTenant({ pool: service, clientName: 'del', to: all, scope: { hostId }, includeDeleted: true });
    const d = new Database(all, { readonly: true });
    const ids = d.prepare('SELECT id FROM chat').pluck().all() as string[];
    d.close();
    expect(ids).toEqual(expect.arrayContaining(gone));
  });

  it('verify reports a row changed, added and removed after the sync; exit status and metric say so', async () => {
    const source = scratch.file('drift.db');
    makeMiniOpenWebUI(source, { chats: 10 });
    const { hostId } = await backUp(pools(), 'drift', source);
    const s = new Database(source);
    const [changed, removed] = s.prepare('SELECT id FROM chat ORDER BY id LIMIT 2').pluck().all() as string[];
    s.prepare("UPDATE chat SET title = title || ' (edited)' WHERE id = ?").run(changed);
    s.prepare('DELETE FROM chat_message WHERE chat_id = ?').run(removed);
    s.prepare('DELETE FROM chat WHERE id = ?').run(removed);
    s.prepare("INSERT INTO auth VALUES ('new-user', 'new@example.com', 'x', 1)").run();
    s.close();
    const metrics = createMetrics();
    const v = await verifyTenant({ pool: service, clientName: 'drift', scope: { hostId }, metrics });
    expect(v.match).toBe(false);
    const chat = v.tables.find((t) => t.table === 'chat');
    expect(chat).toMatchObject({ status: 'differs', differing: 1, extra: 1, missing: 0 });
    expect(chat?.examples.differing).toEqual([changed]);
    expect(chat?.examples.extra).toEqual([removed]);
    expect(v.tables.find((t) => t.table === 'auth')).toMatchObject({ missing: 1, examples: { missing: ['new-user'] } });
    expect((await metrics.verifyResult.get()).values[0]?.value).toBe(0);
  });

  it('without a recorded source schema, rebuilds the DDL from PostgreSQL; the file holds the same rows', async () => {
    const source = scratch.file('recon.db');
    generateOpenWebUIDatabase({ path: source, era: '0.11.0', seed: 5 });
    const { hostId } = await registerTenant(db.current.adminUrl, 'recon', source);
    await provisionTenant({
      adminPool: admin,
      clientName: 'recon',
      sqlitePath: source,
      serviceRole: db.current.serviceRole,
    });
    await sync(service, 'recon', hostId);
    const to = scratch.file('recon-restored.db');
    const r = await restoreTenant({ pool: service, clientName: 'recon', to, scope: { hostId } });
    expect(r.ddl).toBe('reconstructed');
    expect(integrityCheck(to)).toBe('ok');
    const v = await verifyTenant({ pool: service, clientName: 'recon', scope: { hostId }, sqlitePath: to });
    expect(v.match, JSON.stringify(v.tables.filter((t) => t.status !== 'ok'))).toBe(true);
    expect(v.totals.sourceRows).toBe(r.rowsRestored);
  });

  it('warns when the backup cannot be complete: the tenant was never synced', async () => {
    const source = scratch.file('never.db');
    makeMiniOpenWebUI(source, { chats: 3 });
    const { hostId } = await registerTenant(db.current.adminUrl, 'never', source);
    await provisionTenant({
      adminPool: admin,
      clientName: 'never',
      sqlitePath: source,
      serviceRole: db.current.serviceRole,
    });
    const r = await restoreTenant({
      pool: service,
      clientName: 'never',
      to: scratch.file('never-restored.db'),
      scope: { hostId },
    });
    expect(r.rowsRestored).toBe(0);
    expect(r.warnings).toEqual([expect.stringMatching(/never completed a sync/)]);
  });

  it('refuses to overwrite without force, replaces atomically with force, and never leaves a temp file', async () => {
    const source = scratch.file('ow.db');
    makeMiniOpenWebUI(source, { chats: 5 });
    const { hostId } = await backUp(pools(), 'ow', source);
    const to = scratch.file('ow-restored.db');
    fs.writeFileSync(to, 'keep me');
    await expect(restoreTenant({ pool: service, clientName: 'ow', to, scope: { hostId } })).rejects.toThrow(
      /already exists.*--force/,
    );
    expect(fs.readFileSync(to, 'utf8')).toBe('keep me');
    fs.writeFileSync(`${to}-wal`, 'stale');
    await restoreTenant({ pool: service, clientName: 'ow', to, scope: { hostId }, force: true });
    expect(integrityCheck(to)).toBe('ok');
    expect(fs.existsSync(`${to}-wal`)).toBe(false);
    expect(fs.readdirSync(scratch.dir).filter((f) => f.includes('.restore-'))).toEqual([]);
  });
});
