-- sync_metadata: the authoritative state of every owui-sync cluster.
-- Applied by the migration runner (admin connection) inside one transaction.
-- Row-level security policies name no role: they bind every role except the owner (the admin that installs),
-- so the service role, whatever it is called, is confined by them.

CREATE SCHEMA IF NOT EXISTS sync_metadata;

-- Identity helpers ------------------------------------------------------------------------------------------

-- A host's id is derived from (cluster, hostname, node name) so the same node on the same machine keeps its row
-- across restarts without having to look it up first (which RLS would not allow).
CREATE FUNCTION sync_metadata.host_identity(p_cluster text, p_hostname text, p_node text)
RETURNS uuid LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
AS $$ SELECT md5(p_cluster || '/' || p_hostname || '/' || p_node)::uuid $$;

-- Per-transaction scope, set with set_config(name, value, true) so it never leaks through a transaction pooler.
-- Unset (NULL) or reset ('') settings match nothing: a session that forgot them sees no rows rather than an error.
CREATE FUNCTION sync_metadata.current_host_id() RETURNS text LANGUAGE sql STABLE PARALLEL SAFE
AS $$ SELECT nullif(current_setting('app.current_host_id', true), '') $$;

CREATE FUNCTION sync_metadata.current_cluster() RETURNS text LANGUAGE sql STABLE PARALLEL SAFE
AS $$ SELECT nullif(current_setting('app.current_cluster', true), '') $$;

-- Tables ----------------------------------------------------------------------------------------------------

CREATE TABLE sync_metadata.hosts (
    host_id        uuid PRIMARY KEY,
    hostname       text NOT NULL,
    cluster_name   text NOT NULL,
    node_name      text NOT NULL,
    role           text NOT NULL DEFAULT 'node' CHECK (role IN ('node', 'worker', 'admin')),
    status         text NOT NULL DEFAULT 'online' CHECK (status IN ('online', 'offline', 'stopped')),
    version        text,
    last_heartbeat timestamptz NOT NULL DEFAULT now(),
    created_at     timestamptz NOT NULL DEFAULT now(),
    updated_at     timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT hosts_identity_key UNIQUE (cluster_name, hostname, node_name),
    CONSTRAINT hosts_identity_check CHECK (host_id = sync_metadata.host_identity(cluster_name, hostname, node_name))
);
CREATE INDEX hosts_cluster_idx ON sync_metadata.hosts (cluster_name, last_heartbeat DESC);

CREATE TABLE sync_metadata.client_deployments (
    deployment_id     uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    client_name       text NOT NULL UNIQUE CHECK (client_name ~ '^[a-z0-9][a-z0-9_-]{0,47}$'),
    host_id           uuid NOT NULL REFERENCES sync_metadata.hosts (host_id) ON DELETE CASCADE,
    container_name    text,
    sqlite_path       text,
    schema_name       text NOT NULL UNIQUE CHECK (schema_name ~ '^[a-z_][a-z0-9_]{0,62}$'),
    sync_enabled      boolean NOT NULL DEFAULT false,
    status            text NOT NULL DEFAULT 'registered'
                      CHECK (status IN ('registered', 'active', 'paused', 'error', 'deregistered')),
    sync_interval     integer NOT NULL DEFAULT 300 CHECK (sync_interval BETWEEN 1 AND 31536000),
    last_sync_at      timestamptz,
    last_sync_status  text CHECK (last_sync_status IN ('pending', 'running', 'success', 'failed', 'conflict')),
    last_full_sync_at timestamptz,
    conflict_strategy text NOT NULL DEFAULT 'newest_wins'
                      CHECK (conflict_strategy IN ('newest_wins', 'source_wins', 'target_wins', 'merge', 'manual')),
    conflict_config   jsonb,
    openwebui_version text,
    created_at        timestamptz NOT NULL DEFAULT now(),
    updated_at        timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX client_deployments_host_idx ON sync_metadata.client_deployments (host_id);
CREATE INDEX client_deployments_due_idx ON sync_metadata.client_deployments (last_sync_at) WHERE sync_enabled;

CREATE TABLE sync_metadata.leader_election (
    cluster_name   text PRIMARY KEY,
    leader_id      text NOT NULL,
    leader_host_id uuid REFERENCES sync_metadata.hosts (host_id) ON DELETE CASCADE,
    -- Fencing token: grows by one on every change of leader (never on a renewal), so an action stamped with an
    -- older epoch can be refused.
    epoch          bigint NOT NULL DEFAULT 1 CHECK (epoch > 0),
    acquired_at    timestamptz NOT NULL DEFAULT now(),
    renewed_at     timestamptz NOT NULL DEFAULT now(),
    expires_at     timestamptz NOT NULL,
    updated_at     timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX leader_election_host_idx ON sync_metadata.leader_election (leader_host_id);

CREATE TABLE sync_metadata.sync_jobs (
    job_id            uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    deployment_id     uuid NOT NULL REFERENCES sync_metadata.client_deployments (deployment_id) ON DELETE CASCADE,
    client_name       text NOT NULL,
    queue_job_id      text,
    host_id           uuid,
    worker_id         text,
    status            text NOT NULL DEFAULT 'pending'
                      CHECK (status IN ('pending', 'running', 'success', 'failed', 'conflict')),
    sync_type         text NOT NULL CHECK (sync_type IN ('full', 'incremental')),
    triggered_by      text NOT NULL CHECK (length(triggered_by) BETWEEN 1 AND 200),
    rows_synced       bigint NOT NULL DEFAULT 0,
    rows_failed       bigint NOT NULL DEFAULT 0,
    rows_deleted      bigint NOT NULL DEFAULT 0,
    conflicts_detected integer NOT NULL DEFAULT 0,
    conflicts_unresolved integer NOT NULL DEFAULT 0,
    duration_seconds  numeric(12, 3),
    error             text,
    details           jsonb,
    created_at        timestamptz NOT NULL DEFAULT now(),
    started_at        timestamptz NOT NULL DEFAULT now(),
    completed_at      timestamptz,
    updated_at        timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX sync_jobs_deployment_idx ON sync_metadata.sync_jobs (deployment_id, started_at DESC);
CREATE INDEX sync_jobs_started_idx ON sync_metadata.sync_jobs (started_at DESC);
CREATE INDEX sync_jobs_open_idx ON sync_metadata.sync_jobs (status) WHERE status IN ('pending', 'running');
CREATE INDEX sync_jobs_queue_job_idx ON sync_metadata.sync_jobs (queue_job_id) WHERE queue_job_id IS NOT NULL;

CREATE TABLE sync_metadata.sync_progress (
    deployment_id  uuid NOT NULL REFERENCES sync_metadata.client_deployments (deployment_id) ON DELETE CASCADE,
    table_name     text NOT NULL,
    -- High-water mark actually read (text, so 19-digit nanosecond values stay exact) and the key of the last row
    -- read at that mark, so paging resumes after rows sharing the same timestamp.
    cursor_value   text,
    cursor_key     text,
    rows_done      bigint NOT NULL DEFAULT 0,
    rows_total     bigint,
    phase          text NOT NULL DEFAULT 'idle' CHECK (phase IN ('idle', 'running', 'done', 'failed')),
    last_job_id    uuid,
    last_run_at    timestamptz,
    last_full_sync_at timestamptz,
    updated_at     timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (deployment_id, table_name)
);

CREATE TABLE sync_metadata.conflict_log (
    log_id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    client_id           text NOT NULL,
    deployment_id       uuid NOT NULL REFERENCES sync_metadata.client_deployments (deployment_id) ON DELETE CASCADE,
    job_id              uuid,
    table_name          text NOT NULL,
    row_key             jsonb NOT NULL,
    conflict_type       text NOT NULL DEFAULT 'update_update'
                        CHECK (conflict_type IN ('update_update', 'update_delete', 'delete_update', 'insert_insert')),
    source_data         jsonb,
    target_data         jsonb,
    base_hash           text,
    resolution_strategy text NOT NULL
                        CHECK (resolution_strategy IN ('newest_wins', 'source_wins', 'target_wins', 'merge', 'manual')),
    resolution          text CHECK (resolution IN ('source', 'target', 'merged', 'pending')),
    resolved_data       jsonb,
    detected_at         timestamptz NOT NULL DEFAULT now(),
    resolved_at         timestamptz,
    resolved_by         text
);
CREATE INDEX conflict_log_client_detected_idx ON sync_metadata.conflict_log (client_id, detected_at DESC);
CREATE INDEX conflict_log_unresolved_idx ON sync_metadata.conflict_log (deployment_id, detected_at DESC)
    WHERE resolved_at IS NULL;

CREATE TABLE sync_metadata.cache_events (
    event_id     bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    host_id      uuid NOT NULL REFERENCES sync_metadata.hosts (host_id) ON DELETE CASCADE,
    cache_key    text NOT NULL,
    action       text NOT NULL CHECK (action IN ('invalidate', 'refresh')),
    payload      jsonb,
    created_at   timestamptz NOT NULL DEFAULT now(),
    processed_at timestamptz
);
CREATE INDEX cache_events_unprocessed_idx ON sync_metadata.cache_events (event_id) WHERE processed_at IS NULL;
CREATE INDEX cache_events_created_idx ON sync_metadata.cache_events (created_at);

-- Row-level security ----------------------------------------------------------------------------------------
-- A service session sees only its own host (app.current_host_id). Cluster-wide readers (the API, the leader,
-- workers that run any tenant of the cluster) deliberately widen the scope for one transaction by also setting
-- app.current_cluster; they then see and update every host and deployment of that cluster, never another's.

ALTER TABLE sync_metadata.hosts ENABLE ROW LEVEL SECURITY;
ALTER TABLE sync_metadata.client_deployments ENABLE ROW LEVEL SECURITY;

CREATE POLICY sync_host_isolation ON sync_metadata.hosts
    FOR ALL
    USING (host_id::text = sync_metadata.current_host_id())
    WITH CHECK (host_id::text = sync_metadata.current_host_id());

CREATE POLICY sync_host_cluster_read ON sync_metadata.hosts
    FOR SELECT
    USING (cluster_name = sync_metadata.current_cluster());

CREATE POLICY sync_host_cluster_update ON sync_metadata.hosts
    FOR UPDATE
    USING (cluster_name = sync_metadata.current_cluster())
    WITH CHECK (cluster_name = sync_metadata.current_cluster());

CREATE POLICY sync_deployment_isolation ON sync_metadata.client_deployments
    FOR ALL
    USING (host_id::text = sync_metadata.current_host_id())
    WITH CHECK (host_id::text = sync_metadata.current_host_id());

CREATE POLICY sync_deployment_cluster ON sync_metadata.client_deployments
    FOR ALL
    USING (host_id IN (SELECT h.host_id FROM sync_metadata.hosts h
                       WHERE h.cluster_name = sync_metadata.current_cluster()))
    WITH CHECK (host_id IN (SELECT h.host_id FROM sync_metadata.hosts h
                            WHERE h.cluster_name = sync_metadata.current_cluster()));

-- Views (security_invoker: they show a service session exactly what its RLS scope allows) -------------------

CREATE VIEW sync_metadata.v_cluster_health WITH (security_invoker = true) AS
SELECT h.host_id,
       h.hostname,
       h.node_name,
       h.cluster_name,
       h.role,
       h.status,
       h.last_heartbeat,
       EXTRACT(EPOCH FROM (now() - h.last_heartbeat))::integer AS seconds_since_heartbeat,
       CASE WHEN le.leader_host_id = h.host_id AND le.expires_at > now() THEN 'leader' ELSE 'follower' END
           AS leader_status,
       (le.leader_host_id = h.host_id AND le.expires_at > now()) IS TRUE AS is_leader,
       le.leader_id,
       le.epoch AS leader_epoch,
       le.expires_at AS leader_lease_expires,
       (le.expires_at > now()) IS TRUE AS lease_valid
FROM sync_metadata.hosts h
LEFT JOIN sync_metadata.leader_election le ON le.cluster_name = h.cluster_name;

CREATE VIEW sync_metadata.v_sync_status WITH (security_invoker = true) AS
SELECT d.deployment_id,
       d.client_name,
       d.schema_name,
       d.container_name,
       d.sqlite_path,
       h.cluster_name,
       h.hostname,
       d.sync_enabled,
       d.status,
       d.sync_interval,
       d.last_sync_at,
       d.last_sync_status,
       EXTRACT(EPOCH FROM (now() - d.last_sync_at))::integer AS lag_seconds,
       j.job_id AS last_job_id,
       j.status AS last_job_status,
       j.sync_type AS last_job_type,
       j.triggered_by AS last_job_triggered_by,
       j.started_at AS last_job_started_at,
       j.duration_seconds AS last_job_duration_seconds,
       j.rows_synced AS last_job_rows_synced,
       (SELECT count(*) FROM sync_metadata.conflict_log c
         WHERE c.deployment_id = d.deployment_id AND c.resolved_at IS NULL) AS unresolved_conflicts
FROM sync_metadata.client_deployments d
JOIN sync_metadata.hosts h ON h.host_id = d.host_id
LEFT JOIN LATERAL (
    SELECT * FROM sync_metadata.sync_jobs sj
    WHERE sj.deployment_id = d.deployment_id
    ORDER BY sj.started_at DESC
    LIMIT 1
) j ON true;

CREATE VIEW sync_metadata.v_conflict_summary WITH (security_invoker = true) AS
SELECT c.client_id,
       c.deployment_id,
       c.table_name,
       c.resolution_strategy,
       count(*) AS total_conflicts,
       count(*) FILTER (WHERE c.resolved_at IS NULL) AS unresolved,
       count(*) FILTER (WHERE c.resolved_by = 'automatic') AS auto_resolved,
       count(*) FILTER (WHERE c.resolved_at IS NOT NULL AND c.resolved_by <> 'automatic') AS manually_resolved,
       min(c.detected_at) AS first_detected_at,
       max(c.detected_at) AS last_detected_at
FROM sync_metadata.conflict_log c
GROUP BY c.client_id, c.deployment_id, c.table_name, c.resolution_strategy;
