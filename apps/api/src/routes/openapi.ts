import { errorSchema } from '../schemas.ts';

/** OpenAPI pieces every route file uses: a JSON body of a schema, and the error answers shared by all routes. */

export const json = (schema: unknown) => ({ 'application/json': { schema } }) as never;

export const commonErrors = {
  400: { description: 'invalid request', content: json(errorSchema) },
  401: { description: 'no or invalid token', content: json(errorSchema) },
  403: { description: 'token lacks the scope', content: json(errorSchema) },
} as const;
