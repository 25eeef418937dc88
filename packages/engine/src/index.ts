export * from './types.ts';
export * from './errors.ts';
export * from './logger.ts';
export * from './db.ts';
export * from './config.ts';
export * from './local-postgres.ts';
export * from './metrics.ts';
