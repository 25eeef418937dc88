import fs from 'node:fs';
import { afterAll, describe, expect, it } from 'vitest';
import { tenantSchemaName } from '@owui-sync/engine/sync';
import { makeTenantDb, syncctl } from '../cli/support.ts';
import { useTestDatabase, withConnection } from '../support/db.ts';
import { scratchDir } from './helpers.ts';

/** `syncctl client drill NAME`: the proof printed check by check (or as JSON), exit 0 passed / 1 failed, recorded. */
describe('syncctl client drill', () => {
  const db = useTestDatabase();
  const scratch = scratchDir('syncctl-drill-');
  afterAll(() => scratch.cleanup());
  const env = () => ({
    ADMIN_URL: db.current.adminUrl,
    DATABASE_URL: db.current.serviceUrl,
    CLUSTER_NAME: 'drill-cli',
    DRILL_DIR: scratch.file('drills'),
    DOCKER_HOST: 'unix:///nonexistent/docker.sock',
  });

  it('prints the proof, records the drill, and fails with what is wrong after damage', async () => {
    const file = scratch.file('acme.db');
    makeTenantDb(file, 8);
    expect((await syncctl(['client', 'register', 'acme', '--sqlite', file], { env: env() })).code).toBe(0);
    const synced = await syncctl(['client', 'sync', 'acme', '--full'], { env: env() });
    expect(synced.code, synced.stderr).toBe(0);

    const ok = await syncctl(['client', 'drill', 'acme'], { env: env() });
    expect(ok.code, ok.stderr + ok.stdout).toBe(0);
    expect(ok.stdout).toMatch(/✅ Restore drill of "acme" passed/);
    expect(ok.stdout).toMatch(/✅ restore\s+\d+ rows in \d+ tables/);
    expect(ok.stdout).toMatch(/✅ integrity\s+PRAGMA integrity_check: ok/);
    expect(ok.stdout).toMatch(/✅ compare\s+restored file vs backup: 0 missing, 0 extra, 0 differing/);
    expect(ok.stdout).toMatch(/✅ bookkeeping\s+\d+ backup rows/);
    expect(ok.stdout).toMatch(/✅ open-webui\s+revision/);
    expect(fs.readdirSync(scratch.file('drills')).flatMap((d) => fs.readdirSync(scratch.file(`drills/${d}`)))).toEqual(
      [],
    );

    await withConnection(db.current.adminUrl, (c) =>
      c.query(
        `UPDATE "${tenantSchemaName('acme')}".chat SET title = 'tampered' WHERE id = (SELECT min(id) FROM "${tenantSchemaName('acme')}".chat)`,
      ),
    );
    const bad = await syncctl(['client', 'drill', 'acme', '--json'], { env: env() });
    expect(bad.code).toBe(1);
    expect(bad.json()).toMatchObject({
      clientName: 'acme',
      passed: false,
      triggeredBy: 'cli',
      checks: { bookkeeping: { ok: false, damaged: 1 } },
    });
    expect(String((bad.json() as { failure: string }).failure)).toMatch(/chat: 1 row\(s\) changed since their sync/);
    const human = await syncctl(['client', 'drill', 'acme'], { env: env() });
    expect(human.code).toBe(1);
    expect(human.stdout).toMatch(/❌ bookkeeping/);
    expect(human.stdout).toMatch(/What failed: .*chat: 1 row\(s\) changed/);

    const stored = await withConnection(db.current.adminUrl, (c) =>
      c.query<{ passed: boolean; triggered_by: string }>(
        'SELECT passed, triggered_by FROM sync_state.restore_drills ORDER BY started_at',
      ),
    );
    expect(stored.rows).toEqual([
      { passed: true, triggered_by: 'cli' },
      { passed: false, triggered_by: 'cli' },
      { passed: false, triggered_by: 'cli' },
    ]);
  });

  it('explains itself and refuses an unknown tenant', async () => {
    const help = await syncctl(['client', 'drill', '--help'], { env: env() });
    expect(help.code).toBe(0);
    expect(help.stdout).toMatch(/syncctl client drill NAME/);
    expect(help.stdout).toMatch(/never the live one/);
    const unknown = await syncctl(['client', 'drill', 'nobody'], { env: env() });
    expect(unknown.code).toBe(1);
    expect(unknown.stderr).toMatch(/tenant "nobody" is not registered/);
    const missing = await syncctl(['client', 'drill'], { env: env() });
    expect(missing.code).toBe(1);
    expect(missing.stderr).toMatch(/NAME/);
  });
});
