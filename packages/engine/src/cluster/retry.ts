import type { Logger } from 'pino';
import { AbortedError, ConfigError, errorMessage } from '../errors.ts';

/**
 * Retries `fn` until it succeeds or `signal` aborts, waiting 1 s after the first failure and doubling up to
 * `maxDelayMs` (default 5 s). Used at start-up so a process started before its database keeps trying instead of
 * exiting. A ConfigError is not retried: waiting does not fix a configuration.
 */
export async function retryUntilReady<T>(
  what: string,
  fn: () => Promise<T>,
  opts: { logger: Logger; signal?: AbortSignal; maxDelayMs?: number },
): Promise<T> {
  let delay = 1000;
  for (let attempt = 1; ; attempt += 1) {
    if (opts.signal?.aborted) throw new AbortedError(`${what}: stopped before it succeeded`);
    try {
      return await fn();
    } catch (error) {
      if (opts.signal?.aborted) throw new AbortedError(`${what}: stopped before it succeeded`);
      if (error instanceof ConfigError) throw error;
      opts.logger.warn(
        { err: error, attempt },
        `${what} failed: ${errorMessage(error)}; retrying in ${Math.round(delay / 1000)} s`,
      );
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, delay);
        opts.signal?.addEventListener(
          'abort',
          () => {
            clearTimeout(timer);
            resolve();
          },
          { once: true },
        );
      });
      delay = Math.min(delay * 2, opts.maxDelayMs ?? 5000);
    }
  }
}
