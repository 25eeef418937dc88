-- Restore drills: proof, on a schedule, that each tenant's backup turns back into a working Open WebUI database.
--
-- A drill restores the latest backup into a temporary file, checks it (PRAGMA integrity_check, a comparison with
-- the backup, every backup row against the hash its sync recorded, the schema revision, a user and a chat read back)
-- and records the outcome here, one row per drill. The service roles SELECT, INSERT and UPDATE; old rows are
-- removed only by sync_metadata.prune_drills below, called by the live leader's history maintenance.
CREATE TABLE IF NOT EXISTS sync_state.restore_drills (
    drill_id         uuid PRIMARY KEY,
    deployment_id    uuid NOT NULL REFERENCES sync_metadata.client_deployments (deployment_id) ON DELETE CASCADE,
    passed           boolean NOT NULL,
    -- What failed, in one line (NULL when the drill passed).
    failure          text,
    -- 'scheduler', 'cli', 'api', …
    triggered_by     text NOT NULL,
    queue_job_id     uuid,
    run_by           text,
    started_at       timestamptz NOT NULL,
    finished_at      timestamptz NOT NULL,
    duration_seconds numeric(12, 3) NOT NULL,
    restore_seconds  numeric(12, 3),
    rows_restored    bigint,
    -- Open WebUI schema revision of the restored file (alembic:<head>, peewee:<name>, or NULL before both).
    revision         text,
    -- Every check with its figures (see docs/restore.md, "Restore drills").
    checks           jsonb NOT NULL
);
CREATE INDEX IF NOT EXISTS restore_drills_deployment_idx
    ON sync_state.restore_drills (deployment_id, started_at DESC);
CREATE INDEX IF NOT EXISTS restore_drills_passed_idx
    ON sync_state.restore_drills (deployment_id, started_at DESC) WHERE passed;

ALTER TABLE sync_state.restore_drills ENABLE ROW LEVEL SECURITY;
DROP POLICY IF EXISTS sync_caller_cluster ON sync_state.restore_drills;
CREATE POLICY sync_caller_cluster ON sync_state.restore_drills FOR ALL
    USING ((SELECT sync_metadata.caller_unrestricted())
           OR deployment_id IN (SELECT d FROM sync_metadata.caller_deployments() d))
    WITH CHECK ((SELECT sync_metadata.caller_unrestricted())
                OR deployment_id IN (SELECT d FROM sync_metadata.caller_deployments() d));

-- The leader's scheduler moves next_drill_at to the tenant's next drill slot when it enqueues a drill (as with
-- next_sync_at): NULL means the tenant was never scheduled, and its first drill comes at its first slot.
-- drills_since: when the scheduler first planned a drill of the tenant (NULL while drills are off): a tenant counts
-- as overdue (sync_tenants_drill_overdue) when it has had no passed drill for DRILL_MAX_AGE_HOURS since then.
ALTER TABLE sync_metadata.client_deployments
    ADD COLUMN IF NOT EXISTS next_drill_at timestamptz,
    ADD COLUMN IF NOT EXISTS drills_since  timestamptz;

-- Pruning, with the guarantees of sync_metadata.prune_history (migration 000011): the caller's own cluster only,
-- only under the cluster's live lease at p_epoch, nothing younger than one hour, at most 10 000 rows a call. Each
-- tenant's latest drill and its latest passed drill are always kept, so "last drill" and "last successful drill"
-- survive any retention.
CREATE OR REPLACE FUNCTION sync_metadata.prune_drills(
    p_cluster text, p_epoch bigint, p_older_than interval, p_batch integer)
RETURNS integer
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_min    constant interval := interval '1 hour';
    v_batch  integer := least(greatest(coalesce(p_batch, 0), 1), 10000);
    v_n      integer := 0;
BEGIN
    IF p_older_than IS NULL OR p_older_than < v_min THEN
        RAISE EXCEPTION 'retention of restore_drills must be at least %, got %', v_min, p_older_than
            USING ERRCODE = '22023';
    END IF;
    IF NOT sync_metadata.caller_unrestricted()
       AND p_cluster IS DISTINCT FROM sync_metadata.caller_cluster() THEN
        RAISE EXCEPTION 'role % may not prune the history of cluster %', session_user, p_cluster
            USING ERRCODE = '42501';
    END IF;
    PERFORM 1 FROM sync_metadata.leader_election le
      WHERE le.cluster_name = p_cluster AND le.epoch = p_epoch AND le.expires_at > clock_timestamp()
      FOR SHARE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'epoch % is not the live leader lease of cluster %', p_epoch, p_cluster
            USING ERRCODE = '55000';
    END IF;
    DELETE FROM sync_state.restore_drills x
     WHERE x.drill_id IN (
        SELECT r.drill_id
          FROM sync_state.restore_drills r
          JOIN sync_metadata.client_deployments d ON d.deployment_id = r.deployment_id
          JOIN sync_metadata.hosts h ON h.host_id = d.host_id
         WHERE h.cluster_name = p_cluster
           AND r.started_at < now() - p_older_than
           AND r.drill_id <> (SELECT l.drill_id FROM sync_state.restore_drills l
                               WHERE l.deployment_id = r.deployment_id
                               ORDER BY l.started_at DESC, l.drill_id DESC LIMIT 1)
           AND r.drill_id IS DISTINCT FROM (SELECT p.drill_id FROM sync_state.restore_drills p
                                             WHERE p.deployment_id = r.deployment_id AND p.passed
                                             ORDER BY p.started_at DESC, p.drill_id DESC LIMIT 1)
         LIMIT v_batch
           FOR UPDATE OF r SKIP LOCKED);
    GET DIAGNOSTICS v_n = ROW_COUNT;
    RETURN v_n;
END
$$;

REVOKE ALL ON FUNCTION sync_metadata.prune_drills(text, bigint, interval, integer) FROM PUBLIC;
