/**
 * What every long-running process shares: starting the cluster side of a node, worker or scheduler, the product
 * version, and the one entry helper that handles signals and exit codes.
 */
export { isEntryPoint, runIfEntryPoint, runProcess, runUntilSignalled, type Stoppable } from './run.ts';
export { productVersion } from './version.ts';
export {
  loadRunTenantSync,
  notRunningSyncs,
  startClusterProcess,
  type ProcessDeps,
  type ProcessKind,
  type RunningProcess,
} from './start.ts';
