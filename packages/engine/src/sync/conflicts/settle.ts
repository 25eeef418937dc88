import type pg from 'pg';
import type { RunContext } from '../run-context.ts';
import type { TablePlan } from '../table-plan.ts';
import { applyResolution } from './apply.ts';
import { compareFieldFor, strategyFor } from './config.ts';
import { RESOLUTIONS, decide, readConflictRows } from './decide.ts';
import { countConflicts, logConflicts, notifyConflicts } from './log.ts';
import { mergeTargetsFor } from './merge.ts';

/**
 * Rows changed on both sides since the last sync (three-way: the staged source row differs from the source hash
 * recorded last time AND the target row differs from the target hash recorded last time AND the two differ from
 * each other) are found by the chunk's write statement (see table-plan.ts). Each is settled here by the table's
 * strategy and written to conflict_log with both versions.
 */

/** Settles the conflicting keys of the staged chunk; returns how many rows were written to the target. */
export async function resolveChunkConflicts(
  client: pg.ClientBase,
  ctx: RunContext,
  plan: TablePlan,
  keys: string[],
): Promise<number> {
  const strategy = strategyFor(ctx.conflictConfig, plan.name);
  const mergeTargets = strategy.strategy === 'merge' ? mergeTargetsFor(plan, strategy.merge_rules ?? {}) : [];
  const mergeCols = [...new Set(mergeTargets.map((m) => m.column))];
  const rows = await readConflictRows(client, plan, keys, compareFieldFor(strategy, plan), mergeCols);
  const { groups, merged } = decide(strategy.strategy, rows, mergeTargets);
  const snapshots = ctx.conflictConfig.resolution_log?.include_data_snapshot ?? true;
  // Manual conflicts wait in the log for a decision, so only automatic resolutions can go unlogged.
  const logResolved = ctx.conflictConfig.resolution_log?.enabled ?? true;
  let written = 0;
  for (const resolution of RESOLUTIONS) {
    const group = groups[resolution];
    if (group.length === 0) continue;
    if (resolution === 'pending' || logResolved) {
      await logConflicts(
        client,
        ctx,
        plan,
        group,
        strategy.strategy,
        resolution,
        snapshots || resolution === 'pending',
      );
    }
    written += await applyResolution(client, ctx, plan, resolution, group, merged);
    countConflicts(ctx.stats.conflicts, plan.name, strategy.strategy, resolution, group.length);
  }
  if (strategy.notify && rows.length > 0) {
    notifyConflicts(ctx, plan.name, strategy.strategy, rows.length, groups.pending.length);
  }
  return written;
}
