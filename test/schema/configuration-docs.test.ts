import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { apiConfigShape } from '@owui-sync/api';
import { CONFIG_DEFAULTS, baseConfigShape } from '@owui-sync/schema';

/**
 * docs/configuration.md is the table of every variable: each variable a process's schema accepts has a row there,
 * and each row's default is the one CONFIG_DEFAULTS applies. A variable added to a schema, or a default changed,
 * without its row fails here.
 */

type Row = { names: string[]; defaults: string[]; readers: string };

function documentedRows(): Map<string, { default: string; readers: string }> {
  const text = readFileSync(path.resolve('docs/configuration.md'), 'utf8');
  const rows = new Map<string, { default: string; readers: string }>();
  for (const line of text.split('\n')) {
    if (!line.startsWith('| `')) continue;
    const cells = line.split(' | ').map((c) => c.replace(/^\| ?| ?\|$/g, '').trim());
    const row: Row = {
      names: [...cells[0]!.matchAll(/`([A-Z][A-Z0-9_]*)`/g)].map((m) => m[1]!),
      defaults: (cells[1] ?? '').split(' / ').map((d) => d.trim()),
      readers: cells.length > 3 ? (cells[2] ?? '') : '',
    };
    row.names.forEach((name, i) =>
      rows.set(name, { default: row.defaults[i] ?? row.defaults[0] ?? '', readers: row.readers }),
    );
  }
  return rows;
}

describe('docs/configuration.md', () => {
  const rows = documentedRows();

  it('has a row for every variable a process reads', () => {
    const variables = new Set([...Object.keys(baseConfigShape), ...Object.keys(apiConfigShape)]);
    const missing = [...variables].filter((name) => !rows.has(name));
    expect(missing, 'variables without a row in docs/configuration.md').toEqual([]);
  });

  it('gives every variable the default of the one table, and names the processes that read it', () => {
    const wrong: string[] = [];
    for (const [name, value] of Object.entries(CONFIG_DEFAULTS)) {
      const row = rows.get(name);
      if (!row) {
        wrong.push(`${name}: no row`);
        continue;
      }
      // The default's first word: `json`, 30, true, `top-50`, `info` (N W S P); `warn` (C) …
      const shown = row.default.replace(/`/g, '').split(/[\s(;]/)[0];
      if (shown !== String(value)) wrong.push(`${name}: documented ${row.default}, applied ${String(value)}`);
    }
    for (const [name, row] of rows) {
      if (row.readers !== '' && !/^(?:[NWSPAC](?: |$))+|^C \(/.test(row.readers))
        wrong.push(`${name}: readers "${row.readers}"`);
    }
    expect(wrong).toEqual([]);
  });
});
