import { crc32 } from 'node:zlib';
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
 * Per row, the CRC-32 of its normalised values (native, several times cheaper than a cryptographic hash: the drill
 * hashes every row twice), accumulated in lanes independent of row order: the sum and the XOR of the CRCs and the sum
 * of the rows' value lengths, modulo 2^32. A changed, missing or extra row goes unnoticed only if its CRC collides
 * (about 1 in 4 billion); the lanes guard against faults, not against someone forging rows.
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
  // CRC-32 of the row's normalised values, fed value by value (no concatenated copy of a large row). Text and JSON
  // strings are taken as they are: the restore wrote exactly the decoded string, and SQLite returns it unchanged
  // (only a value it stored as a number by column affinity needs normalising, and normalise does that).
  let c = 0;
  let length = 0;
  for (let i = 0; i < kinds.length; i += 1) {
    const kind = kinds[i] as RestoreKind;
    const v = values[i];
    const n = typeof v === 'string' && (kind === 'text' || kind === 'json') ? v : normalise(kind, v);
    if (n === null) {
      c = crc32('\u0000N', c);
      continue;
    }
    c = crc32(`\u0000V${n.length}:`, c);
    c = crc32(n, c);
    length += n.length;
  }
  sum[0] = (sum[0] as number) + c;
  sum[1] = ((sum[1] as number) ^ c) >>> 0;
  sum[2] = (sum[2] as number) + length;
  sum[3] = (sum[3] as number) + Math.imul(c, 0x9e3779b1);
}
