import { setImmediate as yieldToLoop } from 'node:timers/promises';

/**
 * Read-only work on the SQLite snapshot that later tables of an incremental run will need (a content fingerprint, or
 * whether any row changed since the cursor), done while the run waits for PostgreSQL to apply an earlier chunk.
 * Reading SQLite is synchronous and PostgreSQL works on its own, so a scan that would otherwise sit on the run's
 * critical path (a table without an index on updated_at, say) is overlapped with the database's work instead.
 * Results come from the same snapshot the table itself would read, so using them changes nothing but the timing.
 */
export type Foresight = { readonly fingerprint: string } | { readonly changed: boolean };

export class Lookahead {
  private readonly pending = new Map<string, () => Foresight>();
  private readonly results = new Map<string, Foresight>();
  /** Work in steps with no table of its own (returns false when done), run when no table's work is queued. */
  private background: (() => boolean) | undefined;

  /** Sets the background work (a step at a time, while a chunk is in flight). */
  setBackground(step: (() => boolean) | undefined): void {
    this.background = step;
  }

  /** Queues work for `table` (tables are served in the order they were scheduled). */
  schedule(table: string, compute: () => Foresight): void {
    this.pending.set(table, compute);
  }

  /** What was found out ahead for `table`, if anything; drops its queued work either way. */
  take(table: string): Foresight | undefined {
    this.pending.delete(table);
    const found = this.results.get(table);
    this.results.delete(table);
    return found;
  }

  /** Awaits `promise`, running queued work while it is pending. A failed task is simply left for the table. */
  async during<T>(promise: Promise<T>): Promise<T> {
    if (this.pending.size === 0 && !this.background) return promise;
    let settled = false;
    const mark = () => {
      settled = true;
    };
    promise.then(mark, mark);
    while (this.pending.size > 0 || this.background) {
      // Let socket events run first, so a chunk PostgreSQL has already finished is not kept waiting.
      await yieldToLoop();
      if (settled) break;
      const next = this.pending.entries().next();
      if (next.done) {
        try {
          if (this.background && !this.background()) this.background = undefined;
        } catch {
          // Whoever finishes the work runs it again and reports the error there.
          this.background = undefined;
        }
        continue;
      }
      const [table, compute] = next.value;
      this.pending.delete(table);
      try {
        this.results.set(table, compute());
      } catch {
        // The table reads for itself in its turn and reports the error there.
      }
    }
    return promise;
  }
}
