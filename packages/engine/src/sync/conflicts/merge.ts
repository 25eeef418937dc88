import type { MergeRule } from '@owui-sync/schema';
import type { TablePlan } from '../table-plan.ts';

/**
 * The merge strategy: per merge rule (union, append, newest_wins), the columns or JSON keys of a row it combines, and
 * the combined values of two versions. Pure functions over the two versions' column text.
 */

export type MergeTarget = { rule: MergeRule; column: string; path: string | null };

/** Rule keys name a column, `column.key` inside a JSON column, or a top-level key of one of the JSON columns. */
export function mergeTargetsFor(plan: TablePlan, rules: Record<string, MergeRule>): MergeTarget[] {
  const out: MergeTarget[] = [];
  const jsonCols = plan.columns.filter((c, i) => plan.types[i] === 'json' || plan.types[i] === 'text');
  for (const [name, rule] of Object.entries(rules)) {
    if (plan.columns.includes(name)) {
      if (!plan.key.includes(name)) out.push({ rule, column: name, path: null });
      continue;
    }
    const dot = name.indexOf('.');
    if (dot > 0 && plan.columns.includes(name.slice(0, dot))) {
      out.push({ rule, column: name.slice(0, dot), path: name.slice(dot + 1) });
      continue;
    }
    // e.g. "messages" for chat: a key inside the `chat` JSON body.
    const host = plan.name === 'chat' && jsonCols.includes('chat') ? 'chat' : jsonCols.find((c) => c !== 'id');
    if (host && name !== 'metadata') out.push({ rule, column: host, path: name });
    else if (name === 'metadata' && plan.columns.includes('meta')) out.push({ rule, column: 'meta', path: null });
  }
  return out;
}

function parseJson(text: string | null | undefined): { ok: boolean; value: unknown } {
  if (text === null || text === undefined) return { ok: true, value: undefined };
  try {
    return { ok: true, value: JSON.parse(text) };
  } catch {
    return { ok: false, value: undefined };
  }
}

function identity(item: unknown): string {
  if (item && typeof item === 'object' && !Array.isArray(item) && 'id' in item) {
    return `id:${JSON.stringify((item as { id: unknown }).id)}`;
  }
  return JSON.stringify(item);
}

/** Applies one merge rule to a target and a source value. */
export function combine(rule: MergeRule, target: unknown, source: unknown, sourceNewer: boolean): unknown {
  if (source === undefined) return target;
  if (target === undefined) return source;
  if (Array.isArray(target) && Array.isArray(source)) {
    const seen = new Set<string>();
    const out: unknown[] = [];
    const base = rule === 'union' ? target.filter((x) => !seen.has(identity(x)) && seen.add(identity(x))) : [...target];
    if (rule !== 'union') for (const x of target) seen.add(identity(x));
    out.push(...base);
    for (const x of source) {
      const id = identity(x);
      if (!seen.has(id)) {
        seen.add(id);
        out.push(x);
      }
    }
    return out;
  }
  const isObj = (v: unknown) => v !== null && typeof v === 'object' && !Array.isArray(v);
  if (rule !== 'newest_wins' && isObj(target) && isObj(source)) {
    const t = target as Record<string, unknown>;
    const s = source as Record<string, unknown>;
    const out: Record<string, unknown> = { ...t };
    for (const [k, v] of Object.entries(s)) {
      if (!(k in out)) out[k] = v;
      else out[k] = combine(rule, out[k], v, sourceNewer);
    }
    return out;
  }
  return sourceNewer ? source : target;
}

/** Merged values (as column text) for the merge-rule columns; everything else keeps the target's value. */
export function mergeRow(
  targets: readonly MergeTarget[],
  s: Record<string, string | null>,
  t: Record<string, string | null>,
  sourceNewer: boolean,
): Record<string, string | null> {
  const out: Record<string, string | null> = {};
  const current = (col: string) => (col in out ? out[col] : t[col]) ?? null;
  for (const m of targets) {
    const tText = current(m.column);
    const sText = s[m.column] ?? null;
    if (m.path === null) {
      const tj = parseJson(tText);
      const sj = parseJson(sText);
      if (tj.ok && sj.ok && (typeof tj.value === 'object' || typeof sj.value === 'object')) {
        const v = combine(m.rule, tj.value, sj.value, sourceNewer);
        out[m.column] = v === undefined ? null : JSON.stringify(v);
      } else {
        out[m.column] = sourceNewer ? sText : tText;
      }
      continue;
    }
    const tj = parseJson(tText);
    const sj = parseJson(sText);
    if (!tj.ok || !sj.ok || typeof tj.value !== 'object' || tj.value === null) continue;
    const tObj = { ...(tj.value as Record<string, unknown>) };
    const sObj = (sj.value ?? {}) as Record<string, unknown>;
    tObj[m.path] = combine(m.rule, tObj[m.path], sObj[m.path], sourceNewer);
    out[m.column] = JSON.stringify(tObj);
  }
  return out;
}
