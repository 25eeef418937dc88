-- Restore bookkeeping: the tenant's SQLite schema exactly as the source declared it (sqlite_master rows: tables,
-- indexes, triggers, views, in creation order), so a restore recreates the same DDL shape — declared types such as
-- DATETIME or VARCHAR(255), missing primary keys of legacy tables, index names — that PostgreSQL types cannot
-- express. Captured by captureSourceSchema() (provisioning, verification); one row per tenant, replaced in place.

CREATE SCHEMA IF NOT EXISTS sync_state;

CREATE TABLE IF NOT EXISTS sync_state.source_schema (
    deployment_id     uuid PRIMARY KEY REFERENCES sync_metadata.client_deployments (deployment_id) ON DELETE CASCADE,
    -- [{ "type": "table", "name": "chat", "tbl_name": "chat", "sql": "CREATE TABLE chat (…)" }, …]
    objects           jsonb NOT NULL,
    openwebui_version text,
    journal_mode      text,
    captured_at       timestamptz NOT NULL DEFAULT now()
);

-- The last verification of each tenant (syncctl verify): whether its backup matched the source, with the totals
-- and per-table report, for schedules, the API and the sync_verify_ok metric.
CREATE TABLE IF NOT EXISTS sync_state.verify_results (
    deployment_id    uuid PRIMARY KEY REFERENCES sync_metadata.client_deployments (deployment_id) ON DELETE CASCADE,
    match            boolean NOT NULL,
    sqlite_path      text NOT NULL,
    totals           jsonb NOT NULL,
    report           jsonb NOT NULL,
    checked_at       timestamptz NOT NULL,
    duration_seconds numeric(12, 3) NOT NULL
);
