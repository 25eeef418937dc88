-- The tenant's SQLite file as it resolved when it was registered: every symlink of sqlite_path followed
-- (realpath). A run refuses to read the file when sqlite_path now resolves anywhere else (a symlink swapped to
-- another file, in particular another tenant's), so one tenant's data can never end up in another tenant's backup.
-- Tenants registered before this column existed get it filled by their first run.
ALTER TABLE sync_metadata.client_deployments ADD COLUMN IF NOT EXISTS sqlite_realpath text;
