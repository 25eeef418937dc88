export * from './queue.ts';
export * from './host-registry.ts';
export * from './leader-election.ts';
export * from './scheduler.ts';
export * from './worker.ts';
