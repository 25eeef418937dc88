-- A full sync of a WAL-mode file no longer hashes every page of it: the next run learns from the WAL which pages
-- changed and records every page's hash then (as it already records the cells of every table leaf). Until it has,
-- the page state says so here, and a run that cannot use the WAL (a checkpoint truncated it) compares every table
-- in full instead of comparing page hashes. States recorded before this column existed hold every hash.
ALTER TABLE sync_state.source_pages ADD COLUMN IF NOT EXISTS hashes_recorded boolean NOT NULL DEFAULT true;
