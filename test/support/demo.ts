import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { readdirSync, readFileSync, readlinkSync, rmSync } from 'node:fs';
import path from 'node:path';
import { ROOT_RUNTIME_DIR } from '@owui-sync/engine';

/** `syncctl demo` (what `npm start` runs) as a real process, its output kept for assertions. */
export class DemoProcess {
  readonly child: ChildProcess;
  readonly exited: Promise<number | null>;
  #output = '';

  constructor(checkout: string, env: Record<string, string | undefined>) {
    this.child = spawn(process.execPath, [path.join(checkout, 'apps/cli/bin/syncctl.js'), 'demo', '--no-activity'], {
      cwd: checkout,
      env: { PATH: process.env.PATH, HOME: process.env.HOME, HEARTBEAT_INTERVAL: '2', LEASE_DURATION: '6', ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const append = (d: Buffer) => (this.#output += d.toString());
    this.child.stdout?.on('data', append);
    this.child.stderr?.on('data', append);
    this.exited = once(this.child, 'exit').then(([code]) => code as number | null);
  }

  get output(): string {
    return this.#output;
  }

  /** Resolves once the output matches `pattern`; fails early if the demo exits first. */
  async waitFor(pattern: RegExp, timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!pattern.test(this.#output)) {
      if (this.child.exitCode !== null) throw new Error(`the demo exited before ${pattern}:\n${this.#output}`);
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${pattern}:\n${this.#output}`);
      await new Promise((r) => setTimeout(r, 200));
    }
  }

  /** Ctrl-C, as a terminal would send it; SIGKILL after a minute. Returns the exit code. */
  async stop(): Promise<number | null> {
    if (this.child.exitCode === null) this.child.kill('SIGINT');
    const killer = setTimeout(() => this.child.kill('SIGKILL'), 60_000);
    const code = await this.exited;
    clearTimeout(killer);
    return code;
  }
}

/** Processes whose command line mentions any of `needles` (the demo's nodes and its PostgreSQL), as "pid cmdline". */
export function processesMentioning(...needles: string[]): string[] {
  const found: string[] = [];
  for (const pid of readdirSync('/proc').filter((e) => /^\d+$/.test(e))) {
    if (Number(pid) === process.pid) continue;
    let cmdline: string;
    try {
      cmdline = readFileSync(`/proc/${pid}/cmdline`, 'utf8').replaceAll('\0', ' ');
    } catch {
      continue; // gone meanwhile
    }
    if (needles.some((n) => cmdline.includes(n))) found.push(`${pid} ${cmdline}`);
  }
  return found;
}

/** Removes a demo's directory and, when its PostgreSQL data was kept outside it (started as root), that too. */
export function removeDemoDirs(dir: string, pgDir = path.join(dir, 'postgres')): void {
  let target: string | undefined;
  try {
    target = path.resolve(path.dirname(pgDir), readlinkSync(pgDir));
  } catch {
    // not a link: the data is inside `dir`
  }
  if (target?.startsWith(`${ROOT_RUNTIME_DIR}/data/`)) rmSync(path.dirname(target), { recursive: true, force: true });
  rmSync(dir, { recursive: true, force: true });
}
