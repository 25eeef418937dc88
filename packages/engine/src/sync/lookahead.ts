import { setImmediate as yieldToLoop } from 'node:timers/promises';

/**
 * Work on the SQLite snapshot that a run needs anyway (a full sync hashes the file's pages for change capture), done
 * in steps while the run waits for PostgreSQL to apply an earlier chunk. Reading SQLite is synchronous and
 * PostgreSQL works on its own, so work that would otherwise sit on the run's critical path is overlapped with the
 * database's. Whoever needs the result finishes what is left itself, so using it changes nothing but the timing.
 */
export class Lookahead {
  /** One step of the work; false once there is nothing left. */
  private background: (() => boolean) | undefined;

  /** Sets the work to do a step at a time while a chunk is in flight (undefined: none). */
  setBackground(step: (() => boolean) | undefined): void {
    this.background = step;
  }

  /** Awaits `promise`, running steps of the work while it is pending. A failing step drops the work. */
  async during<T>(promise: Promise<T>): Promise<T> {
    if (!this.background) return promise;
    let settled = false;
    const mark = () => {
      settled = true;
    };
    promise.then(mark, mark);
    while (this.background) {
      // Let socket events run first, so a chunk PostgreSQL has already finished is not kept waiting.
      await yieldToLoop();
      if (settled) break;
      try {
        if (!this.background()) this.background = undefined;
      } catch {
        // Whoever finishes the work runs it again and reports the error there.
        this.background = undefined;
      }
    }
    return promise;
  }
}
