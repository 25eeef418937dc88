-- Row history for point-in-time restore.
--
-- A tenant's backup tables hold only the latest version of every row. Every sync run now also keeps, in
-- sync_state.row_history, what each row was just before the run changed it: the old values of the columns an
-- update changed, the whole row it tombstoned (a delete in the source), or "absent" (data NULL: the row was
-- inserted, or re-inserted after a delete). With the runs that completed (sync_state.history_runs) and the
-- source's DDL as each run saw it (sync_state.source_schema_versions), a restore can rebuild the tenant exactly as
-- any recorded run saw it. A row's state at time C, from its entries with replaced_at > C, oldest first:
--
--   none: the row as the backup holds it now (absent if tombstoned); the first is data NULL: absent;
--   otherwise each column from the earliest entry holding it, else from the backup table.
--
-- The service roles may INSERT here but never DELETE. History older than the tenant's retention
-- (client_deployments.history_retention_days, default 7) is pruned by the live leader through
-- sync_metadata.prune_row_history, an admin-owned SECURITY DEFINER function built like prune_history (000011).

ALTER TABLE sync_metadata.client_deployments
    ADD COLUMN IF NOT EXISTS history_retention_days integer NOT NULL DEFAULT 7
        CONSTRAINT client_deployments_history_retention_check CHECK (history_retention_days BETWEEN 1 AND 3650),
    -- Everything replaced before this time may be pruned: no restore can go back further than this.
    ADD COLUMN IF NOT EXISTS history_pruned_before timestamptz;

CREATE TABLE IF NOT EXISTS sync_state.row_history (
    history_id    bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    deployment_id uuid NOT NULL REFERENCES sync_metadata.client_deployments (deployment_id) ON DELETE CASCADE,
    table_name    text NOT NULL,
    row_key       text NOT NULL,
    -- When the version below stopped being the row's version (the writing transaction's time).
    replaced_at   timestamptz NOT NULL,
    job_id        uuid,
    -- The row before replaced_at, column name → value (json columns as their exact text): the columns an update
    -- changed, every column for a delete; NULL: no row.
    data          jsonb
);
-- One index serves both readers: a restore (one tenant's entries after a time) and pruning (before a time). Each
-- index costs every entry about 40 bytes, a sizeable share of a small entry.
CREATE INDEX IF NOT EXISTS row_history_time_idx ON sync_state.row_history (deployment_id, replaced_at);

-- Every run that completed without failing (success, or conflicts left for a person): the times a restore can
-- return to, with the Open WebUI schema revision the source was at.
CREATE TABLE IF NOT EXISTS sync_state.history_runs (
    deployment_id      uuid NOT NULL REFERENCES sync_metadata.client_deployments (deployment_id) ON DELETE CASCADE,
    finished_at        timestamptz NOT NULL,
    job_id             uuid NOT NULL,
    -- 'alembic:<version_num>' or 'peewee:<last migration>' (NULL: neither table in the source)
    openwebui_revision text,
    PRIMARY KEY (deployment_id, finished_at, job_id)
);

-- The source's sqlite_master, one version per change (sync_state.source_schema keeps only the latest capture).
CREATE TABLE IF NOT EXISTS sync_state.source_schema_versions (
    version_id        bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    deployment_id     uuid NOT NULL REFERENCES sync_metadata.client_deployments (deployment_id) ON DELETE CASCADE,
    captured_at       timestamptz NOT NULL,
    ddl_hash          text,
    objects           jsonb NOT NULL,
    openwebui_version text,
    -- 'run': seen by a sync run; 'capture': registration, upgrade-schema, verify; 'legacy': copied from
    -- source_schema when this migration ran (it may predate later schema upgrades).
    origin            text NOT NULL CHECK (origin IN ('run', 'capture', 'legacy'))
);
CREATE INDEX IF NOT EXISTS source_schema_versions_idx ON sync_state.source_schema_versions (deployment_id, captured_at);

INSERT INTO sync_state.source_schema_versions (deployment_id, captured_at, objects, openwebui_version, origin)
SELECT s.deployment_id, s.captured_at, s.objects, s.openwebui_version, 'legacy'
  FROM sync_state.source_schema s
 WHERE NOT EXISTS (SELECT 1 FROM sync_state.source_schema_versions v WHERE v.deployment_id = s.deployment_id);

-- Chat bodies dominate the history; lz4 compresses them several times faster than pglz (where the server has it).
DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_settings WHERE name = 'default_toast_compression' AND 'lz4' = ANY (enumvals)) THEN
        ALTER TABLE sync_state.row_history ALTER COLUMN data SET COMPRESSION lz4;
        ALTER TABLE sync_state.source_schema_versions ALTER COLUMN objects SET COMPRESSION lz4;
    END IF;
END
$$;

-- Row-level security as on every other per-tenant table (000009).
DO $$
DECLARE
    t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['sync_state.row_history', 'sync_state.history_runs', 'sync_state.source_schema_versions']
    LOOP
        EXECUTE format('ALTER TABLE %s ENABLE ROW LEVEL SECURITY', t);
        EXECUTE format('DROP POLICY IF EXISTS sync_caller_cluster ON %s', t);
        EXECUTE format(
            'CREATE POLICY sync_caller_cluster ON %s FOR ALL '
            'USING ((SELECT sync_metadata.caller_unrestricted()) '
            '       OR deployment_id IN (SELECT d FROM sync_metadata.caller_deployments() d)) '
            'WITH CHECK ((SELECT sync_metadata.caller_unrestricted()) '
            '            OR deployment_id IN (SELECT d FROM sync_metadata.caller_deployments() d))', t);
    END LOOP;
END
$$;

-- Pruning --------------------------------------------------------------------------------------------------------
--
-- sync_metadata.prune_row_history(kind, cluster, epoch, batch): the same fencing as prune_history (the caller is
-- the unrestricted role or p_cluster's role, p_epoch is p_cluster's live lease, share-locked), then:
--
--   * every tenant of the cluster first moves its history_pruned_before up to now() − its retention (never down:
--     a retention made longer later cannot bring back what is gone, and restores honour the recorded bound);
--     it is moved at most once an hour, so the tenants' rows are not rewritten on every call;
--   * 'row_history':     entries replaced before the tenant's history_pruned_before;
--   * 'history_runs':    runs finished before it, except the tenant's latest run;
--   * 'schema_versions': DDL versions superseded by a newer version captured before it (the version in force at
--                        the bound is kept);
--   * at most p_batch (≤ 10 000) rows per call. Returns the number deleted.

CREATE OR REPLACE FUNCTION sync_metadata.prune_row_history(
    p_kind text, p_cluster text, p_epoch bigint, p_batch integer)
RETURNS integer
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_batch integer := least(greatest(coalesce(p_batch, 0), 1), 10000);
    v_n     integer := 0;
BEGIN
    IF p_kind IS NULL OR p_kind NOT IN ('row_history', 'history_runs', 'schema_versions') THEN
        RAISE EXCEPTION 'unknown kind of row history "%"', p_kind USING ERRCODE = '22023';
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

    UPDATE sync_metadata.client_deployments d
       SET history_pruned_before = now() - make_interval(days => d.history_retention_days)
      FROM sync_metadata.hosts h
     WHERE h.host_id = d.host_id AND h.cluster_name = p_cluster
       AND (d.history_pruned_before IS NULL
            OR d.history_pruned_before < now() - make_interval(days => d.history_retention_days) - interval '1 hour');

    IF p_kind = 'row_history' THEN
        DELETE FROM sync_state.row_history x
         WHERE x.history_id IN (
            SELECT r.history_id
              FROM sync_state.row_history r
              JOIN sync_metadata.client_deployments d ON d.deployment_id = r.deployment_id
              JOIN sync_metadata.hosts h ON h.host_id = d.host_id
             WHERE h.cluster_name = p_cluster
               AND d.history_pruned_before IS NOT NULL
               AND r.replaced_at < d.history_pruned_before
             LIMIT v_batch
               FOR UPDATE OF r SKIP LOCKED);
    ELSIF p_kind = 'history_runs' THEN
        DELETE FROM sync_state.history_runs x
         WHERE (x.deployment_id, x.finished_at, x.job_id) IN (
            SELECT r.deployment_id, r.finished_at, r.job_id
              FROM sync_state.history_runs r
              JOIN sync_metadata.client_deployments d ON d.deployment_id = r.deployment_id
              JOIN sync_metadata.hosts h ON h.host_id = d.host_id
             WHERE h.cluster_name = p_cluster
               AND d.history_pruned_before IS NOT NULL
               AND r.finished_at < d.history_pruned_before
               AND EXISTS (SELECT 1 FROM sync_state.history_runs l
                            WHERE l.deployment_id = r.deployment_id AND l.finished_at > r.finished_at)
             LIMIT v_batch
               FOR UPDATE OF r SKIP LOCKED);
    ELSE
        DELETE FROM sync_state.source_schema_versions x
         WHERE x.version_id IN (
            SELECT v.version_id
              FROM sync_state.source_schema_versions v
              JOIN sync_metadata.client_deployments d ON d.deployment_id = v.deployment_id
              JOIN sync_metadata.hosts h ON h.host_id = d.host_id
             WHERE h.cluster_name = p_cluster
               AND d.history_pruned_before IS NOT NULL
               AND EXISTS (SELECT 1 FROM sync_state.source_schema_versions n
                            WHERE n.deployment_id = v.deployment_id
                              AND (n.captured_at, n.version_id) > (v.captured_at, v.version_id)
                              AND n.captured_at <= d.history_pruned_before)
             LIMIT v_batch
               FOR UPDATE OF v SKIP LOCKED);
    END IF;
    GET DIAGNOSTICS v_n = ROW_COUNT;
    RETURN v_n;
END
$$;

REVOKE ALL ON FUNCTION sync_metadata.prune_row_history(text, text, bigint, integer) FROM PUBLIC;
