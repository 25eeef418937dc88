export * from './sql.ts';
export * from './migrate.ts';
export * from './install.ts';
export * from './queues.ts';
export * from './config.ts';
export * from './conflict-config.ts';
export * from './names.ts';
