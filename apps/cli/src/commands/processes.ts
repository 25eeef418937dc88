import type { z } from 'zod';
import { loadConfig } from '@owui-sync/engine';
import type { Stoppable } from '@owui-sync/engine/process';
import type { Command } from '../command.ts';
import type { CliContext } from '../context.ts';

/**
 * `syncctl node` / `syncctl worker` / `syncctl scheduler` / `syncctl api`: the long-running processes, started from their apps'
 * package entries and stopped cleanly by SIGTERM or Ctrl-C (the engine's one signal handler).
 */

/**
 * Reads `schema` from syncctl's environment (with the options applied) through the one configuration pipeline,
 * starts the app's process and runs it until SIGTERM/Ctrl-C stops it.
 */
async function runApp<S extends z.ZodType>(
  ctx: CliContext,
  values: Readonly<Record<string, string | boolean | undefined>>,
  what: string,
  schema: S,
  start: (config: Readonly<z.infer<S>>, deps: { signal: AbortSignal }) => Promise<Stoppable>,
): Promise<number> {
  const config = loadConfig(schema, { env: processEnv(ctx, values), cwd: ctx.io.cwd });
  // Loaded here, like the apps: the cluster runtime (pg-boss, …) is not what every syncctl command needs.
  const { runUntilSignalled } = await import('@owui-sync/engine/process');
  await runUntilSignalled(what, (signal) => start(config, { signal }), ctx.logger);
  return 0;
}

function processEnv(ctx: CliContext, values: Readonly<Record<string, string | boolean | undefined>>) {
  const env: Record<string, string | undefined> = {
    ...ctx.env,
    CLUSTER_NAME: ctx.cluster,
    LOG_LEVEL: ctx.io.env.LOG_LEVEL,
  };
  if (typeof values.role === 'string') env.ROLE = values.role;
  if (typeof values.port === 'string') env.API_PORT = values.port;
  if (typeof values.concurrency === 'string') env.WORKER_CONCURRENCY = values.concurrency;
  return env;
}

export const nodeCommand: Command = {
  path: ['node'],
  summary: 'run a full node: host registry, leader election, scheduler, sync worker and the API',
  description:
    'Configured by the environment (DATABASE_URL = the service role, CLUSTER_NAME, ROLE, API_PORT,\n' +
    'HEARTBEAT_INTERVAL, LEASE_DURATION, WORKER_CONCURRENCY, …) or .credentials. SIGTERM/Ctrl-C hands leadership\n' +
    'over at once and finishes or hands back running syncs.',
  options: {
    role: { type: 'string', placeholder: 'NAME', description: 'node name (default: ROLE, else node-a)' },
    port: { type: 'string', placeholder: 'PORT', description: 'API port (default: API_PORT, else 9443)' },
    concurrency: {
      type: 'string',
      placeholder: 'N',
      description: 'syncs run at once (default: WORKER_CONCURRENCY, 2)',
    },
  },
  examples: ['syncctl node --role node-a --port 9443', 'ROLE=node-b API_PORT=9444 syncctl node'],
  async run(ctx, { values }) {
    const { nodeConfigSchema, startNode } = await import('@owui-sync/node');
    return runApp(ctx, values, 'node', nodeConfigSchema, startNode);
  },
};

export const workerCommand: Command = {
  path: ['worker'],
  summary: 'run a sync worker only (scale out: docker compose up --scale worker=3)',
  description:
    'Registers as a host and runs queued sync jobs; no election, scheduler or API. Same environment as syncctl node.',
  options: {
    role: { type: 'string', placeholder: 'NAME', description: 'worker name (default: ROLE, else worker-<hostname>)' },
    concurrency: {
      type: 'string',
      placeholder: 'N',
      description: 'syncs run at once (default: WORKER_CONCURRENCY, 2)',
    },
  },
  examples: ['syncctl worker --concurrency 4'],
  async run(ctx, { values }) {
    const { workerConfigSchema, startWorkerProcess } = await import('@owui-sync/worker');
    return runApp(ctx, values, 'worker', workerConfigSchema, startWorkerProcess);
  },
};

export const schedulerCommand: Command = {
  path: ['scheduler'],
  summary: 'run a scheduler only: host registry, leader election, scheduler and maintenance (no worker, no API)',
  description:
    'Takes part in the leader election and, while leading, enqueues due syncs and drills, marks silent hosts\n' +
    'offline and prunes history; runs no sync and serves no API (pair it with syncctl worker). Same environment\n' +
    'as syncctl node. SIGTERM/Ctrl-C hands leadership over at once.',
  options: {
    role: {
      type: 'string',
      placeholder: 'NAME',
      description: 'scheduler name (default: ROLE, else scheduler-<hostname>)',
    },
  },
  examples: ['syncctl scheduler', 'ROLE=scheduler-b syncctl scheduler'],
  async run(ctx, { values }) {
    const { schedulerConfigSchema, startSchedulerProcess } = await import('@owui-sync/scheduler');
    return runApp(ctx, values, 'scheduler', schedulerConfigSchema, startSchedulerProcess);
  },
};

export const apiCommand: Command = {
  path: ['api'],
  summary: 'run the API only: the REST API and the dashboard (no election, no scheduler, no worker)',
  description:
    "Registers as a host of role api and serves the cluster's REST API and dashboard, for more API replicas behind\n" +
    'a load balancer or an API apart from the nodes; runs no sync and takes no part in the election (pair it with\n' +
    'nodes, or with syncctl scheduler and syncctl worker). Same environment as syncctl node (API_PORT, API_TOKEN,\n' +
    'JWT_SECRET, …). SIGTERM/Ctrl-C closes the listener, then marks the host stopped.',
  options: {
    role: { type: 'string', placeholder: 'NAME', description: 'process name (default: ROLE, else api-<hostname>)' },
    port: { type: 'string', placeholder: 'PORT', description: 'API port (default: API_PORT, else 9443)' },
  },
  examples: ['syncctl api --port 9445', 'ROLE=api-2 API_PORT=9446 syncctl api'],
  async run(ctx, { values }) {
    const { apiConfigSchema, startApiProcess } = await import('@owui-sync/api');
    return runApp(ctx, values, 'api', apiConfigSchema, startApiProcess);
  },
};
