import {
  DEFAULT_CONFLICT_CONFIG,
  conflictConfigSchema,
  type ConflictConfig,
  type TableStrategy,
} from '@owui-sync/schema';
import { InvalidInputError } from '../../errors.ts';
import type { TablePlan } from '../table-plan.ts';

/**
 * A tenant's conflict configuration (its conflict_config JSON, or its conflict_strategy for every table) and what
 * it says for one table.
 */

/** The tenant's conflict configuration; an invalid conflict_config is refused with every problem listed. */
export function parseConflictConfig(tenant: {
  readonly clientName: string;
  readonly conflictConfig: unknown;
  readonly conflictStrategy: string;
}): ConflictConfig {
  if (tenant.conflictConfig) {
    const parsed = conflictConfigSchema.safeParse(tenant.conflictConfig);
    if (!parsed.success) {
      throw new InvalidInputError(
        `tenant "${tenant.clientName}" has an invalid conflict_config: ${parsed.error.issues
          .map((i) => `${i.path.join('.')}: ${i.message}`)
          .join('; ')}`,
      );
    }
    return parsed.data;
  }
  return {
    ...DEFAULT_CONFLICT_CONFIG,
    default_strategy: tenant.conflictStrategy as ConflictConfig['default_strategy'],
  };
}

export function strategyFor(config: ConflictConfig, table: string): TableStrategy {
  return config.table_strategies[table] ?? { strategy: config.default_strategy };
}

/** The column whose values say which version is newer: the strategy's compare_field, else updated_at, if synced. */
export function compareFieldFor(strategy: TableStrategy, plan: TablePlan): string | null {
  return strategy.compare_field && plan.columns.includes(strategy.compare_field)
    ? strategy.compare_field
    : plan.columns.includes('updated_at')
      ? 'updated_at'
      : null;
}
