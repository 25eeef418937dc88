import { z } from 'zod';
import { loadConfig } from '@owui-sync/engine';
import { clusterConfigShape, refineClusterConfig } from '@owui-sync/engine/cluster';
import { parseTenantLabels, type TenantLabels } from '@owui-sync/engine/fleet-metrics';
import { CONFIG_DEFAULTS, booleanFromEnv, composeConfig, intFromEnv } from '@owui-sync/schema';

/**
 * The API's settings. Environment variables (or .credentials):
 *   API_PORT (9443 node-a, 9444 node-b), API_HOST, ENABLE_METRICS, CACHE_TTL,
 *   API_TOKEN (static bearer token) with API_TOKEN_SCOPES, JWT_SECRET (HS256 bearer JWTs carrying a `scope` claim),
 *   API_PUBLIC_READS (GET endpoints without a token), API_PUBLIC_HEALTH / API_PUBLIC_METRICS (probes, default open),
 *   API_TRUST_LOOPBACK (auto: when neither API_TOKEN nor JWT_SECRET is set, callers on this machine need no token),
 *   JWT_REQUIRE_EXP (default true: JWTs without `exp` are refused), JWT_MAX_LIFETIME (seconds from iat to exp),
 *   METRICS_TENANT_LABELS (true, false or top-N; default top-50), RPO_FACTOR (default 2).
 * A secret that is set but empty or only whitespace is refused: it never silently means "no token".
 */

export const API_SCOPES = ['read', 'sync:trigger', 'conflicts:resolve', 'state:write', 'recover'] as const;
export type ApiScope = (typeof API_SCOPES)[number];

const scopeList = z
  .string()
  .trim()
  .transform((v, ctx) => {
    const parts = v.split(/[\s,]+/).filter(Boolean);
    if (parts.includes('*')) return [...API_SCOPES];
    const bad = parts.filter((p) => !(API_SCOPES as readonly string[]).includes(p));
    if (bad.length > 0) {
      ctx.addIssue({
        code: 'custom',
        message: `unknown scope(s) ${bad.join(', ')}; use ${API_SCOPES.join(', ')} or *`,
      });
      return z.NEVER;
    }
    return parts as ApiScope[];
  });

/** A secret: refused when set but empty or only whitespace (that must never mean "no token"), or shorter than `min`. */
const secret = (name: string, min: number, what: string) =>
  z.string().superRefine((v, ctx) => {
    if (v.trim() === '') {
      ctx.addIssue({
        code: 'custom',
        message:
          `is set but empty (or only whitespace): give ${what} of at least ${min} characters, ` +
          `or unset ${name} (and ${name}_FILE) to run without one`,
      });
    } else if (v.trim().length < min) {
      ctx.addIssue({ code: 'custom', message: `must be at least ${min} characters` });
    }
  });

/** METRICS_TENANT_LABELS: which tenants get per-tenant series on /metrics. */
const tenantLabels = z.string().transform((v, ctx) => {
  try {
    return parseTenantLabels(v);
  } catch (error) {
    ctx.addIssue({ code: 'custom', message: (error as Error).message });
    return z.NEVER;
  }
});

/** The API's own variables (all optional: apiConfigFromEnv applies CONFIG_DEFAULTS). Nodes add these to theirs. */
export const apiOwnConfigShape = {
  API_TOKEN: secret('API_TOKEN', 16, 'a token')
    .transform((v) => v.trim())
    .optional(),
  API_TOKEN_SCOPES: scopeList.optional(),
  JWT_SECRET: secret('JWT_SECRET', 32, 'an HS256 secret').optional(),
  JWT_REQUIRE_EXP: booleanFromEnv.optional(),
  JWT_MAX_LIFETIME: intFromEnv(1, 366 * 86_400).optional(),
  API_PUBLIC_READS: booleanFromEnv.optional(),
  API_PUBLIC_HEALTH: booleanFromEnv.optional(),
  API_PUBLIC_METRICS: booleanFromEnv.optional(),
  API_TRUST_LOOPBACK: z.enum(['auto', 'true', 'false']).optional(),
  /** How often each node reads other nodes' state invalidations, ms (default 500). */
  STATE_POLL_INTERVAL_MS: intFromEnv(50, 60_000).optional(),
  /** Per-tenant series on /metrics: true (every tenant), false (none) or top-N (the N furthest behind). */
  METRICS_TENANT_LABELS: tenantLabels.optional(),
  /** A tenant is outside its recovery-point objective when its lag exceeds RPO_FACTOR × its sync interval. */
  RPO_FACTOR: z.coerce.number().min(1).max(1000).optional(),
  /** A tenant is overdue for a restore drill after this many hours without a passed one (default 48). */
  DRILL_MAX_AGE_HOURS: intFromEnv(1, 87_600).optional(),
} as const;

/**
 * Every variable an API-serving process reads: base → cluster (the database, pool, queue and heartbeat settings an
 * API-only process needs as much as a node) → the API's own. A node composes the same shape as kind 'node'.
 */
export const apiConfigShape = { ...clusterConfigShape, ...apiOwnConfigShape } as const;

/** The API-only process's configuration (apps/api), with the shared checks and the cluster's own. */
export const apiConfigSchema = composeConfig('api', apiConfigShape).superRefine(refineClusterConfig);
export type ApiEnvConfig = z.infer<typeof apiConfigSchema>;

/** HTTP settings of the API served by every node (what createApp/startApiServer take). */
export type ApiConfig = {
  /** Port to listen on (node-a 9443, node-b 9444; 0 picks a free one). */
  readonly port: number;
  /** Interface to bind (default 0.0.0.0). */
  readonly host?: string;
  /** Serve /metrics (ENABLE_METRICS, default true). */
  readonly enableMetrics?: boolean;
  /** State cache lifetime, seconds (CACHE_TTL, default 300). */
  readonly cacheTtlSeconds?: number;
  readonly statePollIntervalMs?: number;
  /** Which tenants get per-tenant metric series (METRICS_TENANT_LABELS, default top-50). */
  readonly tenantLabels?: TenantLabels;
  /** Lag beyond this many sync intervals breaches a tenant's recovery-point objective (RPO_FACTOR, default 2). */
  readonly rpoFactor?: number;
  /** Seconds without a passed restore drill after which a tenant is overdue (DRILL_MAX_AGE_HOURS, default 48 h). */
  readonly drillMaxAgeSeconds?: number;
  /** How long one read of the fleet figures serves scrapes, ms (default 5000). */
  readonly metricsCacheMs?: number;
  readonly auth?: ApiAuthConfig;
};

export type ApiAuthConfig = {
  /** Static bearer token and the scopes it grants. */
  readonly apiToken?: string;
  readonly apiTokenScopes?: readonly ApiScope[];
  /** HS256 secret for bearer JWTs; their `scope` (space-separated) or `scopes` (array) claim lists scopes. */
  readonly jwtSecret?: string;
  /** Refuse JWTs without an `exp` claim (default true). */
  readonly jwtRequireExp?: boolean;
  /** Refuse JWTs whose lifetime (exp − iat, or exp − now without iat) is longer than this many seconds. */
  readonly jwtMaxLifetimeSeconds?: number;
  /** GET endpoints answer without a token. */
  readonly publicReads?: boolean;
  readonly publicHealth?: boolean;
  readonly publicMetrics?: boolean;
  /**
   * Requests from this machine (127.0.0.0/8, ::1, no X-Forwarded-For) act with every scope. `auto` (default):
   * only while no API_TOKEN or JWT_SECRET is configured, so the design documents' curl examples work out of the box.
   */
  readonly trustLoopback?: 'auto' | boolean;
};

/** ApiConfig from parsed environment variables. */
export function apiConfigFromEnv(env: Partial<ApiEnvConfig>): ApiConfig {
  const d = CONFIG_DEFAULTS;
  const trust = env.API_TRUST_LOOPBACK ?? d.API_TRUST_LOOPBACK;
  return {
    port: env.API_PORT ?? d.API_PORT,
    host: env.API_HOST ?? d.API_HOST,
    enableMetrics: env.ENABLE_METRICS ?? d.ENABLE_METRICS,
    cacheTtlSeconds: env.CACHE_TTL ?? d.CACHE_TTL,
    statePollIntervalMs: env.STATE_POLL_INTERVAL_MS ?? d.STATE_POLL_INTERVAL_MS,
    tenantLabels: env.METRICS_TENANT_LABELS ?? parseTenantLabels(d.METRICS_TENANT_LABELS),
    rpoFactor: env.RPO_FACTOR ?? d.RPO_FACTOR,
    drillMaxAgeSeconds: (env.DRILL_MAX_AGE_HOURS ?? d.DRILL_MAX_AGE_HOURS) * 3600,
    auth: {
      ...(env.API_TOKEN ? { apiToken: env.API_TOKEN } : {}),
      apiTokenScopes: env.API_TOKEN_SCOPES ?? [...API_SCOPES],
      ...(env.JWT_SECRET ? { jwtSecret: env.JWT_SECRET } : {}),
      jwtRequireExp: env.JWT_REQUIRE_EXP ?? d.JWT_REQUIRE_EXP,
      ...(env.JWT_MAX_LIFETIME ? { jwtMaxLifetimeSeconds: env.JWT_MAX_LIFETIME } : {}),
      publicReads: env.API_PUBLIC_READS ?? d.API_PUBLIC_READS,
      publicHealth: env.API_PUBLIC_HEALTH ?? d.API_PUBLIC_HEALTH,
      publicMetrics: env.API_PUBLIC_METRICS ?? d.API_PUBLIC_METRICS,
      trustLoopback: trust === 'auto' ? 'auto' : trust === 'true',
    },
  };
}

/**
 * Reads an API-only process's configuration from the environment (and .credentials in cwd) and returns its API
 * settings; lists every problem at once (DATABASE_URL is required, as for every long-running process).
 */
export function loadApiConfig(opts: { env: NodeJS.ProcessEnv; cwd?: string }): ApiConfig {
  return apiConfigFromEnv(loadConfig(apiConfigSchema, opts));
}
