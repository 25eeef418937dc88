import { AppError, ConfigError, errorMessage } from '@owui-sync/engine';

/** Turns driver and configuration errors into a sentence that says what to do next. */
export function describeError(error: unknown): string {
  if (error instanceof ConfigError) {
    return error.problems.length === 1 ? (error.problems[0] ?? error.message) : error.message;
  }
  if (error instanceof AppError) return error.message;
  const message = errorMessage(error);
  const code = (error as { code?: unknown } | null)?.code;
  switch (code) {
    case 'ECONNREFUSED':
    case 'ENOTFOUND':
    case 'EAI_AGAIN':
    case 'ETIMEDOUT':
      return `cannot reach PostgreSQL (${message}); is the server running and DATABASE_URL/ADMIN_URL right? (Supabase direct connections need IPv6; use the pooler URL otherwise)`;
    case '28P01':
    case '28000':
      return `${message}; check the password in .credentials (re-run syncctl init to reset the service password)`;
    case '42501':
      return `${message}; this needs the admin connection (ADMIN_URL) or the grants from syncctl init (re-run it)`;
    case '3F000':
    case '42P01':
      return `${message}; sync_metadata is not installed in this database: run syncctl init`;
    case '3D000':
      return `${message}; check the database name in the connection URL`;
    default:
      return message || 'unexpected error';
  }
}
