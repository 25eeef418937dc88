import type { Readable } from 'node:stream';

/**
 * Reads a PostgreSQL binary COPY stream tuple by tuple without holding more than one network chunk plus one row:
 * fields are handed out as Buffer slices (null for SQL NULL) for the caller to decode.
 */
export async function* binaryCopyTuples(stream: Readable): AsyncGenerator<(Buffer | null)[]> {
  let buf: Buffer = Buffer.alloc(0);
  let headerDone = false;
  for await (const chunk of stream as AsyncIterable<Buffer>) {
    buf = buf.length === 0 ? chunk : Buffer.concat([buf, chunk]);
    let pos = 0;
    if (!headerDone) {
      if (buf.length < 19) continue;
      const extension = buf.readInt32BE(15);
      if (buf.length < 19 + extension) continue;
      pos = 19 + extension;
      headerDone = true;
    }
    for (;;) {
      if (buf.length - pos < 2) break;
      const count = buf.readInt16BE(pos);
      if (count === -1) return;
      let p = pos + 2;
      const fields: (Buffer | null)[] = new Array<Buffer | null>(count);
      let complete = true;
      for (let i = 0; i < count; i += 1) {
        if (buf.length - p < 4) {
          complete = false;
          break;
        }
        const len = buf.readInt32BE(p);
        p += 4;
        if (len === -1) {
          fields[i] = null;
          continue;
        }
        if (buf.length - p < len) {
          complete = false;
          break;
        }
        fields[i] = buf.subarray(p, p + len);
        p += len;
      }
      if (!complete) break;
      pos = p;
      yield fields;
    }
    buf = pos === 0 ? buf : Buffer.from(buf.subarray(pos));
  }
}
