import pino, { type Logger } from 'pino';
import { redactSecrets } from './errors.ts';

export type { Logger } from 'pino';

export type LoggerOptions = {
  readonly level?: string;
  readonly format?: 'json' | 'pretty';
  readonly name?: string;
  readonly base?: Record<string, unknown>;
  /** Destination stream (tests); defaults to stdout. */
  readonly destination?: pino.DestinationStream;
};

/** Keys whose values are always replaced in log lines. */
export const REDACTED_PATHS = [
  'password',
  '*.password',
  'connectionString',
  '*.connectionString',
  'databaseUrl',
  '*.databaseUrl',
  'adminUrl',
  '*.adminUrl',
  'DATABASE_URL',
  '*.DATABASE_URL',
  'ADMIN_URL',
  '*.ADMIN_URL',
  'SYNC_URL',
  '*.SYNC_URL',
  'authorization',
  '*.authorization',
  'headers.authorization',
  'req.headers.authorization',
  'token',
  '*.token',
  'JWT_SECRET',
  'API_TOKEN',
];

/**
 * pino logger: JSON by default, pretty when asked (LOG_FORMAT=pretty). Secrets are removed twice: known keys are
 * censored and every message and error text goes through redactSecrets, so a connection string in a driver error
 * never reaches the log.
 */
export function createLogger(options: LoggerOptions = {}): Logger {
  const pinoOptions: pino.LoggerOptions = {
    level: options.level ?? 'info',
    redact: { paths: REDACTED_PATHS, censor: '***' },
    hooks: {
      logMethod(args, method) {
        method.apply(
          this,
          args.map((a) => (typeof a === 'string' ? redactSecrets(a) : a)) as Parameters<typeof method>,
        );
      },
    },
    serializers: {
      err: (err: unknown) => {
        const s = pino.stdSerializers.err(err as Error);
        return { ...s, message: redactSecrets(s.message ?? ''), stack: s.stack ? redactSecrets(s.stack) : s.stack };
      },
    },
    ...(options.base ? { base: options.base } : {}),
    ...(options.name ? { name: options.name } : {}),
  };
  if (options.destination) return pino(pinoOptions, options.destination);
  if (options.format === 'pretty') {
    return pino({ ...pinoOptions, transport: { target: 'pino-pretty', options: { colorize: true } } });
  }
  return pino(pinoOptions);
}

/** A logger that drops everything (library callers that pass none). */
export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}
