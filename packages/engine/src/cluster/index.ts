/**
 * The cluster: host registry and heartbeat, leader election, the scheduler and maintenance loops the leader runs,
 * the pg-boss queue, the sync and drill workers, and the runtime that starts them for a process.
 */
export * from './queue.ts';
export * from './host-registry.ts';
export * from './leader-election.ts';
export * from './scheduler.ts';
export * from './maintenance.ts';
export * from './worker.ts';
export * from './drill-worker.ts';
export * from './config.ts';
export * from './retry.ts';
export * from './runtime.ts';
export * from './status.ts';
