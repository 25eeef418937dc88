import { systemClock, type Clock } from '../types.ts';

/**
 * A bounded in-memory map whose entries expire after a fixed time. Used by the state manager for cache-aside reads;
 * evictions (expiry, invalidation, capacity) are reported so they can be counted.
 */

export type EvictionReason = 'expired' | 'invalidated' | 'capacity';

export type CacheEntry<V> = { readonly value: V; readonly storedAt: Date; readonly expiresAt: number };

export class TtlCache<V> {
  readonly #entries = new Map<string, CacheEntry<V>>();
  readonly #ttlMs: number;
  readonly #maxEntries: number;
  readonly #clock: Clock;
  readonly #onEvict: ((key: string, reason: EvictionReason) => void) | undefined;

  constructor(opts: {
    ttlSeconds: number;
    maxEntries?: number;
    clock?: Clock;
    onEvict?: (key: string, reason: EvictionReason) => void;
  }) {
    this.#ttlMs = Math.max(0, opts.ttlSeconds) * 1000;
    this.#maxEntries = Math.max(1, opts.maxEntries ?? 10_000);
    this.#clock = opts.clock ?? systemClock;
    this.#onEvict = opts.onEvict;
  }

  get size(): number {
    return this.#entries.size;
  }

  /** The live entry for `key`, or undefined (an expired entry is evicted on the way). */
  get(key: string): CacheEntry<V> | undefined {
    const entry = this.#entries.get(key);
    if (!entry) return undefined;
    if (this.#clock.now().getTime() >= entry.expiresAt) {
      this.#entries.delete(key);
      this.#onEvict?.(key, 'expired');
      return undefined;
    }
    return entry;
  }

  /** The entry for `key` if present, expired or not, without evicting anything. */
  peek(key: string): CacheEntry<V> | undefined {
    return this.#entries.get(key);
  }

  keys(): string[] {
    return [...this.#entries.keys()];
  }

  /** Stores a value; a TTL of 0 disables caching (nothing is stored). */
  set(key: string, value: V): void {
    if (this.#ttlMs === 0) return;
    const now = this.#clock.now();
    if (!this.#entries.has(key) && this.#entries.size >= this.#maxEntries) {
      // Maps iterate in insertion order: the first key is the oldest entry.
      const oldest = this.#entries.keys().next();
      if (!oldest.done) {
        this.#entries.delete(oldest.value);
        this.#onEvict?.(oldest.value, 'capacity');
      }
    }
    this.#entries.delete(key);
    this.#entries.set(key, { value, storedAt: now, expiresAt: now.getTime() + this.#ttlMs });
  }

  /** Drops `key`; returns true when something was cached. */
  delete(key: string, reason: EvictionReason = 'invalidated'): boolean {
    const had = this.#entries.delete(key);
    if (had) this.#onEvict?.(key, reason);
    return had;
  }

  clear(reason: EvictionReason = 'invalidated'): void {
    for (const key of [...this.#entries.keys()]) this.delete(key, reason);
  }
}
