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
 * Callers on this machine act with every scope while no credentials are configured (API_TRUST_LOOPBACK=auto), as
 * long as they address the API by a loopback name (Host: localhost, 127.x.x.x, [::1]): a web page that rebinds its
 * own domain to 127.0.0.1 sends its own domain as Host and is refused. JWTs must carry `exp` (JWT_REQUIRE_EXP) and
 * may be limited in lifetime (JWT_MAX_LIFETIME).
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

/**
 * True when the Host header names this machine by a loopback name: localhost (or *.localhost), 127.0.0.0/8 or
 * [::1], with any port. Browsers always send the name they resolved, so a DNS-rebinding page sends its own domain.
 */
export function isLoopbackHost(host: string | undefined): boolean {
  if (!host) return false;
  const h = host.trim().toLowerCase();
  const name = h.startsWith('[') ? h.slice(0, h.indexOf(']') + 1) : h.replace(/:\d*$/, '');
  if (name === 'localhost' || name.endsWith('.localhost')) return true;
  if (name === '[::1]') return true;
  return /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(name);
}

/** The warning an API that trusts callers on this machine logs at start-up and shows in /health (null: none). */
export function openApiWarning(config: ApiAuthConfig = {}): string | null {
  const configured = Boolean(config.apiToken || config.jwtSecret);
  const trusted =
    config.trustLoopback === 'auto' || config.trustLoopback === undefined ? !configured : config.trustLoopback;
  if (!trusted) return null;
  return configured
    ? 'API_TRUST_LOOPBACK=true: any program on this machine may use every API endpoint without a token'
    : 'no API_TOKEN or JWT_SECRET is configured: any program on this machine may use every API endpoint without ' +
        'a token; set API_TOKEN (or API_TOKEN_FILE) on every node, or API_TRUST_LOOPBACK=false';
}

export type Authorizer = {
  /** Middleware requiring `scope`; `public` routes let anonymous callers through (a bad token is still refused). */
  require(scope: ApiScope | null, options?: { public?: boolean }): MiddlewareHandler<{ Variables: AuthVariables }>;
  /** True when the API is open to anonymous callers on this machine. */
  readonly loopbackTrusted: boolean;
  readonly configured: boolean;
  /** See openApiWarning. */
  readonly warning: string | null;
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

  const requireExp = config.jwtRequireExp ?? true;
  const maxLifetime = config.jwtMaxLifetimeSeconds;

  /** Hono verified signature, exp, nbf and iat; this refuses tokens without exp and tokens living too long. */
  function checkLifetime(payload: { exp?: unknown; iat?: unknown } | undefined): void {
    const exp = typeof payload?.exp === 'number' ? payload.exp : null;
    if (exp === null) {
      if (requireExp || maxLifetime !== undefined) {
        throw new HTTPException(401, {
          message:
            'the JWT has no exp (expiry) claim, so it would be valid forever; issue tokens with exp' +
            (maxLifetime === undefined ? ' (or set JWT_REQUIRE_EXP=false on the node)' : ''),
        });
      }
      return;
    }
    if (maxLifetime === undefined) return;
    const now = Math.floor(Date.now() / 1000);
    const from = typeof payload?.iat === 'number' ? Math.min(payload.iat, now) : now;
    if (exp - from > maxLifetime) {
      throw new HTTPException(401, {
        message: `the JWT is valid for ${exp - from} s, longer than JWT_MAX_LIFETIME (${maxLifetime} s); issue shorter-lived tokens`,
      });
    }
  }

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
      const payload = c.get('jwtPayload') as { sub?: unknown; exp?: unknown; iat?: unknown } | undefined;
      checkLifetime(payload);
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
    warning: openApiWarning(config),
    require(scope, options = {}) {
      return async (c, next) => {
        let principal = await authenticate(c);
        let foreignHost: string | null = null;
        if (!principal && loopbackTrusted && isLoopback(c)) {
          const host = c.req.header('host');
          if (isLoopbackHost(host)) principal = { subject: 'local', scopes: [...API_SCOPES], via: 'loopback' };
          else foreignHost = host ?? '';
        }
        if (principal) c.set('principal', principal);
        if (options.public || scope === null) return next();
        if (!principal) {
          c.header('WWW-Authenticate', 'Bearer realm="owui-sync"');
          throw new HTTPException(401, {
            message:
              foreignHost !== null
                ? `requests without a token are trusted only when they address this machine as localhost, ` +
                  `127.0.0.1 or [::1] (this one said Host: ${JSON.stringify(foreignHost)}); ` +
                  `send a bearer token with scope "${scope}"`
                : `a bearer token with scope "${scope}" is required (Authorization: Bearer <API_TOKEN or JWT>)`,
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
