-- One login role per cluster, and row-level security keyed on who is logged in.
--
-- sync_admin.cluster_roles maps a login role to the one cluster it serves (and that cluster's pg-boss schema). Only
-- the admin can change it: sync_admin is closed to every other role. Row-level security on every table that holds
-- a cluster's or a tenant's rows confines a mapped role to its cluster, whatever app.current_host_id and
-- app.current_cluster say: those settings only narrow the view further (one host, one cluster), they can no longer
-- widen it. A row with cluster_name NULL is the shared service role of a single-cluster install: it keeps the
-- setting-based scope it always had. A role that is not mapped at all sees and changes nothing.
--
-- The caller is session_user, the role that logged in: SET ROLE (to the NOLOGIN group every cluster role belongs
-- to) changes current_user but not session_user, and no setting can change it. Through a transaction-mode pooler
-- every server connection of a pool logs in as the same user as its clients, so this holds there too.
--
-- The caller's cluster is looked up once per statement (the functions below appear in scalar sub-selects and IN
-- lists, which PostgreSQL evaluates once, not per row).

CREATE TABLE IF NOT EXISTS sync_admin.cluster_roles (
    role_name    name PRIMARY KEY,
    -- NULL: the shared service role of a single-cluster install (scope follows app.current_cluster as before).
    cluster_name text CHECK (cluster_name ~ '^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$'),
    -- The pg-boss schema this role's processes use.
    queue_schema name NOT NULL DEFAULT 'pgboss',
    created_at   timestamptz NOT NULL DEFAULT now()
);
-- A cluster may have several roles (e.g. while credentials are rotated); they share its queue schema, which
-- belongs to that cluster alone (syncctl cluster add-role picks a name no other cluster and no other schema has).
CREATE INDEX IF NOT EXISTS cluster_roles_cluster_idx ON sync_admin.cluster_roles (cluster_name);

-- Caller identity ---------------------------------------------------------------------------------------------

-- The logged-in role's mapping: its cluster (NULL when unrestricted or unmapped), whether it is the unrestricted
-- shared role, and its pg-boss schema (NULL when unmapped).
CREATE OR REPLACE FUNCTION sync_metadata.caller_identity(
    OUT role_name name, OUT cluster_name text, OUT unrestricted boolean, OUT queue_schema name)
LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT session_user::name, r.cluster_name, coalesce(r.role_name IS NOT NULL AND r.cluster_name IS NULL, false),
           r.queue_schema
      FROM (SELECT 1) one
      LEFT JOIN sync_admin.cluster_roles r ON r.role_name = session_user
$$;

CREATE OR REPLACE FUNCTION sync_metadata.caller_cluster() RETURNS text
LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$ SELECT r.cluster_name FROM sync_admin.cluster_roles r WHERE r.role_name = session_user $$;

CREATE OR REPLACE FUNCTION sync_metadata.caller_unrestricted() RETURNS boolean
LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT EXISTS (SELECT 1 FROM sync_admin.cluster_roles r WHERE r.role_name = session_user AND r.cluster_name IS NULL)
$$;

-- The hosts and deployments of the caller's cluster (empty for the unrestricted role and for unmapped roles).
CREATE OR REPLACE FUNCTION sync_metadata.caller_hosts() RETURNS SETOF uuid
LANGUAGE plpgsql STABLE SECURITY DEFINER ROWS 100
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    RETURN QUERY
    SELECT h.host_id FROM sync_metadata.hosts h
     WHERE h.cluster_name = (SELECT r.cluster_name FROM sync_admin.cluster_roles r WHERE r.role_name = session_user);
END
$$;

CREATE OR REPLACE FUNCTION sync_metadata.caller_deployments() RETURNS SETOF uuid
LANGUAGE plpgsql STABLE SECURITY DEFINER ROWS 1000
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    RETURN QUERY
    SELECT d.deployment_id FROM sync_metadata.client_deployments d
      JOIN sync_metadata.hosts h ON h.host_id = d.host_id
     WHERE h.cluster_name = (SELECT r.cluster_name FROM sync_admin.cluster_roles r WHERE r.role_name = session_user);
END
$$;

-- Row-level security --------------------------------------------------------------------------------------------

-- hosts and client_deployments keep their setting-based policies; a restrictive policy bounds them by the caller.
DROP POLICY IF EXISTS sync_caller_cluster ON sync_metadata.hosts;
CREATE POLICY sync_caller_cluster ON sync_metadata.hosts AS RESTRICTIVE
    FOR ALL
    USING ((SELECT sync_metadata.caller_unrestricted()) OR cluster_name = (SELECT sync_metadata.caller_cluster()))
    WITH CHECK ((SELECT sync_metadata.caller_unrestricted())
                OR cluster_name = (SELECT sync_metadata.caller_cluster()));

DROP POLICY IF EXISTS sync_caller_cluster ON sync_metadata.client_deployments;
CREATE POLICY sync_caller_cluster ON sync_metadata.client_deployments AS RESTRICTIVE
    FOR ALL
    USING ((SELECT sync_metadata.caller_unrestricted()) OR host_id IN (SELECT h FROM sync_metadata.caller_hosts() h))
    WITH CHECK ((SELECT sync_metadata.caller_unrestricted()) OR host_id IN (SELECT h FROM sync_metadata.caller_hosts() h));

-- Tables that had no row-level security: the unrestricted role sees them as before, a cluster role its own rows.
ALTER TABLE sync_metadata.leader_election ENABLE ROW LEVEL SECURITY;
DROP POLICY IF EXISTS sync_caller_cluster ON sync_metadata.leader_election;
CREATE POLICY sync_caller_cluster ON sync_metadata.leader_election
    FOR ALL
    USING ((SELECT sync_metadata.caller_unrestricted()) OR cluster_name = (SELECT sync_metadata.caller_cluster()))
    WITH CHECK ((SELECT sync_metadata.caller_unrestricted())
                OR cluster_name = (SELECT sync_metadata.caller_cluster()));

ALTER TABLE sync_metadata.cache_events ENABLE ROW LEVEL SECURITY;
DROP POLICY IF EXISTS sync_caller_cluster ON sync_metadata.cache_events;
CREATE POLICY sync_caller_cluster ON sync_metadata.cache_events
    FOR ALL
    USING ((SELECT sync_metadata.caller_unrestricted()) OR host_id IN (SELECT h FROM sync_metadata.caller_hosts() h))
    WITH CHECK ((SELECT sync_metadata.caller_unrestricted()) OR host_id IN (SELECT h FROM sync_metadata.caller_hosts() h));

DO $$
DECLARE
    t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['sync_metadata.sync_jobs', 'sync_metadata.sync_progress', 'sync_metadata.conflict_log',
                             'sync_state.row_state', 'sync_state.failed_rows', 'sync_state.source_schema',
                             'sync_state.verify_results', 'sync_state.source_pages', 'sync_state.source_page_chunks',
                             'sync_state.source_cell_chunks']
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

-- Functions that look past row-level security now stop at the caller's cluster too ------------------------------

CREATE OR REPLACE FUNCTION sync_metadata.deployment_cluster(p_deployment_id uuid)
RETURNS text LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT h.cluster_name
      FROM sync_metadata.client_deployments d
      JOIN sync_metadata.hosts h ON h.host_id = d.host_id
     WHERE d.deployment_id = p_deployment_id
       AND (sync_metadata.caller_unrestricted() OR h.cluster_name = sync_metadata.caller_cluster())
$$;

CREATE OR REPLACE FUNCTION sync_metadata.api_state_get(p_key text)
RETURNS TABLE (key text, value jsonb, version bigint, updated_by text, updated_at timestamptz)
LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT e.key, e.value, e.version, e.updated_by, e.updated_at
      FROM sync_api.state_entries e
     WHERE e.cluster_name = sync_metadata.current_cluster() AND e.key = p_key
       AND (sync_metadata.caller_unrestricted() OR e.cluster_name = sync_metadata.caller_cluster())
$$;

CREATE OR REPLACE FUNCTION sync_metadata.api_state_put(p_key text, p_value jsonb, p_by text)
RETURNS TABLE (key text, value jsonb, version bigint, updated_by text, updated_at timestamptz)
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_column
DECLARE
    v_cluster text := sync_metadata.current_cluster();
BEGIN
    IF v_cluster IS NULL THEN
        RAISE EXCEPTION 'app.current_cluster is not set for this transaction' USING ERRCODE = '42501';
    END IF;
    IF NOT sync_metadata.caller_unrestricted() AND v_cluster IS DISTINCT FROM sync_metadata.caller_cluster() THEN
        RAISE EXCEPTION 'role % may not write the state of cluster %', session_user, v_cluster
            USING ERRCODE = '42501';
    END IF;
    RETURN QUERY
    INSERT INTO sync_api.state_entries AS e (cluster_name, key, value, updated_by)
    VALUES (v_cluster, p_key, p_value, p_by)
    ON CONFLICT (cluster_name, key) DO UPDATE
       SET value = EXCLUDED.value, version = e.version + 1, updated_by = EXCLUDED.updated_by, updated_at = now()
    RETURNING e.key, e.value, e.version, e.updated_by, e.updated_at;
END
$$;

REVOKE ALL ON FUNCTION sync_metadata.caller_identity() FROM PUBLIC;
REVOKE ALL ON FUNCTION sync_metadata.caller_cluster() FROM PUBLIC;
REVOKE ALL ON FUNCTION sync_metadata.caller_unrestricted() FROM PUBLIC;
REVOKE ALL ON FUNCTION sync_metadata.caller_hosts() FROM PUBLIC;
REVOKE ALL ON FUNCTION sync_metadata.caller_deployments() FROM PUBLIC;
