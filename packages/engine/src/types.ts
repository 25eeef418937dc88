/**
 * Glossary
 * - tenant: one Open WebUI instance (a "client") whose SQLite database is backed up; registered in
 *   sync_metadata.client_deployments and stored in its own PostgreSQL schema (client_<name>).
 * - host: one registered process (node or worker) in sync_metadata.hosts; its id is derived from cluster, hostname
 *   and node name so a restart keeps the same row.
 * - node: a full process (scheduler + worker + API), node-a or node-b; a worker runs only the worker part.
 * - lease: the leader_election row of a cluster; whoever holds an unexpired lease leads.
 * - epoch: the lease's fencing token, incremented on every change of leader; leader actions check it.
 * - page state: per tenant, what the last successful run saw of its SQLite file page by page
 *   (sync_state.source_pages); the next run's change capture compares the file with it.
 * - tombstone: the record that a row was deleted in SQLite; the service never deletes rows in PostgreSQL.
 */

export type Clock = { now(): Date };
export const systemClock: Clock = { now: () => new Date() };
