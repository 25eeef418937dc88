-- Bounded history: pruning by age, for the live leader only.
--
-- The service roles may SELECT, INSERT and UPDATE but never DELETE. History is pruned through one admin-owned
-- SECURITY DEFINER function instead, which can do nothing but delete old rows of one kind of history, in one small
-- batch, for the one cluster whose live leader calls it:
--
--   * the caller must be the unrestricted shared role or the role of p_cluster (sync_admin.cluster_roles);
--   * p_epoch must be the epoch of p_cluster's unexpired lease, which is share-locked for the rest of the
--     transaction (so no other node can take over while the batch runs): a deposed leader prunes nothing;
--   * nothing younger than one hour is ever deleted, whatever the caller asks;
--   * at most 10 000 rows per call (in no particular order: a batch stops as soon as it has enough rows, instead of
--     sorting every candidate, so its cost does not grow with the backlog);
--   * rows still needed are kept: pending and running jobs, each tenant's latest job, unresolved conflicts,
--     unresolved failed rows, and the progress rows of tables the tenant's schema still has.
--
-- Kinds (p_older_than is the retention of that kind; the row's age is measured as shown):
--   sync_jobs      finished jobs, by completed_at (started_at if it never completed)
--   skipped_runs   finished jobs whose run found the source unchanged (details ? 'skipped'), same age
--   conflict_log   resolved conflicts, by resolved_at; a tenant whose conflict config sets
--                  resolution_log.retention_days keeps its own (p_older_than is the default for the others)
--   failed_rows    resolved failed rows, by resolved_at
--   cache_events   cache invalidation events, by created_at
--   sync_progress  progress rows of tables no longer in the tenant's schema, by updated_at
--
-- Returns the number of rows deleted; fewer than p_batch means nothing more is due right now.

CREATE OR REPLACE FUNCTION sync_metadata.prune_history(
    p_kind text, p_cluster text, p_epoch bigint, p_older_than interval, p_batch integer)
RETURNS integer
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_min    constant interval := interval '1 hour';
    v_batch  integer := least(greatest(coalesce(p_batch, 0), 1), 10000);
    v_cutoff timestamptz;
    v_n      integer := 0;
BEGIN
    IF p_kind IS NULL OR p_kind NOT IN ('sync_jobs', 'skipped_runs', 'conflict_log', 'failed_rows', 'cache_events',
                                        'sync_progress') THEN
        RAISE EXCEPTION 'unknown kind of history "%"', p_kind USING ERRCODE = '22023';
    END IF;
    IF p_older_than IS NULL OR p_older_than < v_min THEN
        RAISE EXCEPTION 'retention of % must be at least %, got %', p_kind, v_min, p_older_than
            USING ERRCODE = '22023';
    END IF;
    IF NOT sync_metadata.caller_unrestricted()
       AND p_cluster IS DISTINCT FROM sync_metadata.caller_cluster() THEN
        RAISE EXCEPTION 'role % may not prune the history of cluster %', session_user, p_cluster
            USING ERRCODE = '42501';
    END IF;
    -- Fencing: only the holder of the cluster's live lease, at that epoch, prunes.
    PERFORM 1 FROM sync_metadata.leader_election le
      WHERE le.cluster_name = p_cluster AND le.epoch = p_epoch AND le.expires_at > clock_timestamp()
      FOR SHARE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'epoch % is not the live leader lease of cluster %', p_epoch, p_cluster
            USING ERRCODE = '55000';
    END IF;
    v_cutoff := now() - p_older_than;

    IF p_kind = 'sync_jobs' THEN
        DELETE FROM sync_metadata.sync_jobs j
         WHERE j.job_id IN (
            SELECT c.job_id
              FROM sync_metadata.sync_jobs c
              JOIN sync_metadata.client_deployments d ON d.deployment_id = c.deployment_id
              JOIN sync_metadata.hosts h ON h.host_id = d.host_id
             WHERE h.cluster_name = p_cluster
               AND c.started_at < v_cutoff
               AND c.status NOT IN ('pending', 'running')
               AND coalesce(c.completed_at, c.started_at) < v_cutoff
               AND c.job_id <> (SELECT l.job_id FROM sync_metadata.sync_jobs l
                                 WHERE l.deployment_id = c.deployment_id
                                 ORDER BY l.started_at DESC, l.job_id DESC LIMIT 1)
             LIMIT v_batch
               FOR UPDATE OF c SKIP LOCKED);
    ELSIF p_kind = 'skipped_runs' THEN
        DELETE FROM sync_metadata.sync_jobs j
         WHERE j.job_id IN (
            SELECT c.job_id
              FROM sync_metadata.sync_jobs c
              JOIN sync_metadata.client_deployments d ON d.deployment_id = c.deployment_id
              JOIN sync_metadata.hosts h ON h.host_id = d.host_id
             WHERE h.cluster_name = p_cluster
               AND c.details ? 'skipped'
               AND c.started_at < v_cutoff
               AND c.status NOT IN ('pending', 'running')
               AND coalesce(c.completed_at, c.started_at) < v_cutoff
               AND c.job_id <> (SELECT l.job_id FROM sync_metadata.sync_jobs l
                                 WHERE l.deployment_id = c.deployment_id
                                 ORDER BY l.started_at DESC, l.job_id DESC LIMIT 1)
             LIMIT v_batch
               FOR UPDATE OF c SKIP LOCKED);
    ELSIF p_kind = 'conflict_log' THEN
        DELETE FROM sync_metadata.conflict_log x
         WHERE x.log_id IN (
            SELECT c.log_id
              FROM sync_metadata.conflict_log c
              JOIN sync_metadata.client_deployments d ON d.deployment_id = c.deployment_id
              JOIN sync_metadata.hosts h ON h.host_id = d.host_id
              CROSS JOIN LATERAL (
                  SELECT coalesce(d.conflict_config -> 'resolution_log' ->> 'retention_days',
                                  d.conflict_config -> 'conflict_resolution' -> 'resolution_log' ->> 'retention_days')
                         AS days) cfg
             WHERE h.cluster_name = p_cluster
               AND c.resolved_at IS NOT NULL
               AND c.resolved_at < now() - greatest(
                       v_min,
                       CASE WHEN cfg.days ~ '^[0-9]{1,5}$' AND cfg.days::integer > 0
                            THEN make_interval(days => cfg.days::integer)
                            ELSE p_older_than END)
             LIMIT v_batch
               FOR UPDATE OF c SKIP LOCKED);
    ELSIF p_kind = 'failed_rows' THEN
        DELETE FROM sync_state.failed_rows x
         WHERE (x.deployment_id, x.table_name, x.row_key) IN (
            SELECT f.deployment_id, f.table_name, f.row_key
              FROM sync_state.failed_rows f
              JOIN sync_metadata.client_deployments d ON d.deployment_id = f.deployment_id
              JOIN sync_metadata.hosts h ON h.host_id = d.host_id
             WHERE h.cluster_name = p_cluster
               AND f.resolved_at IS NOT NULL
               AND f.resolved_at < v_cutoff
             LIMIT v_batch
               FOR UPDATE OF f SKIP LOCKED);
    ELSIF p_kind = 'cache_events' THEN
        DELETE FROM sync_metadata.cache_events x
         WHERE x.event_id IN (
            SELECT e.event_id
              FROM sync_metadata.cache_events e
              JOIN sync_metadata.hosts h ON h.host_id = e.host_id
             WHERE h.cluster_name = p_cluster
               AND e.created_at < v_cutoff
             ORDER BY e.event_id
             LIMIT v_batch
               FOR UPDATE OF e SKIP LOCKED);
    ELSIF p_kind = 'sync_progress' THEN
        DELETE FROM sync_metadata.sync_progress x
         WHERE (x.deployment_id, x.table_name) IN (
            SELECT p.deployment_id, p.table_name
              FROM sync_metadata.sync_progress p
              JOIN sync_metadata.client_deployments d ON d.deployment_id = p.deployment_id
              JOIN sync_metadata.hosts h ON h.host_id = d.host_id
             WHERE h.cluster_name = p_cluster
               AND p.updated_at < v_cutoff
               AND p.phase <> 'running'
               AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_class r
                                 JOIN pg_catalog.pg_namespace n ON n.oid = r.relnamespace
                                WHERE n.nspname = d.schema_name AND r.relname = p.table_name)
             LIMIT v_batch
               FOR UPDATE OF p SKIP LOCKED);
    END IF;
    GET DIAGNOSTICS v_n = ROW_COUNT;
    RETURN v_n;
END
$$;

REVOKE ALL ON FUNCTION sync_metadata.prune_history(text, text, bigint, interval, integer) FROM PUBLIC;

-- Runs that found the source unchanged ------------------------------------------------------------------------
--
-- Most runs of a fleet find nothing to do (the SQLite file is unchanged); a full sync_jobs row each would be
-- millions of rows a day. A run that finishes as skipped therefore replaces the tenant's previous job when that
-- job was a skipped run too, triggered the same way (the scheduler's runs fold together; a person's manual run
-- stays on record): one row stands for a whole streak of unchanged checks, and keeps the listing honest:
-- its started_at/completed_at say when the tenant was last checked, details.checks how many checks the streak
-- had, details.unchanged_since when the first of them ran. Only finished skipped runs of the same tenant are ever
-- removed, and only the one immediately before the run that replaces it.

CREATE OR REPLACE FUNCTION sync_metadata.sync_jobs_fold_skipped() RETURNS trigger
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_prev record;
BEGIN
    SELECT j.job_id, j.started_at, j.details, j.triggered_by INTO v_prev
      FROM sync_metadata.sync_jobs j
     WHERE j.deployment_id = NEW.deployment_id AND j.job_id <> NEW.job_id AND j.started_at <= NEW.started_at
     ORDER BY j.started_at DESC, j.job_id DESC
     LIMIT 1;
    IF FOUND AND v_prev.details ? 'skipped' AND v_prev.triggered_by = NEW.triggered_by THEN
        DELETE FROM sync_metadata.sync_jobs j
         WHERE j.job_id = v_prev.job_id AND j.status = 'success' AND j.details ? 'skipped';
        IF FOUND THEN
            NEW.details := NEW.details || jsonb_build_object(
                'checks', CASE WHEN v_prev.details ->> 'checks' ~ '^[0-9]{1,15}$'
                               THEN (v_prev.details ->> 'checks')::bigint ELSE 1 END + 1,
                'unchanged_since', coalesce(v_prev.details -> 'unchanged_since', to_jsonb(v_prev.started_at)));
        END IF;
    END IF;
    RETURN NEW;
END
$$;
REVOKE ALL ON FUNCTION sync_metadata.sync_jobs_fold_skipped() FROM PUBLIC;

DROP TRIGGER IF EXISTS sync_jobs_fold_skipped ON sync_metadata.sync_jobs;
CREATE TRIGGER sync_jobs_fold_skipped
    BEFORE UPDATE OF status ON sync_metadata.sync_jobs
    FOR EACH ROW
    WHEN (OLD.status IN ('pending', 'running') AND NEW.status = 'success' AND NEW.details ? 'skipped')
    EXECUTE FUNCTION sync_metadata.sync_jobs_fold_skipped();

-- Finding old finished rows without reading the open ones.
CREATE INDEX IF NOT EXISTS conflict_log_resolved_idx ON sync_metadata.conflict_log (resolved_at)
    WHERE resolved_at IS NOT NULL;
CREATE INDEX IF NOT EXISTS failed_rows_resolved_idx ON sync_state.failed_rows (resolved_at)
    WHERE resolved_at IS NOT NULL;
