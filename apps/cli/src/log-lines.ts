import type { DestinationStream } from 'pino';

/**
 * How syncctl's own commands log: for people, one plain line per entry (`warn: …`, `error: …`) on stderr; the
 * error's stack and the entry's other fields only when asked for (--verbose, or LOG_LEVEL=debug/trace). Scripts
 * that want the JSON lines ask for them with --json or LOG_FORMAT=json. Long-running processes (syncctl node,
 * worker) keep their own JSON logs.
 */

const LEVEL_NAMES: Readonly<Record<number, string>> = {
  10: 'trace',
  20: 'debug',
  30: 'info',
  40: 'warn',
  50: 'error',
  60: 'fatal',
};

/** Fields every pino line carries, never shown as details. */
const STANDARD = new Set(['level', 'time', 'pid', 'hostname', 'msg', 'err', 'name', 'v']);

/** A pino destination that turns each JSON line into a human-readable one on `out`. */
export function humanLogLines(out: NodeJS.WritableStream, opts: { details: boolean }): DestinationStream {
  return {
    write(line: string) {
      let entry: Record<string, unknown>;
      try {
        entry = JSON.parse(line) as Record<string, unknown>;
      } catch {
        out.write(line);
        return;
      }
      const level = LEVEL_NAMES[Number(entry.level)] ?? 'log';
      const err = entry.err as { message?: string; stack?: string } | undefined;
      const msg = typeof entry.msg === 'string' && entry.msg ? entry.msg : (err?.message ?? '');
      let text = `${level}: ${msg}`;
      if (opts.details) {
        const extra = Object.entries(entry).filter(([k]) => !STANDARD.has(k));
        if (extra.length) text += ` (${extra.map(([k, v]) => `${k}=${JSON.stringify(v)}`).join(', ')})`;
        if (err?.stack) text += `\n${err.stack.replace(/^/gm, '    ')}`;
      }
      out.write(`${text}\n`);
    },
  };
}
