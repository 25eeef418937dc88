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

/** The environment merged with `.credentials` (environment wins), for the given options. */
export function environmentWithCredentials(options: LoadConfigOptions): Record<string, string | undefined> {
  const env: Record<string, string | undefined> = {};
  for (const [k, v] of Object.entries(options.env)) {
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
 * Validates configuration with a zod schema, reporting every problem at once (`NAME: message`), and freezes the
 * result.
 */
export function loadConfig<S extends z.ZodType>(schema: S, options: LoadConfigOptions): Readonly<z.infer<S>> {
  const env = environmentWithCredentials(options);
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
