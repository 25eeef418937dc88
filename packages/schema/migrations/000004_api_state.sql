-- Free-form API state (PUT /api/v1/state/{key} for keys that are not deployment.<client>).
-- The entries live in their own schema (sync_metadata keeps its seven tables) that the service role cannot touch
-- directly: it reads and writes them only through the two functions below, which confine every call to the cluster
-- named by app.current_cluster for the transaction (the same scope row-level security uses). The install step
-- grants EXECUTE on sync_metadata's functions to the service role.

CREATE SCHEMA IF NOT EXISTS sync_api;
REVOKE ALL ON SCHEMA sync_api FROM PUBLIC;

CREATE TABLE IF NOT EXISTS sync_api.state_entries (
    cluster_name text NOT NULL,
    key          text NOT NULL CHECK (length(key) BETWEEN 1 AND 255),
    value        jsonb NOT NULL,
    version      bigint NOT NULL DEFAULT 1,
    updated_by   text,
    created_at   timestamptz NOT NULL DEFAULT now(),
    updated_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (cluster_name, key)
);

CREATE OR REPLACE FUNCTION sync_metadata.api_state_get(p_key text)
RETURNS TABLE (key text, value jsonb, version bigint, updated_by text, updated_at timestamptz)
LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT e.key, e.value, e.version, e.updated_by, e.updated_at
      FROM sync_api.state_entries e
     WHERE e.cluster_name = sync_metadata.current_cluster() AND e.key = p_key
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
    RETURN QUERY
    INSERT INTO sync_api.state_entries AS e (cluster_name, key, value, updated_by)
    VALUES (v_cluster, p_key, p_value, p_by)
    ON CONFLICT (cluster_name, key) DO UPDATE
       SET value = EXCLUDED.value, version = e.version + 1, updated_by = EXCLUDED.updated_by, updated_at = now()
    RETURNING e.key, e.value, e.version, e.updated_by, e.updated_at;
END
$$;

REVOKE ALL ON FUNCTION sync_metadata.api_state_get(text) FROM PUBLIC;
REVOKE ALL ON FUNCTION sync_metadata.api_state_put(text, jsonb, text) FROM PUBLIC;
