import { z } from 'zod';
import { CONFLICT_STRATEGIES, checkClientName, conflictConfigSchema } from '@owui-sync/schema';
import { InvalidInputError } from '../errors.ts';

/**
 * State keys. `deployment.<client>` is a tenant's row in sync_metadata.client_deployments (status, sync_enabled,
 * sync_interval, …); any other key is a free-form JSON value stored per cluster (sync_api.state_entries).
 */

export const STATE_KEY_PATTERN = /^[A-Za-z0-9][A-Za-z0-9_.:@/-]{0,254}$/;

export type StateKey =
  | { readonly kind: 'deployment'; readonly key: string; readonly client: string }
  | { readonly kind: 'entry'; readonly key: string };

/** Parses and validates a state key; throws InvalidInputError with the rule when it is not acceptable. */
export function parseStateKey(key: string): StateKey {
  if (typeof key !== 'string' || !STATE_KEY_PATTERN.test(key)) {
    throw new InvalidInputError(
      `state key ${JSON.stringify(String(key).slice(0, 60))} is not valid: use 1–255 characters of letters, digits ` +
        'and . _ : @ / -, starting with a letter or digit (e.g. deployment.acme-corp or my-key)',
    );
  }
  if (key.startsWith('deployment.')) {
    const client = key.slice('deployment.'.length);
    const check = checkClientName(client);
    if (!check.ok) throw new InvalidInputError(`state key "${key}": ${check.reason}`);
    return { kind: 'deployment', key, client };
  }
  return { kind: 'entry', key };
}

export const DEPLOYMENT_STATUSES = ['registered', 'active', 'paused', 'error'] as const;

/** Fields of deployment.<client> a PUT may change (a partial object: only the given fields change). */
export const deploymentStatePatchSchema = z
  .object({
    status: z.enum(DEPLOYMENT_STATUSES).optional(),
    sync_enabled: z.boolean().optional(),
    sync_interval: z.number().int().min(1).max(31_536_000).optional(),
    conflict_strategy: z.enum(CONFLICT_STRATEGIES).optional(),
    conflict_config: conflictConfigSchema.nullable().optional(),
    container_name: z.string().trim().min(1).max(253).nullable().optional(),
  })
  .strict()
  .superRefine((v, ctx) => {
    if (v.status === 'active' && v.sync_enabled === false) {
      ctx.addIssue({ code: 'custom', path: ['sync_enabled'], message: 'status "active" needs sync_enabled true' });
    }
    if (v.status === 'paused' && v.sync_enabled === true) {
      ctx.addIssue({ code: 'custom', path: ['sync_enabled'], message: 'status "paused" needs sync_enabled false' });
    }
  });
export type DeploymentStatePatch = z.infer<typeof deploymentStatePatchSchema>;

/** What GET deployment.<client> returns. */
export type DeploymentState = {
  client_name: string;
  status: string;
  sync_enabled: boolean;
  sync_interval: number;
  last_sync: string | null;
  last_sync_status: string | null;
  last_full_sync: string | null;
  next_sync: string | null;
  conflict_strategy: string;
  conflict_config: unknown;
  container_name: string | null;
  sqlite_path: string | null;
  schema_name: string;
  openwebui_version: string | null;
  updated_at: string;
};
