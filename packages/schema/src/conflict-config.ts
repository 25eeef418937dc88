import { z } from 'zod';

/** The five ways a row changed on both sides can be settled. */
export const CONFLICT_STRATEGIES = ['newest_wins', 'source_wins', 'target_wins', 'merge', 'manual'] as const;
export type ConflictStrategy = (typeof CONFLICT_STRATEGIES)[number];

export const MERGE_RULES = ['append', 'newest_wins', 'union'] as const;
export type MergeRule = (typeof MERGE_RULES)[number];

const strategySchema = z.enum(CONFLICT_STRATEGIES);

export const tableStrategySchema = z
  .object({
    strategy: strategySchema,
    compare_field: z.string().min(1).optional(),
    merge_rules: z.record(z.string().min(1), z.enum(MERGE_RULES)).optional(),
    /** Each run that finds conflicts in this table logs a warning naming the tenant, the table and how to review. */
    notify: z.boolean().optional(),
    reason: z.string().optional(),
  })
  .strict()
  .superRefine((value, ctx) => {
    if (value.strategy === 'merge' && (!value.merge_rules || Object.keys(value.merge_rules).length === 0)) {
      ctx.addIssue({ code: 'custom', message: 'strategy "merge" needs merge_rules', path: ['merge_rules'] });
    }
    if (value.strategy !== 'merge' && value.merge_rules) {
      ctx.addIssue({ code: 'custom', message: 'merge_rules only apply to strategy "merge"', path: ['merge_rules'] });
    }
  });
export type TableStrategy = z.infer<typeof tableStrategySchema>;

const conflictBodySchema = z
  .object({
    default_strategy: strategySchema.default('newest_wins'),
    table_strategies: z.record(z.string().min(1), tableStrategySchema).default({}),
    // No defaults inside: an unset field keeps meaning "the default", so a stored config never pins one.
    resolution_log: z
      .object({
        /**
         * Log automatically resolved conflicts too (default true). Conflicts left for a person (`manual`) are always
         * logged: the log is where they wait for a decision.
         */
        enabled: z.boolean(),
        /** Days resolved conflicts of this tenant are kept (default CONFLICT_RETENTION_DAYS, applied by maintenance). */
        retention_days: z.number().int().min(1).max(36_500),
        /** Store both row versions with each automatic resolution (default true; always for manual ones). */
        include_data_snapshot: z.boolean(),
      })
      .partial()
      .optional(),
  })
  .strict();

/**
 * The conflict-resolution config file. Accepts both shapes the design documents use: the bare object and the one
 * wrapped in `{ "conflict_resolution": { … } }`.
 */
export const conflictConfigSchema = z.preprocess(
  (input) =>
    input && typeof input === 'object' && 'conflict_resolution' in input
      ? (input as { conflict_resolution: unknown }).conflict_resolution
      : input,
  conflictBodySchema,
);
export type ConflictConfig = z.infer<typeof conflictBodySchema>;

export const DEFAULT_CONFLICT_CONFIG: ConflictConfig = conflictConfigSchema.parse({});
