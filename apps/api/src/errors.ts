import type { Context } from 'hono';
import { HTTPException } from 'hono/http-exception';
import type { ContentfulStatusCode } from 'hono/utils/http-status';
import type { Logger } from 'pino';
import type { ZodError } from 'zod';
import { AppError, ERROR_CODES, errorMessage, type ErrorCode, isConnectionError } from '@owui-sync/engine';

/**
 * One place maps failures to HTTP: AppError codes to statuses, zod issues to 400, Hono's HTTPExceptions (malformed
 * JSON, body too large, bad token) to theirs, unreachable database to 503. Anything else is a 500 that is logged
 * with its stack and answered without internals.
 */

export type ErrorBody = {
  error: string;
  message: string;
  issues?: { path: string; message: string; code?: string }[];
  [key: string]: unknown;
};

const STATUS_BY_CODE: Record<ErrorCode, ContentfulStatusCode> = {
  [ERROR_CODES.config]: 500,
  [ERROR_CODES.notFound]: 404,
  [ERROR_CODES.conflict]: 409,
  [ERROR_CODES.invalidInput]: 422,
  [ERROR_CODES.leadershipLost]: 503,
  [ERROR_CODES.sourceUnusable]: 422,
  [ERROR_CODES.schemaDrift]: 409,
  [ERROR_CODES.database]: 503,
  [ERROR_CODES.aborted]: 503,
  [ERROR_CODES.forbidden]: 403,
  [ERROR_CODES.internal]: 500,
};

export function zodIssues(error: ZodError): NonNullable<ErrorBody['issues']> {
  return error.issues.map((i) => ({
    path: i.path.map(String).join('.') || '(root)',
    message: i.message,
    code: i.code,
  }));
}

/** 400 with every zod issue: what the request validators answer for a bad body, query or path. */
export function validationFailed(c: Context, error: ZodError, target: string): Response {
  const issues = zodIssues(error);
  return c.json(
    {
      error: 'invalid_request',
      message: `invalid ${target}: ${issues.map((i) => `${i.path}: ${i.message}`).join('; ')}`,
      issues,
    } satisfies ErrorBody,
    400,
  );
}

export function errorHandler(logger: Logger) {
  return (err: Error, c: Context): Response => {
    if (err instanceof HTTPException) {
      const res = err.getResponse();
      const status = err.status as ContentfulStatusCode;
      const headers: Record<string, string> = {};
      const auth = res.headers.get('WWW-Authenticate');
      if (auth) headers['WWW-Authenticate'] = auth;
      const message =
        err.message ||
        (status === 401
          ? 'a valid bearer token is required'
          : status === 413
            ? 'request body too large'
            : 'bad request');
      return c.json({ error: httpErrorName(status), message } satisfies ErrorBody, status, headers);
    }
    if (err instanceof AppError) {
      const status = STATUS_BY_CODE[err.code] ?? 500;
      if (status >= 500) logger.warn({ err }, `${c.req.method} ${c.req.path}: ${err.message}`);
      return c.json(
        {
          error: err.code.toLowerCase(),
          message: err.message,
          ...(err.details ? { details: err.details } : {}),
        } satisfies ErrorBody,
        status,
      );
    }
    const pgCode = (err as { code?: unknown }).code;
    if (typeof pgCode === 'string' && /^2[23][0-9A-Z]{3}$/.test(pgCode)) {
      // Data exceptions (22xxx) and constraint violations (23xxx) come from what the request asked for.
      logger.info({ err }, `${c.req.method} ${c.req.path}: refused by the database: ${errorMessage(err)}`);
      return c.json(
        {
          error: pgCode.startsWith('22') ? 'invalid_value' : 'constraint_violation',
          message: `the database refused the value: ${errorMessage(err)}`,
        } satisfies ErrorBody,
        pgCode.startsWith('22') ? 422 : 409,
      );
    }
    if (isConnectionError(err)) {
      logger.warn({ err }, `${c.req.method} ${c.req.path}: database unreachable: ${errorMessage(err)}`);
      return c.json(
        {
          error: 'database_unavailable',
          message: 'the database cannot be reached right now; retry shortly (see /health)',
        } satisfies ErrorBody,
        503,
      );
    }
    logger.error({ err }, `${c.req.method} ${c.req.path} failed: ${errorMessage(err)}`);
    return c.json(
      { error: 'internal', message: 'internal error; see the node log for details' } satisfies ErrorBody,
      500,
    );
  };
}

function httpErrorName(status: number): string {
  switch (status) {
    case 400:
      return 'invalid_request';
    case 401:
      return 'unauthorized';
    case 403:
      return 'forbidden';
    case 404:
      return 'not_found';
    case 413:
      return 'payload_too_large';
    default:
      return status >= 500 ? 'internal' : 'error';
  }
}
