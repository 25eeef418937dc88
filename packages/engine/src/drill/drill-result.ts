import type { RestoreResult } from '../restore/restore.ts';
import type { BookkeepingCheck } from './bookkeeping-check.ts';

/** What a restore drill found: each check's result, and the drill's record as sync_state.restore_drills keeps it. */

export type DrillCheckName = 'restore' | 'integrity' | 'compare' | 'bookkeeping' | 'openwebui';

export type DrillChecks = {
  restore: {
    ok: boolean;
    error?: string;
    rows?: number;
    tables?: number;
    ddl?: RestoreResult['ddl'];
    seconds?: number;
    warnings?: string[];
  };
  integrity?: { ok: boolean; result: string };
  compare?: {
    ok: boolean;
    missing: number;
    extra: number;
    differing: number;
    seconds: number;
    /** Tables that differ, with up to 10 keys of each kind. */
    tables: { table: string; status: string; missing: string[]; extra: string[]; differing: string[] }[];
  };
  bookkeeping?: BookkeepingCheck;
  openwebui?: {
    ok: boolean;
    /** Revision of the restored file. */
    revision: string | null;
    /** Revision of the backup's data (its alembic_version / migratehistory table). */
    dataRevision: string | null;
    /** Revision recorded with the source's DDL, when recorded. */
    ddlRevision: string | null;
    user: { id: string; email: string | null } | null;
    chat: { id: string; title: string | null; messages: number | null } | null;
    problems: string[];
  };
};

export type DrillResult = {
  drillId: string;
  clientName: string;
  passed: boolean;
  /** What failed, in one line; null when the drill passed. */
  failure: string | null;
  triggeredBy: string;
  queueJobId: string | null;
  runBy: string | null;
  startedAt: string;
  finishedAt: string;
  durationSeconds: number;
  restoreSeconds: number | null;
  rowsRestored: number | null;
  revision: string | null;
  checks: DrillChecks;
};
