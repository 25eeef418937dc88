import type { PgBoss } from 'pg-boss';
import { PGBOSS_SCHEMA } from '@owui-sync/schema';

/** Settings createBoss decided that workers and readers need later (polling interval, schema). */
export type BossSettings = {
  readonly pollingIntervalSeconds: number;
  readonly pooled: boolean;
  readonly schema: string;
};

const settings = new WeakMap<PgBoss, BossSettings>();

/** Records what a boss was created with (createBoss calls it). */
export function rememberBossSettings(boss: PgBoss, value: BossSettings): void {
  settings.set(boss, value);
}

/** The polling interval, pooling mode and schema a boss was created with (defaults for a boss made elsewhere). */
export function bossSettings(boss: PgBoss): BossSettings {
  return settings.get(boss) ?? { pollingIntervalSeconds: 2, pooled: false, schema: PGBOSS_SCHEMA };
}

/** The pg-boss schema to read: the boss's when there is one (a cluster role has its own), else the shared one. */
export function queueSchemaFor(boss: PgBoss | undefined): string {
  return boss ? bossSettings(boss).schema : PGBOSS_SCHEMA;
}
