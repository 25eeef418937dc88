import { describe, expect, it } from 'vitest';
import { epochSeconds } from './chat-export.ts';
import { exportFileName } from './recover-files.ts';
import { parseRestoreTime } from './history.ts';
import { isCurrentBackup } from './recover-rows.ts';

const NOW = new Date('2026-05-01T14:00:00.000Z');

describe('parseRestoreTime, as recover reads --at', () => {
  it('reads ISO timestamps (no zone = UTC), dates, now and relative times', () => {
    expect(parseRestoreTime('2026-05-01T13:55:00Z', NOW).toISOString()).toBe('2026-05-01T13:55:00.000Z');
    expect(parseRestoreTime('2026-05-01T15:55:00+02:00', NOW).toISOString()).toBe('2026-05-01T13:55:00.000Z');
    expect(parseRestoreTime('2026-05-01 13:55', NOW).toISOString()).toBe('2026-05-01T13:55:00.000Z');
    expect(parseRestoreTime('2026-04-30', NOW).toISOString()).toBe('2026-04-30T00:00:00.000Z');
    expect(parseRestoreTime(' now ', NOW)).toEqual(NOW);
    expect(parseRestoreTime('-30m', NOW).toISOString()).toBe('2026-05-01T13:30:00.000Z');
    expect(parseRestoreTime('-2h', NOW).toISOString()).toBe('2026-05-01T12:00:00.000Z');
    expect(parseRestoreTime('-7d', NOW).toISOString()).toBe('2026-04-24T14:00:00.000Z');
    expect(parseRestoreTime('-1w', NOW).toISOString()).toBe('2026-04-24T14:00:00.000Z');
    expect(parseRestoreTime('-90s', NOW).toISOString()).toBe('2026-05-01T13:58:30.000Z');
  });

  it('refuses what it cannot read, naming the forms it accepts', () => {
    for (const bad of ['', 'yesterday', '2h', '+2h', '-2x', '2026-13-45', '2026-05-01T25:00:00Z', '-h']) {
      expect(() => parseRestoreTime(bad, NOW), bad).toThrow(/use an ISO time .*-2h, -30m, -7d/);
    }
  });
});

describe('isCurrentBackup', () => {
  it('takes no time and now (within a second) as the current backup, earlier times as history, refuses the future', () => {
    expect(isCurrentBackup(null, NOW)).toBe(true);
    expect(isCurrentBackup(new Date(NOW.getTime() - 500), NOW)).toBe(true);
    expect(isCurrentBackup(new Date(NOW.getTime() + 30_000), NOW)).toBe(true);
    expect(isCurrentBackup(new Date(NOW.getTime() - 30_000), NOW)).toBe(false);
    expect(() => isCurrentBackup(new Date(NOW.getTime() + 120_000), NOW)).toThrow(/in the future/);
  });
});

describe('epochSeconds', () => {
  it('keeps seconds, scales milliseconds and nanoseconds down, reads date texts', () => {
    expect(epochSeconds(1_700_000_000n)).toBe(1_700_000_000);
    expect(epochSeconds(1_700_000_000_123)).toBe(1_700_000_000);
    expect(epochSeconds(1_700_000_000_123_456_789n)).toBe(1_700_000_000);
    expect(epochSeconds('1700000000')).toBe(1_700_000_000);
    expect(epochSeconds('2024-05-01')).toBe(Date.UTC(2024, 4, 1) / 1000);
    expect(epochSeconds('2024-05-01 12:00:00.5')).toBe(Date.UTC(2024, 4, 1, 12) / 1000);
    expect(epochSeconds(null)).toBeNull();
    expect(epochSeconds('soon')).toBeNull();
  });
});

describe('exportFileName', () => {
  it('is safe as a file name whatever the user id', () => {
    expect(exportFileName('acme', 'ada@example.com', NOW)).toBe('acme-ada@example.com-chats-20260501T140000Z.json');
    expect(exportFileName('acme', '../../etc/passwd x', NOW)).toBe(
      'acme-.._.._etc_passwd_x-chats-20260501T140000Z.json',
    );
  });
});
