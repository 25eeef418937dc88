import { pathToFileURL } from 'node:url';
import type { Logger } from 'pino';
import type { z } from 'zod';
import { loadConfig } from '../config.ts';
import { ConfigError, errorMessage } from '../errors.ts';
import { createLogger } from '../logger.ts';

/** What a long-running process's start function returns. */
export type Stoppable = { stop(): Promise<void> };

/**
 * Runs `start` and stops what it returned on SIGTERM/SIGINT; a second signal exits at once. A signal during
 * start-up (e.g. while waiting for the database) aborts it through the signal passed to `start`. Resolves once
 * stopped after a signal (or after a start-up the signal aborted); rejects when start-up fails for another reason
 * or stopping fails. Every process (node, worker, scheduler, and syncctl's commands for them) uses this.
 */
export async function runUntilSignalled(
  name: string,
  start: (signal: AbortSignal) => Promise<Stoppable>,
  logger: Logger,
): Promise<void> {
  const abort = new AbortController();
  let received: NodeJS.Signals | undefined;
  let wake = () => {};
  const stopRequested = new Promise<void>((resolve) => (wake = resolve));
  const onSignal = (signal: NodeJS.Signals) => {
    if (received) {
      logger.warn(`${signal} again: exiting without waiting`);
      process.exit(1);
    }
    received = signal;
    logger.info(`${signal} received: stopping ${name}`);
    abort.abort();
    wake();
  };
  const onRejection = (error: unknown) =>
    logger.error({ err: error }, `unexpected error (kept running): ${errorMessage(error)}`);
  process.on('SIGTERM', onSignal);
  process.on('SIGINT', onSignal);
  process.on('unhandledRejection', onRejection);
  try {
    let handle: Stoppable;
    try {
      handle = await start(abort.signal);
    } catch (error) {
      if (received) return;
      throw error;
    }
    await stopRequested;
    try {
      await handle.stop();
    } catch (error) {
      logger.error({ err: error }, `stopping ${name} failed: ${errorMessage(error)}`);
      throw error;
    }
  } finally {
    process.off('SIGTERM', onSignal);
    process.off('SIGINT', onSignal);
    process.off('unhandledRejection', onRejection);
  }
}

/**
 * The entry of a process's main file: runUntilSignalled, then the exit code. 0 after a clean stop, 1 on failure,
 * 2 for invalid configuration (its problems on stderr).
 */
export async function runProcess(
  name: string,
  start: (signal: AbortSignal) => Promise<Stoppable>,
  logger: Logger,
): Promise<never> {
  let started = false;
  try {
    await runUntilSignalled(
      name,
      async (signal) => {
        const handle = await start(signal);
        started = true;
        return handle;
      },
      logger,
    );
    process.exit(0);
  } catch (error) {
    // A failed stop was logged where it happened.
    if (started) process.exit(1);
    if (error instanceof ConfigError) {
      process.stderr.write(`${error.message}\n`);
      process.exit(2);
    }
    logger.fatal({ err: error }, `${name} could not start: ${errorMessage(error)}`);
    process.exit(1);
  }
}

/** True when the module at `moduleUrl` is the file node was asked to run (`tsx apps/<app>/src/main.ts`). */
export function isEntryPoint(moduleUrl: string, argv1: string | undefined = process.argv[1]): boolean {
  return argv1 !== undefined && moduleUrl === pathToFileURL(argv1).href;
}

/**
 * A process's main file, in one call: when `moduleUrl` is the file node runs, reads `schema` through the one
 * configuration pipeline (the environment, `*_FILE` secrets, `.credentials`, defaults, shared checks) and runs
 * `start` under runProcess. Does nothing when the module is imported (by syncctl or a test).
 */
export function runIfEntryPoint<S extends z.ZodType>(
  moduleUrl: string,
  name: string,
  schema: S,
  start: (config: Readonly<z.infer<S>>, deps: { signal: AbortSignal }) => Promise<Stoppable>,
): void {
  if (!isEntryPoint(moduleUrl)) return;
  void runProcess(
    name,
    async (signal) => start(loadConfig(schema, { env: process.env, cwd: process.cwd() }), { signal }),
    createLogger({ level: process.env.LOG_LEVEL ?? 'info' }),
  );
}
