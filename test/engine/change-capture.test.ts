import type pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createPool } from '@owui-sync/engine';
import { verifyTenant } from '@owui-sync/engine/restore';
import { provisionTenant, runTenantSync, upgradeTenantSchema } from '@owui-sync/engine/sync';
import { ERAS, generateOpenWebUIDatabase, type Era } from '@owui-sync/fixtures';
import { useTestDatabase } from '../support/db.ts';
import { registerTenant, scratchDir } from './helpers.ts';
import { OpenWebUIWriter } from './openwebui-writer.ts';

/**
 * Replays Open WebUI's real write patterns (silent updates, bulk and re-keying deletes, imports with old updated_at,
 * same-size overwrites inside large values, checkpoints, VACUUM, a schema upgrade) against generated databases of
 * every era, with an incremental run after each step: the backup must equal the snapshot every time.
 */

// Chat bodies larger than a page, so rows have overflow chains.
const SCALE = {
  users: 6,
  chats: 40,
  chatBodyBytes: 9000,
  chatMessagesPerChat: 2,
  channels: 2,
  channelMessages: 60,
  tags: 12,
  files: 4,
  rowsPerTable: 4,
};

const JOURNAL: Record<Era, 'wal' | 'delete'> = {
  'pre-migration': 'delete',
  '0.5': 'delete',
  '0.6.42': 'wal',
  '0.11.0': 'wal',
};

describe('change capture under Open WebUI write patterns', () => {
  const db = useTestDatabase();
  const scratch = scratchDir('owui-capture-');
  let admin: pg.Pool;
  let service: pg.Pool;

  beforeAll(() => {
    admin = createPool(db.current.adminUrl, { max: 2 });
    service = createPool(db.current.serviceUrl, { max: 3 });
  });
  afterAll(async () => {
    await service?.end();
    await admin?.end();
    scratch.cleanup();
  });

  async function setup(name: string, era: Era, seed: number) {
    const file = scratch.file(`${name}.db`);
    generateOpenWebUIDatabase({ path: file, era, scale: SCALE, seed, journalMode: JOURNAL[era] });
    const { hostId } = await registerTenant(db.current.adminUrl, name, file);
    await provisionTenant({
      adminPool: admin,
      clientName: name,
      sqlitePath: file,
      serviceRole: db.current.serviceRole,
    });
    const scope = { hostId };
    const sync = () => runTenantSync({ pool: service, clientName: name, scope, triggeredBy: 'test', batchSize: 50 });
    expect(await sync()).toMatchObject({ status: 'success', syncType: 'full' });
    const modes: string[] = [];
    /** Per run that tombstoned rows: how many tables needed every key compared to find them. */
    const deletes: number[] = [];
    /** One incremental run, then the backup must equal the (idle) source exactly. */
    const syncAndCompare = async (what: string) => {
      const r = await sync();
      expect(r, `${era} after ${what}: ${r.error}`).toMatchObject({ status: 'success', syncType: 'incremental' });
      const job = await admin.query<{
        details: { capture?: { mode: string; unknownPages: number; keySetComparisons: number } };
      }>('SELECT details FROM sync_metadata.sync_jobs WHERE job_id = $1', [r.jobId]);
      const capture = job.rows[0]?.details.capture;
      if (capture) {
        modes.push(capture.mode);
        if (r.rowsDeleted > 0) deletes.push(capture.keySetComparisons);
        expect(capture.unknownPages, `${era} after ${what}: pages no table accounts for`).toBe(0);
      }
      const v = await verifyTenant({ pool: service, clientName: name, scope });
      const bad = v.tables.filter((t) => t.status !== 'ok');
      expect(bad, `${era} after ${what}`).toEqual([]);
      return r;
    };
    return { file, scope, sync, syncAndCompare, modes, deletes };
  }

  for (const era of ERAS) {
    it(`${era}: every write pattern, one at a time, ends exact after the next run`, async () => {
      const name = `seq_${era.replaceAll('.', '_').replaceAll('-', '_')}`;
      const t = await setup(name, era, 7);
      const writer = new OpenWebUIWriter(t.file, 11);
      try {
        for (const op of Object.keys(writer.operations)) {
          writer.apply(op);
          await t.syncAndCompare(op);
        }
        // Writes the last run did not see, then SQLite's automatic checkpoint and the WAL restarting over the frames
        // that run saw: the late frames are still found past the new ones.
        writer.apply('chatRename');
        writer.apply('userActivity');
        writer.apply('chatTurn');
        await t.syncAndCompare('a chat turn');
        writer.apply('chatRename');
        writer.apply('autoCheckpoint');
        await t.syncAndCompare('writes, an automatic checkpoint, more writes');
        // Several patterns between two runs, twice in a row.
        for (const op of ['chatRename', 'userActivity', 'chatDeleteAllOfUser', 'rekeyed', 'chatLastRead'])
          writer.apply(op);
        await t.syncAndCompare('a mixed minute');
      } finally {
        writer.close();
      }
      if (JOURNAL[era] === 'wal') expect(t.modes).toEqual(expect.arrayContaining(['wal', 'wal-restart']));
      // Deletes found from the changed pages alone, without comparing every key, in most runs.
      expect(t.deletes.filter((n) => n === 0).length, `${era}: ${t.deletes.join(',')}`).toBeGreaterThan(0);
      expect(t.modes).toContain('pages');
    });
  }

  it('randomised rounds (seeded) across eras, with a schema upgrade in the middle', async () => {
    // CAPTURE_SEED=<n> replays another set of seeds (failures name the seed of the round).
    const base = Number(process.env.CAPTURE_SEED ?? 1000);
    for (const [i, era] of (['0.11.0', '0.6.42', '0.5'] as const).entries()) {
      const name = `rnd_${i}`;
      const t = await setup(name, era, 100 + i);
      const writer = new OpenWebUIWriter(t.file, base + i);
      try {
        for (let round = 0; round < 10; round += 1) {
          const ops = writer.randomRound(1 + (round % 5));
          if (round === 5) {
            // An Open WebUI upgrade: a new column on a large table and a new table, while the instance runs.
            writer.db.exec("ALTER TABLE chat ADD COLUMN upgrade_note TEXT DEFAULT 'migrated'");
            writer.db.exec('CREATE TABLE upgrade_extra (id TEXT PRIMARY KEY, value TEXT, updated_at BIGINT)');
            writer.db.prepare("INSERT INTO upgrade_extra VALUES ('a', 'x', 1)").run();
            writer.refreshSchema();
            const drift = await t.sync();
            expect(drift).toMatchObject({ status: 'failed' });
            expect(drift.error).toMatch(/upgrade-schema/);
            await upgradeTenantSchema({
              adminPool: admin,
              clientName: name,
              sqlitePath: t.file,
              serviceRole: db.current.serviceRole,
            });
          }
          await t.syncAndCompare(`seed ${base + i} round ${round}: ${ops.join(', ')} (all: ${writer.log.join(', ')})`);
        }
      } finally {
        writer.close();
      }
    }
  });
});

/** A test database, and tenants provisioned in it from a file with their own pools (closed after the block). */
function useTenants() {
  const db = useTestDatabase();
  const pools: pg.Pool[] = [];
  afterAll(async () => {
    for (const p of pools) await p.end();
  });
  return {
    db,
    async tenant(name: string, file: string) {
      const admin = createPool(db.current.adminUrl, { max: 2 });
      const service = createPool(db.current.serviceUrl, { max: 3 });
      pools.push(service, admin);
      const { hostId } = await registerTenant(db.current.adminUrl, name, file);
      await provisionTenant({
        adminPool: admin,
        clientName: name,
        sqlitePath: file,
        serviceRole: db.current.serviceRole,
      });
      const scope = { hostId };
      return {
        admin,
        service,
        scope,
        sync: () => runTenantSync({ pool: service, clientName: name, scope, triggeredBy: 'test' }),
        verify: () => verifyTenant({ pool: service, clientName: name, scope }),
      };
    },
  };
}

describe('page hashes of a WAL file, recorded by the run after a full sync', () => {
  const tenants = useTenants();
  const scratch = scratchDir('owui-hashes-');
  afterAll(() => scratch.cleanup());

  const captureOf = async (admin: pg.Pool, jobId: string) =>
    (
      await admin.query<{ mode: string; recorded: boolean; share: number }>(
        `SELECT j.details->'capture'->>'mode' AS mode, p.hashes_recorded AS recorded,
                ((j.details->'capture'->>'changedPages')::float / p.page_count) AS share
           FROM sync_metadata.sync_jobs j JOIN sync_state.source_pages p USING (deployment_id)
          WHERE j.job_id = $1`,
        [jobId],
      )
    ).rows[0];

  it('the WAL says what changed, every page is hashed then; a truncated WAL before that compares every table once', async () => {
    for (const [name, truncateFirst] of [
      ['hashes_wal', false],
      ['hashes_lost', true],
    ] as const) {
      const file = scratch.file(`${name}.db`);
      generateOpenWebUIDatabase({ path: file, era: '0.11.0', scale: SCALE, seed: 21, journalMode: 'wal' });
      // Open WebUI running: its connection keeps the WAL, which has frames when the full sync reads the file.
      const writer = new OpenWebUIWriter(file, 5);
      try {
        writer.apply('chatRename');
        const t = await tenants.tenant(name, file);
        const full = await t.sync();
        expect(full).toMatchObject({ status: 'success', syncType: 'full' });
        const recorded = await t.admin.query<{ hashes_recorded: boolean }>(
          `SELECT p.hashes_recorded FROM sync_state.source_pages p JOIN sync_metadata.sync_jobs j USING (deployment_id)
            WHERE j.job_id = $1`,
          [full.jobId],
        );
        expect(recorded.rows[0]?.hashes_recorded).toBe(false);
        const step = async (ops: string[], mode: string) => {
          for (const op of ops) writer.apply(op);
          const r = await t.sync();
          expect(r, ops.join(', ')).toMatchObject({ status: 'success', syncType: 'incremental' });
          const capture = await captureOf(t.admin, r.jobId);
          expect(capture, ops.join(', ')).toMatchObject({ mode, recorded: true });
          // Pages compared by hash: only the changed ones count as changed (the hashes recorded are the real ones).
          if (mode === 'pages') expect(capture?.share, ops.join(', ')).toBeLessThan(0.5);
          const v = await t.verify();
          expect(
            v.tables.filter((x) => x.status !== 'ok'),
            ops.join(', '),
          ).toEqual([]);
        };
        if (truncateFirst) {
          // No frames left to say what changed, and no hashes to compare: every table is compared, once.
          await step(['chatRename', 'userActivity', 'chatDelete', 'checkpoint'], 'baseline');
        } else {
          await step(['chatRename', 'userActivity', 'chatDelete'], 'wal');
        }
        // From then on the hashes are there: a truncated WAL is settled by comparing them.
        await step(['chatRename', 'chatLastRead', 'checkpoint'], 'pages');
        await step(['chatTurn', 'userActivity'], 'wal');
      } finally {
        writer.close();
      }
    }
  });
});

describe('journal mode switches', () => {
  const tenants = useTenants();
  const scratch = scratchDir('owui-journal-');
  const file = scratch.file('switch.db');
  afterAll(() => scratch.cleanup());

  it('a file moving from WAL to a rollback journal and back stays exact after every run', async () => {
    generateOpenWebUIDatabase({ path: file, era: '0.11.0', scale: SCALE, seed: 9, journalMode: 'wal' });
    const { sync, verify } = await tenants.tenant('switch', file);
    expect(await sync()).toMatchObject({ status: 'success' });
    const step = async (what: string, mode: 'wal' | 'delete') => {
      const writer = new OpenWebUIWriter(file, what.length);
      writer.db.pragma(`journal_mode = ${mode}`);
      const ids = writer.db.prepare('SELECT id FROM chat ORDER BY id LIMIT 20').pluck().all() as string[];
      const rename = writer.db.prepare("UPDATE chat SET title = coalesce(title, '') || ' (renamed)' WHERE id = ?");
      writer.db.transaction(() => ids.forEach((id) => rename.run(id)))();
      writer.apply('chatLastRead');
      writer.close();
      const r = await sync();
      expect(r, what).toMatchObject({ status: 'success' });
      expect(r.rowsSynced, what).toBeGreaterThanOrEqual(20);
      const v = await verify();
      expect(
        v.tables.filter((t) => t.status !== 'ok'),
        what,
      ).toEqual([]);
    };
    await step('to a rollback journal', 'delete');
    await step('rollback journal again', 'delete');
    await step('back to WAL', 'wal');
  });
});

describe('values are never changed silently', () => {
  const tenants = useTenants();
  const scratch = scratchDir('owui-exact-');
  const file = scratch.file('exact.db');
  afterAll(() => scratch.cleanup());

  it('a REAL in an integer column and a BLOB in a text column are held back with a reason, and verify sees them', async () => {
    generateOpenWebUIDatabase({ path: file, era: '0.11.0', scale: SCALE, seed: 3, journalMode: 'wal' });
    const { admin, sync, verify } = await tenants.tenant('exact', file);
    expect(await sync()).toMatchObject({ status: 'success' });
    const writer = new OpenWebUIWriter(file, 5);
    const [real, blob] = writer.db.prepare('SELECT id FROM "user" ORDER BY id LIMIT 2').pluck().all() as string[];
    writer.db.prepare('UPDATE "user" SET last_active_at = 1.5 WHERE id = ?').run(real);
    writer.db.prepare('UPDATE "user" SET name = ? WHERE id = ?').run(Buffer.from([0x41, 0x00, 0xff, 0x42]), blob);
    writer.close();
    const r = await sync();
    expect(r).toMatchObject({ status: 'failed', rowsFailed: 2 });
    expect(r.error).toMatch(/cannot be stored exactly/);
    const held = await admin.query<{ row_key: string; error: string }>(
      "SELECT row_key, error FROM sync_state.failed_rows WHERE table_name = 'user' AND resolved_at IS NULL ORDER BY error",
    );
    expect(held.rows.map((h) => h.row_key).sort()).toEqual([real, blob].sort());
    expect(held.rows.map((h) => h.error).join('\n')).toMatch(/REAL value 1\.5[\s\S]*|BLOB of 4 bytes/);
    // The backup still has the previous values, and verify says so instead of passing.
    const v = await verify();
    expect(v.match).toBe(false);
    expect(v.tables.find((t) => t.table === 'user')?.differing).toBe(2);
  });
});

describe('a table whose unique index was dropped and that holds duplicates', () => {
  const tenants = useTenants();
  const scratch = scratchDir('owui-keyless-');
  const file = scratch.file('keyless.db');
  afterAll(() => scratch.cleanup());

  it('fails only that table with advice that works; every other table is synced', async () => {
    generateOpenWebUIDatabase({ path: file, era: 'pre-migration', scale: SCALE, seed: 4 });
    const w = new OpenWebUIWriter(file, 1);
    w.db.exec('DROP INDEX chatidtag_id');
    w.db.exec('INSERT INTO chatidtag SELECT * FROM chatidtag LIMIT 1');
    w.close();
    const { admin, sync, verify } = await tenants.tenant('keyless', file);
    const r = await sync();
    expect(r).toMatchObject({ status: 'failed' });
    expect(r.error).toMatch(/every table was synced except chatidtag: .*remove the duplicates.*upgrade-schema keyless/);
    const chats = await admin.query('SELECT count(*)::int AS n FROM client_keyless.chat');
    expect(chats.rows[0]?.n).toBe(SCALE.chats);
    // The advice: duplicates removed, the index back, upgrade-schema; then the table syncs and the backup is exact.
    const fix = new OpenWebUIWriter(file, 2);
    fix.db.exec('DELETE FROM chatidtag WHERE rowid NOT IN (SELECT min(rowid) FROM chatidtag GROUP BY id)');
    fix.db.exec('CREATE UNIQUE INDEX chatidtag_id ON chatidtag (id)');
    fix.close();
    const up = await upgradeTenantSchema({
      adminPool: admin,
      clientName: 'keyless',
      sqlitePath: file,
      serviceRole: tenants.db.current.serviceRole,
    });
    expect(up.changes.join('\n')).toMatch(/added unique key chatidtag\(id\)/);
    expect(await sync()).toMatchObject({ status: 'success' });
    const v = await verify();
    expect(v.tables.filter((t) => t.status !== 'ok')).toEqual([]);
  });
});
