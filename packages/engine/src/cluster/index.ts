export * from './queue.ts';
export * from './host-registry.ts';
export * from './leader-election.ts';
export * from './scheduler.ts';
export * from './worker.ts';
export * from './config.ts';
export * from './retry.ts';
export * from './runtime.ts';
