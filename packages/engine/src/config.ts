import { readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import type { z } from 'zod';
import { ConfigError } from './errors.ts';

export type LoadConfigOptions = {
  /** Environment to read (the app passes process.env; the engine itself never reads it). */
  readonly env: Readonly<Record<string, string | undefined>>;
  /** Directory searched for `.credentials` when CREDENTIALS_FILE is not set. */
  readonly cwd?: string;
};

/** Variables a `.credentials` file may provide, and the config names they fill when the environment lacks them. */
const CREDENTIAL_KEYS: Readonly<Record<string, string>> = {
  ADMIN_URL: 'ADMIN_URL',
  SYNC_URL: 'DATABASE_URL',
  DATABASE_URL: 'DATABASE_URL',
};

/**
 * Parses a `.credentials` file (shell `KEY=value` lines, optional `export`, optional quotes). Refuses a file that
 * group or others can read, as the credentials of the admin role must not be.
 */
export function readCredentialsFile(file: string): Record<string, string> {
  const mode = statSync(file).mode;
  if ((mode & 0o077) !== 0) {
    throw new ConfigError([
      `${file} is readable by group or others (mode ${(mode & 0o777).toString(8)}); run: chmod 600 ${file}`,
    ]);
  }
  const values: Record<string, string> = {};
  for (const raw of readFileSync(file, 'utf8').split(/\r?\n/)) {
    const line = raw.trim();
    if (!line || line.startsWith('#')) continue;
    const m = /^(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)=(.*)$/.exec(line);
    if (!m?.[1]) continue;
    let value = (m[2] ?? '').trim();
    if ((value.startsWith('"') && value.endsWith('"')) || (value.startsWith("'") && value.endsWith("'"))) {
      value = value.slice(1, -1);
    }
    values[m[1]] = value;
  }
  return values;
}

/** Where the credentials file is looked for. */
export function credentialsPath(options: LoadConfigOptions): string {
  return options.env.CREDENTIALS_FILE ?? path.join(options.cwd ?? '.', '.credentials');
}

/**
 * Variables whose empty value is kept (and refused by the schemas) instead of meaning "not set": an empty API token
 * must not silently open the API.
 */
const KEPT_WHEN_EMPTY = new Set(['API_TOKEN', 'JWT_SECRET']);

/**
 * Docker-secret style configuration, for every process: `X_FILE` fills X from a file (DATABASE_URL, ADMIN_URL,
 * SYNC_SERVICE_PASSWORD, API_TOKEN, JWT_SECRET), and DATABASE_PASSWORD_FILE / ADMIN_PASSWORD_FILE put a password
 * into a URL that has none, so URLs can stay in plain environment while passwords live only in secrets. A variable
 * set directly wins over its file. Changes `env` in place; running it twice changes nothing more.
 */
export function resolveFileSecrets(env: Record<string, string | undefined>): void {
  const read = (file: string) => {
    try {
      return readFileSync(file, 'utf8').replace(/\r?\n$/, '');
    } catch (error) {
      throw new ConfigError([`cannot read secret file ${file}: ${(error as Error).message}`]);
    }
  };
  for (const key of SECRET_FILE_KEYS) {
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
        u.password = percentEncode(read(file));
        env[urlKey] = u.toString();
      }
    } catch (error) {
      if (error instanceof ConfigError) throw error;
      throw new ConfigError([`${urlKey} is not a valid URL`]);
    }
  }
}

/** Variables a `X_FILE` variable may fill. */
const SECRET_FILE_KEYS = ['DATABASE_URL', 'ADMIN_URL', 'SYNC_SERVICE_PASSWORD', 'API_TOKEN', 'JWT_SECRET'] as const;

/** Percent-encodes everything but unreserved characters, byte by byte (a password inside a URL). */
function percentEncode(text: string): string {
  let out = '';
  for (const byte of Buffer.from(text, 'utf8')) {
    const c = String.fromCharCode(byte);
    out += /[-_.~a-zA-Z0-9]/.test(c) ? c : `%${byte.toString(16).padStart(2, '0')}`;
  }
  return out;
}

/**
 * The environment with `*_FILE` secrets resolved and merged with `.credentials` (environment wins), for the given
 * options. The options' env is not changed.
 */
export function environmentWithCredentials(options: LoadConfigOptions): Record<string, string | undefined> {
  const resolved: Record<string, string | undefined> = { ...options.env };
  resolveFileSecrets(resolved);
  const env: Record<string, string | undefined> = {};
  for (const [k, v] of Object.entries(resolved)) {
    if (v !== undefined && (v !== '' || KEPT_WHEN_EMPTY.has(k))) env[k] = v;
  }
  const file = credentialsPath(options);
  let exists = false;
  try {
    exists = statSync(file).isFile();
  } catch {
    exists = false;
  }
  if (exists) {
    const creds = readCredentialsFile(file);
    for (const [from, to] of Object.entries(CREDENTIAL_KEYS)) {
      const value = creds[from];
      if (value && env[to] === undefined) env[to] = value;
    }
  } else if (options.env.CREDENTIALS_FILE) {
    throw new ConfigError([`CREDENTIALS_FILE ${file} does not exist`]);
  }
  return env;
}

/**
 * The one configuration pipeline every process runs: the environment, `*_FILE` secrets and `.credentials` merged
 * (environment wins), validated with the process's schema (composed with composeConfig from
 * @owui-sync/schema, which applies the one table of defaults and the shared cross-field checks), every problem
 * reported at once (`NAME: message`), and the result frozen.
 */
export function loadConfig<S extends z.ZodType>(schema: S, options: LoadConfigOptions): Readonly<z.infer<S>> {
  return parseConfig(schema, environmentWithCredentials(options));
}

/** The validating half of loadConfig, for an environment already merged with secrets and `.credentials`. */
export function parseConfig<S extends z.ZodType>(
  schema: S,
  env: Readonly<Record<string, string | undefined>>,
): Readonly<z.infer<S>> {
  const result = schema.safeParse(env);
  if (!result.success) {
    const problems = result.error.issues.map((issue) => {
      const key = issue.path.join('.') || '(config)';
      const given = typeof issue.path[0] === 'string' ? env[issue.path[0]] : undefined;
      const shown = given !== undefined && !/URL|PASSWORD|SECRET|TOKEN/.test(key) ? ` (got "${given}")` : '';
      return `${key}: ${issue.message}${shown}`;
    });
    throw new ConfigError(problems);
  }
  return Object.freeze(result.data);
}
