/** Text output helpers: tables, boxes, times and durations as operators read them. */

export type Column<T> = { readonly header: string; readonly value: (row: T) => string; readonly align?: 'right' };

/** A plain aligned table (header, dashed rule, rows), like the seeds' job listings. */
export function table<T>(rows: readonly T[], columns: readonly Column<T>[]): string {
  const cells = rows.map((row) => columns.map((c) => c.value(row)));
  const widths = columns.map((c, i) => Math.max(c.header.length, ...cells.map((r) => width(r[i] ?? ''))));
  const line = (values: readonly string[]) =>
    values
      .map((v, i) => (columns[i]?.align === 'right' ? pad(v, widths[i] ?? 0, true) : pad(v, widths[i] ?? 0)))
      .join('  ')
      .trimEnd();
  const out = [line(columns.map((c) => c.header)), widths.map((w) => '-'.repeat(w)).join('  ')];
  for (const r of cells) out.push(line(r));
  return out.join('\n');
}

/** A table drawn with box characters, as in the cluster deregistration report. */
export function boxTable(headers: readonly string[], rows: readonly (readonly string[])[]): string {
  const widths = headers.map((h, i) => Math.max(width(h), ...rows.map((r) => width(r[i] ?? ''))));
  const rule = (l: string, m: string, r: string) => l + widths.map((w) => '─'.repeat(w + 2)).join(m) + r;
  const row = (values: readonly string[]) => '│' + widths.map((w, i) => ` ${pad(values[i] ?? '', w)} `).join('│') + '│';
  return [rule('┌', '┬', '┐'), row(headers), rule('├', '┼', '┤'), ...rows.map(row), rule('└', '┴', '┘')].join('\n');
}

/** A double-line banner box around one or more lines. */
export function banner(lines: readonly string[], minWidth = 64): string {
  const w = Math.max(minWidth, ...lines.map((l) => width(l) + 2));
  return ['╔' + '═'.repeat(w) + '╗', ...lines.map((l) => '║  ' + pad(l, w - 2) + '║'), '╚' + '═'.repeat(w) + '╝'].join(
    '\n',
  );
}

/** Display width: counts wide emoji as two columns so boxes stay aligned in a terminal. */
export function width(text: string): number {
  let n = 0;
  for (const ch of text) {
    const cp = ch.codePointAt(0) ?? 0;
    if (cp === 0xfe0f || cp === 0x200d) continue;
    n += cp >= 0x1f000 || (cp >= 0x2600 && cp <= 0x27bf && cp !== 0x2713) ? 2 : 1;
  }
  return n;
}

function pad(text: string, w: number, right = false): string {
  const fill = ' '.repeat(Math.max(0, w - width(text)));
  return right ? fill + text : text + fill;
}

/** `2025-10-10 10:30:00` in UTC, or `-`. */
export function timestamp(value: Date | string | null | undefined): string {
  if (value === null || value === undefined) return '-';
  const d = value instanceof Date ? value : new Date(value);
  if (Number.isNaN(d.getTime())) return String(value);
  return d.toISOString().replace('T', ' ').slice(0, 19);
}

/** `1.2s`, `3m 04s`, `2h 05m`, or `-`. */
export function duration(seconds: number | string | null | undefined): string {
  if (seconds === null || seconds === undefined || seconds === '') return '-';
  const s = Number(seconds);
  if (!Number.isFinite(s)) return '-';
  if (s < 60) return `${s.toFixed(1)}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m ${String(Math.floor(s % 60)).padStart(2, '0')}s`;
  if (s < 86400) return `${Math.floor(s / 3600)}h ${String(Math.floor((s % 3600) / 60)).padStart(2, '0')}m`;
  return `${Math.floor(s / 86400)}d ${String(Math.floor((s % 86400) / 3600)).padStart(2, '0')}h`;
}

/** Seconds as an age: `12s ago`, `5m 02s ago`, or `never`. */
export function age(seconds: number | string | null | undefined): string {
  if (seconds === null || seconds === undefined) return 'never';
  const s = Math.max(0, Number(seconds));
  return s < 60 ? `${Math.round(s)}s ago` : `${duration(s)} ago`;
}

/** Interval in seconds as the operator typed it: `300s (5m)`. */
export function interval(seconds: number): string {
  if (seconds < 60) return `${seconds}s`;
  return `${seconds}s (${duration(seconds)
    .replace(/ 00[sm]$/, '')
    .replace('.0s', 's')})`;
}

/** A text progress bar: `██████░░░░ 60%`. */
export function bar(done: number, total: number | null, size = 24): string {
  if (!total || total <= 0) return `${'░'.repeat(size)}  ${done} rows`;
  const ratio = Math.min(1, done / total);
  const full = Math.round(ratio * size);
  return `${'█'.repeat(full)}${'░'.repeat(size - full)} ${String(Math.round(ratio * 100)).padStart(3)}%  ${done}/${total}`;
}
