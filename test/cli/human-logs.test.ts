import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, unlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { useTestDatabase } from '../support/db.ts';
import { makeTenantDb, syncctl } from './support.ts';

const BIN = path.resolve('apps/cli/bin/syncctl.js');

/** The installed syncctl in its own process, as a person runs it (nothing captured in-process). */
function syncctlProcess(
  args: readonly string[],
  env: Record<string, string>,
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const child = spawn(process.execPath, [BIN, ...args], {
    env: { PATH: process.env.PATH ?? '', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  return new Promise((resolve) => child.on('exit', (code) => resolve({ code, stdout, stderr })));
}

const JSON_LINE = /^\s*\{"level":/m;
const STACK_LINE = /^\s+at .+[:(]/m;

describe('syncctl speaks to people: a failed sync', () => {
  const db = useTestDatabase();
  const dir = mkdtempSync(path.join(tmpdir(), 'human-logs-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  const env = () => ({ DATABASE_URL: db.current.serviceUrl, CLUSTER_NAME: 'human' });

  beforeAll(async () => {
    const file = path.join(dir, 'gone.db');
    makeTenantDb(file, 2);
    const r = await syncctl(['client', 'register', 'gone', '--sqlite', file], {
      env: { ...env(), ADMIN_URL: db.current.adminUrl },
    });
    expect(r.code, r.stderr).toBe(0);
    unlinkSync(file); // the SQLite file is missing now: every sync fails
  });

  it('prints plain lines, no JSON log line and no stack trace, by default', async () => {
    const r = await syncctlProcess(['client', 'sync', 'gone'], env());
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/^error: sync of tenant "gone" failed: /m);
    expect(r.stdout).toMatch(/❌ \w+ sync of "gone" failed: .*\n.*does not exist or cannot be read/);
    expect(r.stderr).not.toMatch(JSON_LINE);
    expect(r.stderr).not.toMatch(STACK_LINE);
  });

  it('shows the stack with --verbose or LOG_LEVEL=debug, and JSON log lines with LOG_FORMAT=json or --json', async () => {
    const verbose = await syncctlProcess(['client', 'sync', 'gone', '--verbose'], env());
    expect(verbose.code).toBe(1);
    expect(verbose.stderr).toMatch(STACK_LINE);
    expect(verbose.stderr).not.toMatch(JSON_LINE);
    const debug = await syncctlProcess(['client', 'sync', 'gone'], { ...env(), LOG_LEVEL: 'debug' });
    expect(debug.stderr).toMatch(STACK_LINE);

    const json = await syncctlProcess(['client', 'sync', 'gone'], { ...env(), LOG_FORMAT: 'json' });
    expect(json.code).toBe(1);
    expect(json.stderr).toMatch(JSON_LINE);
    const script = await syncctlProcess(['client', 'sync', 'gone', '--json'], env());
    expect(script.stderr).toMatch(JSON_LINE);
    expect(JSON.parse(script.stdout)).toMatchObject({ client: 'gone', status: 'failed' });
  });
});
