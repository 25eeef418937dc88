import { existsSync } from 'node:fs';
import path from 'node:path';
import type pg from 'pg';
import {
  environmentWithCredentials,
  parseConfig,
  resolveFileSecrets,
  createPool,
  ConfigError,
  createLogger,
  silentLogger,
  type Logger,
} from '@owui-sync/engine';
import { baseConfigSchema, loginRole, type BaseConfig, DEFAULT_SERVICE_ROLE } from '@owui-sync/schema';
import { type CliIo, Prompter } from './io.ts';
import { humanLogLines } from './log-lines.ts';

export const DEFAULT_CLUSTER = 'owui-sync';

export type GlobalFlags = {
  readonly json?: boolean;
  readonly databaseUrl?: string;
  readonly adminUrl?: string;
  readonly credentials?: string;
  readonly cluster?: string;
  /** Log lines with their details and error stacks (and debug entries). */
  readonly verbose?: boolean;
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
  #config: BaseConfig | undefined;
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
    this.logger = cliLogger(io, flags);
  }

  /** The environment merged with the credentials file (environment wins); flags win over both. */
  get env(): Readonly<Record<string, string | undefined>> {
    if (!this.#env) {
      const env: Record<string, string | undefined> = { ...this.io.env };
      if (this.flags.credentials) env.CREDENTIALS_FILE = path.resolve(this.io.cwd, this.flags.credentials);
      if (this.optionalCredentials && env.CREDENTIALS_FILE && !existsSync(env.CREDENTIALS_FILE)) {
        delete env.CREDENTIALS_FILE;
      }
      this.#env = environmentWithCredentials({ env, cwd: this.io.cwd });
      if (this.flags.databaseUrl) this.#env.DATABASE_URL = this.flags.databaseUrl;
      if (this.flags.adminUrl) this.#env.ADMIN_URL = this.flags.adminUrl;
    }
    return this.#env;
  }

  /**
   * The shared settings (BATCH_SIZE, SYNC_CLAIM_TTL, …) through the same pipeline as every process: defaults from
   * the one table, and the shared checks (DATABASE_URL must not be the admin login, lease > heartbeat).
   */
  get config(): BaseConfig {
    this.#config ??= parseConfig(baseConfigSchema, this.env);
    return this.#config;
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

  /**
   * Refuses a service role that is the admin login: DATABASE_URL (or SERVICE_ROLE) naming the role ADMIN_URL logs
   * in as. Syncs must run as the restricted role, and tenant grants must never be taken from the admin.
   */
  assertServiceNotAdmin(): void {
    const admin = this.env.ADMIN_URL;
    const adminRole = admin ? loginRole(admin) : null;
    if (adminRole === null || this.serviceRole !== adminRole) return;
    const source = this.env.SERVICE_ROLE ? 'SERVICE_ROLE' : 'DATABASE_URL';
    throw new ConfigError([
      `${source} names the admin role "${adminRole}" (the role ADMIN_URL logs in as) as the service role; the ` +
        'service role must be the restricted one: set DATABASE_URL to SYNC_URL from .credentials (syncctl init ' +
        'writes it), or SERVICE_ROLE to its name (default sync_service)',
    ]);
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
      if (kind === 'service') this.assertServiceNotAdmin();
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

/**
 * syncctl's logger: warnings and errors as plain lines on stderr (LOG_LEVEL lowers or raises the threshold);
 * details and stacks with --verbose or LOG_LEVEL=debug/trace; pino's JSON lines with --json or LOG_FORMAT=json.
 */
export function cliLogger(io: CliIo, flags: GlobalFlags): Logger {
  const level = io.env.LOG_LEVEL?.trim().toLowerCase() || (flags.verbose ? 'debug' : 'warn');
  if (level === 'silent') return silentLogger();
  const json = Boolean(flags.json) || io.env.LOG_FORMAT?.trim().toLowerCase() === 'json';
  const details = Boolean(flags.verbose) || level === 'debug' || level === 'trace';
  return createLogger({ level, destination: json ? io.stderr : humanLogLines(io.stderr, { details }) });
}

/** JSON for scripts: bigints as numbers when safe, dates as ISO strings. */
export function jsonReplacer(_key: string, value: unknown): unknown {
  if (typeof value === 'bigint') return Number.isSafeInteger(Number(value)) ? Number(value) : value.toString();
  return value;
}

/** `*_FILE` secrets, resolved by the configuration pipeline of every process (see the engine's config.ts). */
export { resolveFileSecrets };

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
