import { setTimeout as sleep } from 'node:timers/promises';
import { describe, expect, it } from 'vitest';
import { Lookahead } from '../../packages/engine/src/sync/lookahead.ts';

describe('lookahead work done while waiting for PostgreSQL', () => {
  it('runs queued work in order while a promise is pending, and hands each result to its table once', async () => {
    const ran: string[] = [];
    const ahead = new Lookahead();
    for (const t of ['a', 'b', 'c']) {
      ahead.schedule(t, () => {
        ran.push(t);
        return { changed: t === 'b' };
      });
    }
    expect(await ahead.during(sleep(30).then(() => 42))).toBe(42);
    expect(ran).toEqual(['a', 'b', 'c']);
    expect(ahead.take('b')).toEqual({ changed: true });
    expect(ahead.take('b')).toBeUndefined();
    expect(ahead.take('a')).toEqual({ changed: false });
  });

  it('stops as soon as the awaited work is done, and a table taking its turn drops its queued work', async () => {
    const ran: string[] = [];
    const ahead = new Lookahead();
    for (const t of ['a', 'b', 'c']) {
      ahead.schedule(t, () => {
        ran.push(t);
        const until = Date.now() + 20;
        while (Date.now() < until); // a synchronous SQLite scan
        return { fingerprint: t };
      });
    }
    expect(ahead.take('b')).toBeUndefined();
    await ahead.during(Promise.resolve());
    expect(ran).toEqual([]);
    await ahead.during(sleep(5));
    expect(ran).toEqual(['a']);
    await ahead.during(sleep(100));
    expect(ran).toEqual(['a', 'c']);
  });

  it('leaves a failing read to the table itself and still settles with the awaited outcome', async () => {
    const ahead = new Lookahead();
    ahead.schedule('broken', () => {
      throw new Error('SQLITE_CORRUPT');
    });
    await expect(ahead.during(sleep(10).then(() => Promise.reject(new Error('chunk refused'))))).rejects.toThrow(
      'chunk refused',
    );
    expect(ahead.take('broken')).toBeUndefined();
  });
});
