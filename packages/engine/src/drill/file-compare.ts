import { hash } from 'node:crypto';
import type Database from 'better-sqlite3';
import { quoteIdent } from '@owui-sync/schema';
import type { RestoredTable } from '../restore/restore.ts';
import { normalise, type RestoreKind } from '../restore/values.ts';

/**
 * The restored file compared with the backup in constant memory. While the restore streams the backup, every row's
 * content hash (after the same normalisation verify uses, so SQLite's column affinity does not count) is added into
 * a per-table sum; afterwards the file's rows are read back and summed the same way. Equal row counts and equal
 * sums mean the file holds exactly the backup's rows; a difference names the table, and the drill then runs the
 * row-by-row comparison (verifyTenant) to say which rows.
 *
 * The sum is four 32-bit lanes of each row's MD5, each added modulo 2^32: independent of row order, and a changed,
 * missing or extra row changes it except with negligible probability (this guards against faults, not tampering).
 */

type TableDigest = { columns: readonly string[]; kinds: readonly RestoreKind[]; rows: number; sum: Uint32Array };

export type FileCompareTable = { table: string; backupRows: number; fileRows: number; ok: boolean };

export class BackupDigest {
  readonly #tables = new Map<string, TableDigest>();

  /** restoreTenant's onRow. */
  readonly add = (table: RestoredTable, values: readonly unknown[]): void => {
    let t = this.#tables.get(table.name);
    if (!t) {
      t = { columns: table.columns, kinds: table.kinds, rows: 0, sum: new Uint32Array(4) };
      this.#tables.set(table.name, t);
    }
    t.rows += 1;
    addRow(t.sum, t.kinds, values);
  };

  /**
   * Reads every restored table of `db` and compares it with what the restore streamed. `restored` is the restore's
   * row count per table (tables that got no row never reached onRow).
   */
  compare(db: Database.Database, restored: Readonly<Record<string, number>>): FileCompareTable[] {
    const out: FileCompareTable[] = [];
    for (const [name, backupRows] of Object.entries(restored)) {
      const t = this.#tables.get(name);
      if (!t) {
        const fileRows = Number(
          db
            .prepare(`SELECT count(*) FROM ${quoteIdent(name)}`)
            .pluck()
            .get(),
        );
        out.push({ table: name, backupRows, fileRows, ok: fileRows === backupRows && backupRows === 0 });
        continue;
      }
      const sum = new Uint32Array(4);
      let fileRows = 0;
      const stmt = db
        .prepare(`SELECT ${t.columns.map(quoteIdent).join(', ')} FROM ${quoteIdent(name)}`)
        .raw(true)
        .safeIntegers(true);
      for (const values of stmt.iterate() as Iterable<unknown[]>) {
        fileRows += 1;
        addRow(sum, t.kinds, values);
      }
      const ok = fileRows === t.rows && t.rows === backupRows && sum.every((v, i) => v === t.sum[i]);
      out.push({ table: name, backupRows: t.rows, fileRows, ok });
    }
    return out;
  }
}

function addRow(sum: Uint32Array, kinds: readonly RestoreKind[], values: readonly unknown[]): void {
  let text = '';
  for (let i = 0; i < kinds.length; i += 1) {
    const n = normalise(kinds[i] as RestoreKind, values[i]);
    text += n === null ? '\u0000N' : `\u0000V${n.length}:${n}`;
  }
  const d = hash('md5', text, 'buffer');
  sum[0] = (sum[0] as number) + d.readUInt32LE(0);
  sum[1] = (sum[1] as number) + d.readUInt32LE(4);
  sum[2] = (sum[2] as number) + d.readUInt32LE(8);
  sum[3] = (sum[3] as number) + d.readUInt32LE(12);
}
