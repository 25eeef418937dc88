/**
 * The scheduler runs inside every full node (apps/node) and acts only while that node leads; it has no process of
 * its own. Its logic lives in the engine.
 */
export {
  runSchedulerTick,
  startScheduler,
  type SchedulerLoop,
  type SchedulerTickOptions,
  type SchedulerTickResult,
} from '../../../packages/engine/src/cluster/scheduler.ts';
export {
  LeaderElector,
  assertLease,
  readLease,
  type Lease,
} from '../../../packages/engine/src/cluster/leader-election.ts';
