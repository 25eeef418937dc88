export {
  createStateManager,
  publishInvalidation,
  type StateManager,
  type StateManagerOptions,
  type StateRead,
  type StateValue,
  type StateWrite,
} from './state-manager.ts';
export {
  DEPLOYMENT_STATUSES,
  STATE_KEY_PATTERN,
  deploymentStatePatchSchema,
  parseStateKey,
  type DeploymentState,
  type DeploymentStatePatch,
  type StateKey,
} from './keys.ts';
export { TtlCache, type CacheEntry, type EvictionReason } from './ttl-cache.ts';
