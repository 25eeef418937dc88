import os from 'node:os';
import path from 'node:path';
import { defaultDrillDir, runDrill, type DrillResult } from '@owui-sync/engine/drill';
import type { Command } from '../command.ts';
import { duration } from '../format.ts';

const NAME = { name: 'NAME', required: true, description: 'tenant (client) name, e.g. acme-corp' } as const;

const mark = (ok: boolean | undefined) => (ok ? '✅' : '❌');

/** The drill's proof, check by check, as an operator reads it. */
export function drillReport(r: DrillResult): string {
  const c = r.checks;
  const lines = [
    r.passed
      ? `✅ Restore drill of "${r.clientName}" passed in ${duration(r.durationSeconds)} (drill ${r.drillId})`
      : `❌ Restore drill of "${r.clientName}" FAILED in ${duration(r.durationSeconds)} (drill ${r.drillId})`,
  ];
  lines.push(
    c.restore.ok
      ? `   ${mark(true)} restore      ${c.restore.rows} rows in ${c.restore.tables} tables into a temporary file, ` +
          `${duration(c.restore.seconds ?? 0)} (schema: ${c.restore.ddl})`
      : `   ${mark(false)} restore      ${c.restore.error ?? 'failed'}`,
  );
  if (c.integrity) lines.push(`   ${mark(c.integrity.ok)} integrity    PRAGMA integrity_check: ${c.integrity.result}`);
  if (c.compare) {
    lines.push(
      `   ${mark(c.compare.ok)} compare      restored file vs backup: ${c.compare.missing} missing, ${c.compare.extra} ` +
        `extra, ${c.compare.differing} differing rows${c.compare.tables.length ? ` (${c.compare.tables.map((t) => t.table).join(', ')})` : ''}`,
    );
  }
  if (c.bookkeeping) {
    const b = c.bookkeeping;
    lines.push(
      `   ${mark(b.ok)} bookkeeping  ${b.rows} backup rows against what their syncs wrote: ${b.damaged} changed, ` +
        `${b.lost} missing, ${b.unbooked} without bookkeeping`,
    );
  }
  if (c.openwebui) {
    const o = c.openwebui;
    const user = o.user ? `user ${o.user.email ?? o.user.id}` : 'no users';
    const chat = o.chat
      ? `chat "${o.chat.title ?? o.chat.id}"${o.chat.messages !== null ? ` (${o.chat.messages} messages)` : ''}`
      : 'no chats';
    lines.push(
      `   ${mark(o.ok)} open-webui   revision ${o.revision ?? 'none (before migrations)'}` +
        `${o.ddlRevision ? `, DDL recorded at ${o.ddlRevision}` : ''}; read back ${user}, ${chat}`,
    );
    for (const p of o.problems) lines.push(`      ${p}`);
  }
  for (const w of c.restore.warnings ?? []) lines.push(`   ⚠️  ${w}`);
  if (!r.passed) lines.push('', `What failed: ${r.failure}`, 'See docs/restore.md, "When a drill fails".');
  lines.push('', 'The live database was not touched; the temporary file is removed.');
  return lines.join('\n');
}

export const clientDrillCommand: Command = {
  path: ['client', 'drill'],
  summary: 'run a restore drill of a tenant now and print the proof (exit 0 passed, 1 failed)',
  description:
    "Restores the tenant's latest backup into a temporary file (never the live one), then checks it:\n" +
    'PRAGMA integrity_check, the file against the backup row by row, every backup row against the hash its sync\n' +
    "recorded, and Open WebUI's view of it (schema revision as recorded, a user and a chat read back).\n" +
    'The result is recorded like the scheduled drills (GET /api/v1/tenants/NAME/drills, the dashboard).\n' +
    'Temporary files go to --dir (default: DRILL_DIR, else owui-sync-drills in the temporary directory) and are\n' +
    'removed at the end; a drill killed mid-way leaves them until the next drill worker starts.',
  positionals: [NAME],
  options: {
    dir: { type: 'string', placeholder: 'PATH', description: 'directory for the temporary database' },
  },
  examples: ['syncctl client drill acme-corp', 'syncctl client drill acme-corp --json'],
  async run(ctx, { positionals, values }) {
    const name = positionals[0] as string;
    const { pool } = ctx.readPool();
    const dir =
      typeof values.dir === 'string'
        ? path.resolve(ctx.io.cwd, values.dir)
        : (ctx.io.env.DRILL_DIR ?? defaultDrillDir());
    if (!ctx.json) ctx.err(`Restore drill of "${name}" …`);
    const r = await runDrill({
      pool,
      clientName: name,
      scope: { cluster: ctx.cluster },
      drillDir: dir,
      triggeredBy: 'cli',
      runBy: `syncctl@${os.hostname()}`,
      logger: ctx.logger,
    });
    ctx.result(r, () => drillReport(r));
    return r.passed ? 0 : 1;
  },
};
