/**
 * Catch-ups for migrations that were edited after their first release, before applied migrations were frozen by
 * their checksums. An install recorded one of these without a checksum, so it may have run an older text; its
 * catch-up runs once, when the checksum is first recorded, at that migration's place in the order (before anything
 * applied after it), and brings any older text's result to what the current text creates. Each is idempotent: on an
 * install that ran the current text it changes nothing.
 *
 * New migrations never need one: they are recorded with their checksum, and an edit is refused
 * (MigrationChangedError). This list never grows.
 */
export const CATCH_UP: Readonly<Record<string, string>> = {
  // First text: an index on next_sync_at. Second: that index dropped for HOT updates (fillfactor 70). Third: the
  // deployment_cluster() lookup. Migration 000009 replaces that function later, so it is created only if missing.
  '000003_cluster_scheduling': `
    DROP INDEX IF EXISTS sync_metadata.client_deployments_next_sync_idx;
    ALTER TABLE sync_metadata.client_deployments SET (fillfactor = 70);
    DO $catch_up$
    BEGIN
      IF to_regprocedure('sync_metadata.deployment_cluster(uuid)') IS NULL THEN
        CREATE FUNCTION sync_metadata.deployment_cluster(p_deployment_id uuid)
        RETURNS text LANGUAGE sql STABLE SECURITY DEFINER
        SET search_path = pg_catalog, pg_temp
        AS $fn$
            SELECT h.cluster_name
              FROM sync_metadata.client_deployments d
              JOIN sync_metadata.hosts h ON h.host_id = d.host_id
             WHERE d.deployment_id = p_deployment_id
        $fn$;
        REVOKE ALL ON FUNCTION sync_metadata.deployment_cluster(uuid) FROM PUBLIC;
      END IF;
    END
    $catch_up$;`,
  // First text: source_schema only. The second added verify_results (the last verification of each tenant).
  '000006_restore_source_schema': `
    CREATE TABLE IF NOT EXISTS sync_state.verify_results (
        deployment_id    uuid PRIMARY KEY REFERENCES sync_metadata.client_deployments (deployment_id) ON DELETE CASCADE,
        match            boolean NOT NULL,
        sqlite_path      text NOT NULL,
        totals           jsonb NOT NULL,
        report           jsonb NOT NULL,
        checked_at       timestamptz NOT NULL,
        duration_seconds numeric(12, 3) NOT NULL
    );`,
};
