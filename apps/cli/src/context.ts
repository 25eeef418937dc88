import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import type pg from 'pg';
import { environmentWithCredentials } from '../../../packages/engine/src/config.ts';
import { createPool } from '../../../packages/engine/src/db.ts';
import { ConfigError } from '../../../packages/engine/src/errors.ts';
import { createLogger, silentLogger, type Logger } from '../../../packages/engine/src/logger.ts';
import { DEFAULT_SERVICE_ROLE } from '../../../packages/schema/src/install.ts';
import { type CliIo, Prompter } from './io.ts';
import { urlencode } from './ops/credentials.ts';

export const DEFAULT_CLUSTER = 'owui-sync';

export type GlobalFlags = {
  readonly json?: boolean;
  readonly databaseUrl?: string;
  readonly adminUrl?: string;
  readonly credentials?: string;
  readonly cluster?: string;
};

export type PoolKind = 'admin' | 'service';

/**
 * What a command needs to reach the database: connection strings from flags, the environment or `.credentials`
 * (in that order), lazily created pools that `close()` ends, the output mode and a prompter for confirmations.
 */
export class CliContext {
  readonly io: CliIo;
  readonly json: boolean;
  readonly cluster: string;
  readonly logger: Logger;
  #env: Record<string, string | undefined> | undefined;
  #pools = new Map<PoolKind, pg.Pool>();
  #prompter: Prompter | undefined;
  /** `syncctl init` creates the credentials file, so a missing one is not an error there. */
  optionalCredentials = false;

  constructor(
    io: CliIo,
    readonly flags: GlobalFlags,
  ) {
    this.io = io;
    this.json = Boolean(flags.json);
    this.cluster = flags.cluster ?? io.env.CLUSTER_NAME ?? DEFAULT_CLUSTER;
    const level = io.env.LOG_LEVEL ?? 'warn';
    this.logger = level === 'silent' ? silentLogger() : createLogger({ level, destination: process.stderr });
  }

  /** The environment merged with the credentials file (environment wins); flags win over both. */
  get env(): Readonly<Record<string, string | undefined>> {
    if (!this.#env) {
      const env: Record<string, string | undefined> = { ...this.io.env };
      if (this.flags.credentials) env.CREDENTIALS_FILE = path.resolve(this.io.cwd, this.flags.credentials);
      if (this.optionalCredentials && env.CREDENTIALS_FILE && !existsSync(env.CREDENTIALS_FILE)) {
        delete env.CREDENTIALS_FILE;
      }
      resolveFileSecrets(env);
      this.#env = environmentWithCredentials({ env, cwd: this.io.cwd });
      if (this.flags.databaseUrl) this.#env.DATABASE_URL = this.flags.databaseUrl;
      if (this.flags.adminUrl) this.#env.ADMIN_URL = this.flags.adminUrl;
    }
    return this.#env;
  }

  /** The service role: SERVICE_ROLE, else the user of DATABASE_URL (without a pooler's `.project_ref`), else sync_service. */
  get serviceRole(): string {
    if (this.env.SERVICE_ROLE) return this.env.SERVICE_ROLE;
    try {
      const user = this.env.DATABASE_URL ? decodeURIComponent(new URL(this.env.DATABASE_URL).username) : '';
      const role = user.split('.')[0];
      if (role && /^[a-z_][a-z0-9_]{0,62}$/.test(role)) return role;
    } catch {
      // fall through to the default
    }
    return DEFAULT_SERVICE_ROLE;
  }

  /** The admin connection string, or an error saying where to put it. */
  adminUrl(purpose = 'this command'): string {
    const url = this.env.ADMIN_URL;
    if (!url) {
      throw new ConfigError([
        `ADMIN_URL not set: ${purpose} needs the admin connection; export ADMIN_URL=postgresql://postgres:…@host:5432/postgres, ` +
          'pass --admin-url, or run from the directory holding .credentials (written by syncctl init)',
      ]);
    }
    return url;
  }

  /** The service-role connection string, or an error saying where to put it. */
  serviceUrl(): string {
    const url = this.env.DATABASE_URL;
    if (!url) {
      throw new ConfigError([
        'DATABASE_URL not set: source .credentials (export DATABASE_URL="$SYNC_URL") or pass --database-url; ' +
          'no .credentials yet? run: syncctl init',
      ]);
    }
    return url;
  }

  pool(kind: PoolKind): pg.Pool {
    let pool = this.#pools.get(kind);
    if (!pool) {
      const url = kind === 'admin' ? this.adminUrl() : this.serviceUrl();
      assertPostgresUrl(kind === 'admin' ? 'ADMIN_URL' : 'DATABASE_URL', url);
      pool = createPool(url, { max: 4, applicationName: `syncctl-${kind}`, logger: this.logger });
      this.#pools.set(kind, pool);
    }
    return pool;
  }

  /** For reads and plain updates: the service role when configured, else the admin connection. */
  readPool(): { pool: pg.Pool; kind: PoolKind } {
    if (this.env.DATABASE_URL) return { pool: this.pool('service'), kind: 'service' };
    if (this.env.ADMIN_URL) return { pool: this.pool('admin'), kind: 'admin' };
    this.serviceUrl();
    throw new Error('unreachable');
  }

  get prompter(): Prompter {
    this.#prompter ??= new Prompter(this.io.stdin, this.json ? this.io.stderr : this.io.stdout);
    return this.#prompter;
  }

  /** True when a person can answer questions (stdin and stdout are terminals) — or a test says so. */
  get interactive(): boolean {
    return Boolean(this.io.stdin.isTTY) || this.io.env.SYNCCTL_INTERACTIVE === '1';
  }

  out(text: string): void {
    this.io.stdout.write(text.endsWith('\n') ? text : `${text}\n`);
  }

  err(text: string): void {
    this.io.stderr.write(text.endsWith('\n') ? text : `${text}\n`);
  }

  /** Prints `value` as JSON in --json mode, else the human text. */
  result(value: unknown, human: () => string): void {
    if (this.json) this.out(JSON.stringify(value, jsonReplacer, 2));
    else this.out(human());
  }

  async close(): Promise<void> {
    this.#prompter?.close();
    const pools = [...this.#pools.values()];
    this.#pools.clear();
    await Promise.all(pools.map((p) => p.end().catch(() => undefined)));
  }
}

/** JSON for scripts: bigints as numbers when safe, dates as ISO strings. */
export function jsonReplacer(_key: string, value: unknown): unknown {
  if (typeof value === 'bigint') return Number.isSafeInteger(Number(value)) ? Number(value) : value.toString();
  return value;
}

/**
 * Docker-secret style configuration: `X_FILE` fills X from a file (DATABASE_URL, ADMIN_URL, SYNC_SERVICE_PASSWORD,
 * API_TOKEN, JWT_SECRET),
 * and DATABASE_PASSWORD_FILE / ADMIN_PASSWORD_FILE put a password into a URL that has none, so URLs can stay in
 * plain environment while passwords live only in secrets.
 */
export function resolveFileSecrets(env: Record<string, string | undefined>): void {
  const read = (file: string) => {
    try {
      return readFileSync(file, 'utf8').replace(/\r?\n$/, '');
    } catch (error) {
      throw new ConfigError([`cannot read secret file ${file}: ${(error as Error).message}`]);
    }
  };
  for (const key of ['DATABASE_URL', 'ADMIN_URL', 'SYNC_SERVICE_PASSWORD', 'API_TOKEN', 'JWT_SECRET']) {
    const file = env[`${key}_FILE`];
    const secret = key === 'API_TOKEN' || key === 'JWT_SECRET';
    if (secret && file !== undefined && file.trim() === '') {
      throw new ConfigError([`${key}_FILE is set but empty; name the file holding ${key}, or unset ${key}_FILE`]);
    }
    if (file && !env[key]) {
      const value = read(file).trim();
      if (secret && value === '') {
        throw new ConfigError([
          `${key}_FILE ${file} is empty (or only whitespace); write ${key} into it, or unset ${key}_FILE to run ` +
            `without one`,
        ]);
      }
      env[key] = value;
    }
  }
  for (const [urlKey, fileKey] of [
    ['DATABASE_URL', 'DATABASE_PASSWORD_FILE'],
    ['ADMIN_URL', 'ADMIN_PASSWORD_FILE'],
  ] as const) {
    const file = env[fileKey];
    const url = env[urlKey];
    if (!file || !url) continue;
    try {
      const u = new URL(url);
      if (!u.password) {
        u.password = urlencode(read(file));
        env[urlKey] = u.toString();
      }
    } catch (error) {
      if (error instanceof ConfigError) throw error;
      throw new ConfigError([`${urlKey} is not a valid URL`]);
    }
  }
}

/** Refuses what is not a postgres:// URL before the driver turns it into a confusing host name. */
export function assertPostgresUrl(name: string, url: string): void {
  let ok = /^postgres(ql)?:\/\//.test(url);
  if (ok) {
    try {
      new URL(url);
    } catch {
      ok = false;
    }
  }
  if (!ok) {
    throw new ConfigError([
      `${name} is not a valid postgresql:// connection URL ` +
        '(URL-encode special characters in the password; syncctl init writes correct ones to .credentials)',
    ]);
  }
}
