/**
 * The engine's error family: a stable `code` callers (HTTP, CLI) map to statuses and exit codes, a message that says
 * what happened and what to do, and the original `cause`. Messages never carry credentials (see redactSecrets).
 */

export const ERROR_CODES = {
  config: 'CONFIG_INVALID',
  notFound: 'NOT_FOUND',
  conflict: 'CONFLICT',
  invalidInput: 'INVALID_INPUT',
  leadershipLost: 'LEADERSHIP_LOST',
  sourceUnusable: 'SOURCE_UNUSABLE',
  schemaDrift: 'SCHEMA_DRIFT',
  database: 'DATABASE_ERROR',
  aborted: 'ABORTED',
  forbidden: 'FORBIDDEN',
  internal: 'INTERNAL',
} as const;
export type ErrorCode = (typeof ERROR_CODES)[keyof typeof ERROR_CODES];

export class AppError extends Error {
  readonly code: ErrorCode;
  readonly details: Readonly<Record<string, unknown>> | undefined;

  constructor(code: ErrorCode, message: string, options: { cause?: unknown; details?: Record<string, unknown> } = {}) {
    super(redactSecrets(message), options.cause === undefined ? undefined : { cause: options.cause });
    this.name = new.target.name;
    this.code = code;
    this.details = options.details;
  }
}

/** Configuration is missing or invalid; `problems` lists every issue found, not just the first. */
export class ConfigError extends AppError {
  readonly problems: readonly string[];
  constructor(problems: readonly string[]) {
    super(ERROR_CODES.config, `invalid configuration:\n  - ${problems.join('\n  - ')}`);
    this.problems = problems.map(redactSecrets);
  }
}

export class NotFoundError extends AppError {
  constructor(message: string, details?: Record<string, unknown>) {
    super(ERROR_CODES.notFound, message, details ? { details } : {});
  }
}

/** The request clashes with the current state (tenant paused, already registered, …). */
export class ConflictError extends AppError {
  constructor(message: string, details?: Record<string, unknown>) {
    super(ERROR_CODES.conflict, message, details ? { details } : {});
  }
}

export class InvalidInputError extends AppError {
  constructor(message: string, details?: Record<string, unknown>) {
    super(ERROR_CODES.invalidInput, message, details ? { details } : {});
  }
}

/** This process acted as leader but no longer holds the lease with its epoch. */
export class LeadershipLostError extends AppError {
  constructor(message = 'leadership lost: the lease is held by another node or a newer epoch') {
    super(ERROR_CODES.leadershipLost, message);
  }
}

/** The tenant's SQLite file is missing, corrupt, locked too long or not an Open WebUI database. */
export class SourceUnusableError extends AppError {
  constructor(message: string, options: { cause?: unknown; details?: Record<string, unknown> } = {}) {
    super(ERROR_CODES.sourceUnusable, message, options);
  }
}

export class SchemaDriftError extends AppError {
  constructor(message: string, details?: Record<string, unknown>) {
    super(ERROR_CODES.schemaDrift, message, details ? { details } : {});
  }
}

export class AbortedError extends AppError {
  constructor(message = 'operation aborted') {
    super(ERROR_CODES.aborted, message);
  }
}

const URL_CREDENTIALS = /\b(postgres(?:ql)?|https?|redis|amqp):\/\/([^:/?#@\s]+):([^@\s]*)@/gi;
const PASSWORD_PAIRS = /\b(password|passwd|pwd|SYNC_SERVICE_PASSWORD)\s*([=:])\s*("[^"]*"|'[^']*'|[^\s&;,]+)/gi;

/** Removes passwords from connection strings and `password=…` pairs in any text (messages, logs, stack traces). */
export function redactSecrets(text: string): string {
  return text.replace(URL_CREDENTIALS, '$1://$2:***@').replace(PASSWORD_PAIRS, '$1$2***');
}

/** A connection string safe to print: password replaced. */
export function redactUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = '***';
    return u.toString();
  } catch {
    return redactSecrets(url);
  }
}

/** Best-effort message of an unknown thrown value, redacted. */
export function errorMessage(error: unknown): string {
  if (error instanceof Error) return redactSecrets(error.message);
  // Some libraries (pg-boss's worker errors) hand over plain objects copied from an Error.
  if (error && typeof error === 'object' && typeof (error as { message?: unknown }).message === 'string') {
    return redactSecrets((error as { message: string }).message);
  }
  return redactSecrets(String(error));
}
