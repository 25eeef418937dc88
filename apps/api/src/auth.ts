import { timingSafeEqual, createHash } from 'node:crypto';
import { getConnInfo } from '@hono/node-server/conninfo';
import type { Context, MiddlewareHandler } from 'hono';
import { HTTPException } from 'hono/http-exception';
import { jwt } from 'hono/jwt';
import { API_SCOPES, type ApiAuthConfig, type ApiScope } from './config.ts';

/**
 * Bearer-token authorisation. A request carries either the static API_TOKEN or an HS256 JWT signed with JWT_SECRET
 * (verified by Hono's JWT middleware: signature, exp, nbf); a JWT's scopes come from its `scope` claim
 * (space-separated, OAuth style) or `scopes` array. No token → 401, a token without the route's scope → 403.
 * Callers on this machine act with every scope while no credentials are configured (API_TRUST_LOOPBACK=auto).
 */

export type Principal = { readonly subject: string; readonly scopes: readonly ApiScope[]; readonly via: string };
export type AuthVariables = { principal?: Principal; jwtPayload?: unknown };

const sha = (s: string) => createHash('sha256').update(s).digest();

function scopesOf(payload: unknown): ApiScope[] {
  if (!payload || typeof payload !== 'object') return [];
  const p = payload as { scope?: unknown; scopes?: unknown };
  const raw: unknown[] =
    typeof p.scope === 'string' ? p.scope.split(/\s+/) : Array.isArray(p.scopes) ? (p.scopes as unknown[]) : [];
  if (raw.includes('*')) return [...API_SCOPES];
  return raw.filter((s): s is ApiScope => (API_SCOPES as readonly unknown[]).includes(s));
}

function isLoopback(c: Context): boolean {
  // Behind a proxy on the same machine every client would look local: a forwarded request never is.
  if (c.req.header('x-forwarded-for') || c.req.header('forwarded') || c.req.header('x-real-ip')) return false;
  try {
    const address = getConnInfo(c).remote.address ?? '';
    return address === '::1' || address.startsWith('127.') || address.startsWith('::ffff:127.');
  } catch {
    return false; // no socket (app.request() in tests)
  }
}

export type Authorizer = {
  /** Middleware requiring `scope`; `public` routes let anonymous callers through (a bad token is still refused). */
  require(scope: ApiScope | null, options?: { public?: boolean }): MiddlewareHandler<{ Variables: AuthVariables }>;
  /** True when the API is open to anonymous callers on this machine. */
  readonly loopbackTrusted: boolean;
  readonly configured: boolean;
};

export function createAuthorizer(config: ApiAuthConfig = {}): Authorizer {
  const configured = Boolean(config.apiToken || config.jwtSecret);
  const loopbackTrusted =
    config.trustLoopback === 'auto' || config.trustLoopback === undefined ? !configured : config.trustLoopback;
  const tokenScopes = config.apiTokenScopes ?? [...API_SCOPES];
  const staticPrincipal: Principal | null = config.apiToken
    ? { subject: 'api-token', scopes: tokenScopes, via: 'token' }
    : null;
  // Compared as SHA-256 digests with timingSafeEqual: constant time whatever the presented token's length.
  const tokenDigest = config.apiToken ? sha(config.apiToken) : null;
  const jwtMiddleware = config.jwtSecret ? jwt({ secret: config.jwtSecret, alg: 'HS256' }) : undefined;

  async function authenticate(c: Context<{ Variables: AuthVariables }>): Promise<Principal | null> {
    const header = c.req.header('authorization');
    if (!header) return null;
    const match = /^Bearer\s+(\S+)\s*$/i.exec(header);
    if (!match?.[1]) {
      throw new HTTPException(401, { message: 'the Authorization header must be "Bearer <token>"' });
    }
    const token = match[1];
    if (staticPrincipal && tokenDigest && timingSafeEqual(sha(token), tokenDigest)) return staticPrincipal;
    if (jwtMiddleware && token.split('.').length === 3) {
      try {
        await jwtMiddleware(c as Context, async () => undefined);
      } catch {
        throw new HTTPException(401, { message: 'the bearer token is invalid or expired' });
      }
      const payload = c.get('jwtPayload') as { sub?: unknown } | undefined;
      const subject = typeof payload?.sub === 'string' && payload.sub ? payload.sub : 'jwt';
      return { subject, scopes: scopesOf(payload), via: 'jwt' };
    }
    throw new HTTPException(401, {
      message: configured
        ? 'the bearer token is not valid for this API'
        : 'this API has no tokens configured (set API_TOKEN or JWT_SECRET on the node)',
    });
  }

  return {
    loopbackTrusted,
    configured,
    require(scope, options = {}) {
      return async (c, next) => {
        let principal = await authenticate(c);
        if (!principal && loopbackTrusted && isLoopback(c)) {
          principal = { subject: 'local', scopes: [...API_SCOPES], via: 'loopback' };
        }
        if (principal) c.set('principal', principal);
        if (options.public || scope === null) return next();
        if (!principal) {
          c.header('WWW-Authenticate', 'Bearer realm="owui-sync"');
          throw new HTTPException(401, {
            message: `a bearer token with scope "${scope}" is required (Authorization: Bearer <API_TOKEN or JWT>)`,
          });
        }
        if (!principal.scopes.includes(scope)) {
          throw new HTTPException(403, {
            message: `the token lacks scope "${scope}" (it has: ${principal.scopes.join(', ') || 'none'})`,
          });
        }
        return next();
      };
    },
  };
}

/** Who did it, for resolved_by and logs: api:<subject>. */
export function actor(c: Context<{ Variables: AuthVariables }>): string {
  const p = c.get('principal');
  return p ? `api:${p.subject}` : 'api';
}
