import type pg from 'pg';
import { quoteIdent, type TableStrategy } from '@owui-sync/schema';
import { STAGE, keyExpression, type TablePlan } from '../table-plan.ts';
import { mergeRow, type MergeTarget } from './merge.ts';

/**
 * Which version of a conflicting row wins under the table's strategy: both versions are read (the compare field and
 * the merge columns only), and each row is put in the group of its resolution; merged rows get their merged values.
 */

export type Resolution = 'source' | 'target' | 'merged' | 'pending';

/** The order groups are applied in. */
export const RESOLUTIONS = ['source', 'target', 'merged', 'pending'] as const satisfies readonly Resolution[];

export type ConflictRow = {
  key: string;
  s_cmp: string | null;
  t_cmp: string | null;
  s_cols: Record<string, string | null>;
  t_cols: Record<string, string | null>;
};

/** Both versions of the conflicting staged rows `keys`: their compare-field values and their merge columns. */
export async function readConflictRows(
  client: pg.ClientBase,
  plan: TablePlan,
  keys: string[],
  compareField: string | null,
  mergeCols: readonly string[],
): Promise<ConflictRow[]> {
  const kS = keyExpression('s', plan.key);
  const colObj = (alias: string) =>
    mergeCols.length
      ? `json_build_object(${mergeCols.map((c) => `'${c.replaceAll("'", "''")}', ${alias}.${quoteIdent(c)}::text`).join(', ')})`
      : `'{}'::json`;
  const cmp = compareField ? quoteIdent(compareField) : null;
  const rows = await client.query<ConflictRow>(
    `SELECT ${kS} AS key, ${cmp ? `s.${cmp}::text` : 'NULL'} AS s_cmp, ${cmp ? `t.${cmp}::text` : 'NULL'} AS t_cmp,
            ${colObj('s')} AS s_cols, ${colObj('t')} AS t_cols
       FROM pg_temp.${STAGE} s JOIN ${plan.target} t ON ${plan.sql.joinStageTarget}
      WHERE ${kS} = ANY($1::text[])`,
    [keys],
  );
  return rows.rows;
}

export type Decisions = {
  readonly groups: Record<Resolution, string[]>;
  /** The merged values of each row in the merged group. */
  readonly merged: Map<string, Record<string, string | null>>;
};

/** Puts each conflicting row in the group of its resolution under `strategy`. */
export function decide(
  strategy: TableStrategy['strategy'],
  rows: readonly ConflictRow[],
  mergeTargets: readonly MergeTarget[],
): Decisions {
  const groups: Record<Resolution, string[]> = { source: [], target: [], merged: [], pending: [] };
  const merged = new Map<string, Record<string, string | null>>();
  for (const r of rows) {
    const sourceNewer = compareValues(r.s_cmp, r.t_cmp) >= 0;
    switch (strategy) {
      case 'source_wins':
        groups.source.push(r.key);
        break;
      case 'target_wins':
        groups.target.push(r.key);
        break;
      case 'newest_wins':
        groups[sourceNewer ? 'source' : 'target'].push(r.key);
        break;
      case 'manual':
        groups.pending.push(r.key);
        break;
      case 'merge':
        groups.merged.push(r.key);
        merged.set(r.key, mergeRow(mergeTargets, r.s_cols, r.t_cols, sourceNewer));
        break;
    }
  }
  return { groups, merged };
}

/** Compares two compare-field values (integers exactly, else as text); positive when `a` is newer. */
export function compareValues(a: string | null, b: string | null): number {
  if (a === b) return 0;
  if (a === null) return -1;
  if (b === null) return 1;
  if (/^-?\d+$/.test(a) && /^-?\d+$/.test(b)) {
    const x = BigInt(a);
    const y = BigInt(b);
    return x === y ? 0 : x > y ? 1 : -1;
  }
  return a > b ? 1 : -1;
}
