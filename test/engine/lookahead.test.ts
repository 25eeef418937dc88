import { setTimeout as sleep } from 'node:timers/promises';
import { describe, expect, it } from 'vitest';
import { Lookahead } from '@owui-sync/engine/sync';

describe('work done while waiting for PostgreSQL', () => {
  it('runs steps while a promise is pending, until the work is done', async () => {
    const ahead = new Lookahead();
    let steps = 0;
    ahead.setBackground(() => {
      steps += 1;
      return steps < 5;
    });
    expect(await ahead.during(sleep(50).then(() => 42))).toBe(42);
    expect(steps).toBe(5);
    // Done: later waits run nothing.
    await ahead.during(sleep(10));
    expect(steps).toBe(5);
  });

  it('stops as soon as the awaited work is done, and goes on at the next wait', async () => {
    const ahead = new Lookahead();
    let steps = 0;
    ahead.setBackground(() => {
      steps += 1;
      const until = Date.now() + 15;
      while (Date.now() < until); // a synchronous read of the file
      return true;
    });
    await ahead.during(sleep(20));
    const first = steps;
    expect(first).toBeGreaterThan(0);
    expect(first).toBeLessThan(5);
    await ahead.during(sleep(20));
    expect(steps).toBeGreaterThan(first);
    ahead.setBackground(undefined);
    const after = steps;
    await ahead.during(sleep(20));
    expect(steps).toBe(after);
  });

  it('drops the work when a step throws, and never rejects the awaited promise because of it', async () => {
    const ahead = new Lookahead();
    let steps = 0;
    ahead.setBackground(() => {
      steps += 1;
      throw new Error('unreadable page');
    });
    await expect(ahead.during(sleep(20).then(() => 'ok'))).resolves.toBe('ok');
    expect(steps).toBe(1);
  });
});
