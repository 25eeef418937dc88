-- The row bookkeeping's link to its tenant, checked once per statement instead of once per row.
--
-- sync_state.row_state gets one row per synced row: a full sync of a 280 000-row tenant inserts 280 000 of them.
-- Its foreign key to client_deployments ran a trigger and an index probe with a row lock for every one of them, which
-- was about a quarter of PostgreSQL's work in a full sync. The same guarantees, per statement:
--
-- * an INSERT is checked after the statement, over its new rows (a transition table): every deployment they name
--   must exist, and is locked FOR KEY SHARE, as the foreign key did, so a tenant cannot be deregistered while a run
--   is writing its bookkeeping (the deregistration waits for the run's transaction);
-- * a row's deployment_id never changes (no code changes it; an UPDATE that tries is refused);
-- * deleting a deployment deletes its bookkeeping (what ON DELETE CASCADE did).
--
-- The functions run as their owner (the admin), so row-level security does not hide the deployments they check.

CREATE OR REPLACE FUNCTION sync_state.row_state_check_deployments()
RETURNS trigger LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    wanted bigint;
    found bigint;
BEGIN
    SELECT count(DISTINCT n.deployment_id) INTO wanted FROM new_rows n;
    IF wanted = 0 THEN
        RETURN NULL;
    END IF;
    SELECT count(*) INTO found FROM (
        SELECT 1 FROM sync_metadata.client_deployments d
         WHERE d.deployment_id IN (SELECT DISTINCT n.deployment_id FROM new_rows n)
           FOR KEY SHARE OF d
    ) locked;
    IF found < wanted THEN
        RAISE EXCEPTION 'row bookkeeping names a tenant deployment that does not exist'
            USING ERRCODE = 'foreign_key_violation', TABLE = 'row_state', SCHEMA = 'sync_state';
    END IF;
    RETURN NULL;
END
$$;

CREATE OR REPLACE FUNCTION sync_state.row_state_keep_deployment()
RETURNS trigger LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF NEW.deployment_id IS DISTINCT FROM OLD.deployment_id THEN
        RAISE EXCEPTION 'the deployment of a bookkeeping row cannot change'
            USING ERRCODE = 'foreign_key_violation', TABLE = 'row_state', SCHEMA = 'sync_state';
    END IF;
    RETURN NEW;
END
$$;

CREATE OR REPLACE FUNCTION sync_state.row_state_cascade_deployment()
RETURNS trigger LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    DELETE FROM sync_state.row_state r WHERE r.deployment_id IN (SELECT o.deployment_id FROM old_rows o);
    RETURN NULL;
END
$$;

REVOKE ALL ON FUNCTION sync_state.row_state_check_deployments() FROM PUBLIC;
REVOKE ALL ON FUNCTION sync_state.row_state_keep_deployment() FROM PUBLIC;
REVOKE ALL ON FUNCTION sync_state.row_state_cascade_deployment() FROM PUBLIC;

DROP TRIGGER IF EXISTS row_state_deployments_exist ON sync_state.row_state;
CREATE TRIGGER row_state_deployments_exist
    AFTER INSERT ON sync_state.row_state
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION sync_state.row_state_check_deployments();

DROP TRIGGER IF EXISTS row_state_deployment_fixed ON sync_state.row_state;
CREATE TRIGGER row_state_deployment_fixed
    BEFORE UPDATE OF deployment_id ON sync_state.row_state
    FOR EACH ROW EXECUTE FUNCTION sync_state.row_state_keep_deployment();

DROP TRIGGER IF EXISTS client_deployments_row_state_cascade ON sync_metadata.client_deployments;
CREATE TRIGGER client_deployments_row_state_cascade
    AFTER DELETE ON sync_metadata.client_deployments
    REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION sync_state.row_state_cascade_deployment();

-- Last, once the triggers stand in for it: the per-row foreign key (whatever it was named).
DO $$
DECLARE
    c record;
BEGIN
    FOR c IN
        SELECT con.conname
          FROM pg_constraint con
         WHERE con.conrelid = 'sync_state.row_state'::regclass
           AND con.contype = 'f'
           AND con.confrelid = 'sync_metadata.client_deployments'::regclass
    LOOP
        EXECUTE format('ALTER TABLE sync_state.row_state DROP CONSTRAINT %I', c.conname);
    END LOOP;
END
$$;
