import { describeError } from '../errors.ts';
import type { Command } from '../command.ts';
import { recentJobs } from '../ops/history.ts';
import { defaultSqlitePath } from '../ops/register.ts';
import { deregisterTenant, setSyncEnabled, tenantStatus } from '../ops/tenants.ts';
import { statusLines } from './client.ts';
import { jobsTable } from './history.ts';
import { manualSync, registerFromCli } from './register-sync.ts';

const MENU = [
  '╔═════════════════════════════════════════╗',
  '║    Sync Client Management Console       ║',
  '╠═════════════════════════════════════════╣',
  '║  1. Register New Client                 ║',
  '║  2. Start/Resume Sync                   ║',
  '║  3. Pause Sync                          ║',
  '║  4. Manual Sync (Full)                  ║',
  '║  5. Manual Sync (Incremental)           ║',
  '║  6. View Sync Status                    ║',
  '║  7. View Recent Sync Jobs               ║',
  '║  8. Remove Client                       ║',
  '║  9. Exit                                ║',
  '╚═════════════════════════════════════════╝',
].join('\n');

/** Thrown when the operator's input ends (Ctrl-D): leave the menu quietly. */
class EndOfInput extends Error {}

export const menuCommand: Command = {
  path: ['menu'],
  summary: 'interactive console menu: register, start, pause, manual sync, status, jobs, remove',
  description:
    'The design documents’ Sync Client Management Console. Each option runs the same code as the matching command;\n' +
    'manual syncs are recorded as triggered by "manual-console".',
  async run(ctx) {
    const ask = async (q: string): Promise<string> => {
      const a = await ctx.prompter.ask(q);
      if (a === null) throw new EndOfInput();
      return a;
    };
    const pause = async () => {
      await ask('Press Enter to continue...');
    };
    const clientName = async (): Promise<string | null> => {
      const name = await ask('Enter client name: ');
      if (!name) {
        ctx.out('❌ Client name required');
        return null;
      }
      return name;
    };
    const clear = () => {
      if (ctx.io.stdout.isTTY) ctx.io.stdout.write('\x1b[2J\x1b[H');
    };
    const actions: Record<string, () => Promise<void>> = {
      '1': async () => {
        ctx.out('=== Register New Client ===');
        const name = await clientName();
        if (!name) return;
        const container = (await ask(`Container name [openwebui-${name}]: `)) || `openwebui-${name}`;
        const fallback = defaultSqlitePath(name, ctx.env);
        const sqlite = (await ask(`SQLite path [${fallback}]: `)) || fallback;
        const r = await registerFromCli(ctx, { name, container, sqlite, enable: true });
        ctx.out(`✅ Registered "${name}" (schema ${r.schema_name}); sync enabled, the scheduler runs the first sync.`);
      },
      '2': async () => {
        ctx.out('=== Start/Resume Sync ===');
        const name = await clientName();
        if (!name) return;
        const r = await setSyncEnabled(ctx.readPool().pool, ctx.cluster, name, true);
        ctx.out(r.changed ? `✅ Sync enabled for "${name}"` : `ℹ️  Sync was already enabled for "${name}"`);
      },
      '3': async () => {
        ctx.out('=== Pause Sync ===');
        const name = await clientName();
        if (!name) return;
        const r = await setSyncEnabled(ctx.readPool().pool, ctx.cluster, name, false);
        ctx.out(r.changed ? `⏸️  Sync paused for "${name}" (data kept)` : `ℹ️  Sync was already paused for "${name}"`);
      },
      '4': async () => {
        ctx.out('=== Manual Full Sync ===');
        const name = await clientName();
        if (!name) return;
        await manualSync(ctx, { name, full: true, triggeredBy: 'manual-console', viaQueue: false, force: false });
      },
      '5': async () => {
        ctx.out('=== Manual Incremental Sync ===');
        const name = await clientName();
        if (!name) return;
        await manualSync(ctx, { name, full: false, triggeredBy: 'manual-console', viaQueue: false, force: false });
      },
      '6': async () => {
        ctx.out('=== Sync Status ===');
        const name = await clientName();
        if (!name) return;
        ctx.out(statusLines(await tenantStatus(ctx.readPool().pool, ctx.cluster, name)).join('\n'));
      },
      '7': async () => {
        ctx.out('=== Recent Sync Jobs ===');
        const rows = await recentJobs(ctx.readPool().pool, ctx.cluster, { limit: 10 });
        ctx.out(rows.length ? jobsTable(rows) : 'No sync jobs yet.');
      },
      '8': async () => {
        ctx.out('=== Remove Client ===');
        const name = await clientName();
        if (!name) return;
        const drop = /^[Yy]$/.test(await ask('Delete schema and data? (y/N): '));
        if (drop) {
          ctx.out(`⚠️  This DELETES ALL DATA of "${name}" in PostgreSQL and cannot be undone.`);
          const typed = await ask(`Type the client name (${name}) to confirm: `);
          if (typed !== name) {
            ctx.out('Cancelled: nothing was changed.');
            return;
          }
        }
        const r = await deregisterTenant(ctx.pool('admin'), ctx.cluster, name, { dropSchema: drop });
        ctx.out(
          `✅ "${name}" removed${r.schema_dropped ? `; schema ${r.schema_name} and its data deleted` : r.schema_exists ? `; data kept in ${r.schema_name}` : ''}`,
        );
      },
    };
    try {
      for (;;) {
        clear();
        ctx.out(MENU);
        const choice = await ask('Select option (1-9): ');
        if (choice === '9') {
          ctx.out('Goodbye!');
          return 0;
        }
        const action = actions[choice];
        if (!action) {
          ctx.out('Invalid option');
          continue;
        }
        try {
          await action();
        } catch (error) {
          if (error instanceof EndOfInput) throw error;
          ctx.out(`❌ ERROR: ${describeError(error)}`);
        }
        await pause();
      }
    } catch (error) {
      if (error instanceof EndOfInput) {
        ctx.out('');
        return 0;
      }
      throw error;
    }
  },
};
