import { Readable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { binaryCopyTuples, decodeField, normalise, sqliteDatetimeText } from '@owui-sync/engine/restore';
import { CopyEncoder, copyHeader, copyTrailer } from '@owui-sync/engine/sync';

describe('restore value mapping', () => {
  it('parses a binary COPY stream however it is split into chunks, and decodes each kind exactly', async () => {
    const enc = new CopyEncoder(['ns', 'flag', 'body', 'n', 'f'], ['int8', 'bool', 'json', 'int4', 'float8']);
    enc.encode([1_732_000_000_123_456_789n, 1n, 'null', 7n, 0.1]);
    enc.encode([null, 0n, '{"a":"é\\u0000"}', -3n, -2.5]);
    const bytes = Buffer.concat([copyHeader(), enc.take(), copyTrailer()]);
    for (const size of [1, 2, 3, 5, 7, 13, bytes.length]) {
      const chunks: Buffer[] = [];
      for (let i = 0; i < bytes.length; i += size) chunks.push(bytes.subarray(i, i + size));
      const rows: unknown[][] = [];
      for await (const fields of binaryCopyTuples(Readable.from(chunks))) {
        rows.push([
          decodeField('int8', fields[0] ?? null),
          decodeField('bool', fields[1] ?? null),
          decodeField('json', fields[2] ?? null),
          decodeField('int4', fields[3] ?? null),
          decodeField('float8', fields[4] ?? null),
        ]);
      }
      expect(rows, `chunk size ${size}`).toEqual([
        [1_732_000_000_123_456_789n, 1n, 'null', 7n, 0.1],
        [null, 0n, '{"a":"é\\u0000"}', -3n, -2.5],
      ]);
    }
  });

  it('writes text datetimes the way Open WebUI stored them', () => {
    expect(sqliteDatetimeText('2024-05-01 12:00:00')).toBe('2024-05-01 12:00:00');
    expect(sqliteDatetimeText('2024-05-01 12:00:00.5')).toBe('2024-05-01 12:00:00.500000');
    expect(sqliteDatetimeText('2024-05-01 12:00:00.123456')).toBe('2024-05-01 12:00:00.123456');
  });

  it('normalises representations that mean the same value, and only those', () => {
    expect(normalise('bool', 1n)).toBe(normalise('bool', 'true'));
    expect(normalise('bool', 0n)).not.toBe(normalise('bool', 1n));
    expect(normalise('int8', 1_732_000_000_123_456_789n)).toBe('1732000000123456789');
    expect(normalise('int8', 1_732_000_000_123_456_789n)).not.toBe(normalise('int8', 1_732_000_000_123_456_788n));
    expect(normalise('json', 5n)).toBe(normalise('json', '5'));
    expect(normalise('json', 'null')).toBe('null');
    expect(normalise('json', null)).toBeNull();
    expect(normalise('timestamp', '2024-05-01 12:00:00')).toBe(normalise('timestamp', '2024-05-01 12:00:00.000000'));
    expect(normalise('timestamp', '2024-05-01 12:00:00.5')).not.toBe(normalise('timestamp', '2024-05-01 12:00:00'));
  });
});
