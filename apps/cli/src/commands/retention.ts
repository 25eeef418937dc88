import { parseRetentionDays, setHistoryRetention } from '@owui-sync/engine/restore';
import type { Command } from '../command.ts';
import { inCluster, validName } from '../ops/tenants.ts';

export const clientRetentionCommand: Command = {
  path: ['client', 'retention'],
  summary: 'set how many days of history a tenant keeps for point-in-time restores (default 7)',
  description:
    'Every sync run keeps the row versions it replaces or deletes; syncctl restore NAME --at TIME can go back as\n' +
    "far as this retention. The leader's maintenance prunes older history. Making it longer keeps more from now on\n" +
    '(what was pruned already does not come back); making it shorter frees the space on the next maintenance pass.',
  positionals: [
    { name: 'NAME', required: true, description: 'tenant (client) name, e.g. acme-corp' },
    { name: 'DAYS', required: true, description: 'whole days, 1 … 3650 (e.g. 7, 30, 90)' },
  ],
  examples: ['syncctl client retention acme-corp 30', 'syncctl client retention acme-corp 7 --json'],
  async run(ctx, { positionals }) {
    const name = validName(positionals[0] as string);
    const days = parseRetentionDays(positionals[1] as string);
    const r = await inCluster(ctx.readPool().pool, ctx.cluster, (c) => setHistoryRetention(c, name, days));
    ctx.result(r, () =>
      [
        `✅ "${name}" keeps ${days} day(s) of history for point-in-time restores (was ${r.previous}).`,
        `   Oldest restorable time now: ${r.oldest ? r.oldest.toISOString() : 'none yet (history starts with the next successful run)'}`,
      ].join('\n'),
    );
  },
};
