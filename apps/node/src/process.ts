import { readFileSync } from 'node:fs';
import type { Logger } from 'pino';
import type { RunTenantSync } from '@owui-sync/engine/cluster';
import { ConfigError, errorMessage } from '@owui-sync/engine';

/** Helpers shared by the node and worker entry files: engine loading, version, signal handling. */

/** The sync engine's runTenantSync (loaded only by processes that run syncs). */
export async function loadRunTenantSync(): Promise<RunTenantSync> {
  const mod = await import('@owui-sync/engine/sync');
  return mod.runTenantSync;
}

/** Stand-in for a node whose worker part is disabled (WORKER_CONCURRENCY=0): it never receives a job. */
export const notRunningSyncs: RunTenantSync = async () => {
  throw new Error('this node runs no syncs (WORKER_CONCURRENCY=0)');
};

export function productVersion(): string {
  try {
    const pkg = JSON.parse(readFileSync(new URL('../../../package.json', import.meta.url), 'utf8')) as {
      version?: string;
    };
    return pkg.version ?? '0.0.0';
  } catch {
    return '0.0.0';
  }
}

/**
 * Runs `start` and stops what it returned on SIGTERM/SIGINT (a second signal exits at once). A signal during
 * start-up (e.g. while waiting for the database) aborts it. Exit code 0 after a clean stop, 1 on failure, 2 for
 * invalid configuration.
 */
export async function runUntilSignalled(
  name: string,
  start: (signal: AbortSignal) => Promise<{ stop(): Promise<void> }>,
  logger: Logger,
): Promise<void> {
  const abort = new AbortController();
  let stopRequested = false;
  let handle: { stop(): Promise<void> } | undefined;
  const onSignal = (signal: NodeJS.Signals) => {
    if (stopRequested) {
      logger.warn(`${signal} again: exiting without waiting`);
      process.exit(1);
    }
    stopRequested = true;
    logger.info(`${signal} received: stopping ${name}`);
    abort.abort();
    if (handle) {
      handle.stop().then(
        () => process.exit(0),
        (error: unknown) => {
          logger.error({ err: error }, `stopping ${name} failed: ${errorMessage(error)}`);
          process.exit(1);
        },
      );
    }
  };
  process.on('SIGTERM', onSignal);
  process.on('SIGINT', onSignal);
  process.on('unhandledRejection', (error) => {
    logger.error({ err: error }, `unexpected error (kept running): ${errorMessage(error)}`);
  });
  try {
    handle = await start(abort.signal);
    if (stopRequested) {
      await handle.stop();
      process.exit(0);
    }
  } catch (error) {
    if (stopRequested) process.exit(0);
    if (error instanceof ConfigError) {
      process.stderr.write(`${error.message}\n`);
      process.exit(2);
    }
    logger.fatal({ err: error }, `${name} could not start: ${errorMessage(error)}`);
    process.exit(1);
  }
}
