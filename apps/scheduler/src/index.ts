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
} from '@owui-sync/engine/cluster';
export { LeaderElector, assertLease, readLease, type Lease } from '@owui-sync/engine/cluster';
