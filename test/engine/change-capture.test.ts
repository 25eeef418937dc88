import type pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createPool } from '../../packages/engine/src/db.ts';
import { verifyTenant } from '../../packages/engine/src/restore/index.ts';
import { provisionTenant, runTenantSync, upgradeTenantSchema } from '../../packages/engine/src/sync/index.ts';
import { ERAS, generateOpenWebUIDatabase, type Era } from '../../packages/fixtures/src/index.ts';
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
    /** One incremental run, then the backup must equal the (idle) source exactly. */
    const syncAndCompare = async (what: string) => {
      const r = await sync();
      expect(r, `${era} after ${what}: ${r.error}`).toMatchObject({ status: 'success', syncType: 'incremental' });
      const job = await admin.query<{ details: { capture?: { mode: string; unknownPages: number } } }>(
        'SELECT details FROM sync_metadata.sync_jobs WHERE job_id = $1',
        [r.jobId],
      );
      const capture = job.rows[0]?.details.capture;
      if (capture) {
        modes.push(capture.mode);
        expect(capture.unknownPages, `${era} after ${what}: pages no table accounts for`).toBe(0);
      }
      const v = await verifyTenant({ pool: service, clientName: name, scope });
      const bad = v.tables.filter((t) => t.status !== 'ok');
      expect(bad, `${era} after ${what}`).toEqual([]);
      return r;
    };
    return { file, scope, sync, syncAndCompare, modes };
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
        // Several patterns between two runs, twice in a row.
        for (const op of ['chatRename', 'userActivity', 'chatDeleteAllOfUser', 'rekeyed', 'chatLastRead'])
          writer.apply(op);
        await t.syncAndCompare('a mixed minute');
      } finally {
        writer.close();
      }
      if (JOURNAL[era] === 'wal') expect(t.modes).toContain('wal');
      expect(t.modes).toContain('pages');
    });
  }

  it('randomised rounds (seeded) across eras, with a schema upgrade in the middle', async () => {
    for (const [i, era] of (['0.11.0', '0.6.42', '0.5'] as const).entries()) {
      const name = `rnd_${i}`;
      const t = await setup(name, era, 100 + i);
      const writer = new OpenWebUIWriter(t.file, 1000 + i);
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
          await t.syncAndCompare(`seed ${1000 + i} round ${round}: ${ops.join(', ')}`);
        }
      } finally {
        writer.close();
      }
    }
  });
});
