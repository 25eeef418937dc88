import { runIfEntryPoint } from '@owui-sync/engine/process';
import { apiConfigSchema } from './config.ts';
import { startApiProcess } from './process.ts';

/**
 * The API-only process: the REST API and the dashboard of one cluster, for as many replicas behind a load
 * balancer as the traffic needs; each registers as a host of role `api` under its own hostname. It runs no sync,
 * no scheduler and takes no part in the election: pair it with nodes or with schedulers and workers.
 *
 *   API_PORT=9445 DATABASE_URL=postgres://sync_service:…@db:5432/postgres tsx apps/api/src/main.ts
 */

runIfEntryPoint(import.meta.url, 'api', apiConfigSchema, startApiProcess);
