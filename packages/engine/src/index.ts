/**
 * Infrastructure shared by every process and area: glossary types, errors, logging, database access, config
 * loading, metrics, the embedded PostgreSQL and the service-login check. Each area has its own entry:
 * `@owui-sync/engine/sync`, `/cluster`, `/restore`, `/drill`, `/state`, `/process`, … (see package.json).
 */
export * from './types.ts';
export * from './errors.ts';
export * from './logger.ts';
export * from './db.ts';
export * from './config.ts';
export * from './local-postgres.ts';
export * from './metrics.ts';
export * from './service-login.ts';
