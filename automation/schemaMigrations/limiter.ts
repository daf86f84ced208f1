/**
 * A semaphore per key: at most `limit` tasks of one key run at once, the others queue in order.
 * The schema migrator keys it by PostgreSQL instance, so however many schemas and waves are in
 * flight, one instance never runs more than K migrations at once (docs/schema-migrations.md).
 */
export class KeyedLimiter {
  private readonly active = new Map<string, number>();
  private readonly queues = new Map<string, (() => void)[]>();
  private readonly peaks = new Map<string, number>();

  constructor(readonly limit: number) {
    if (!Number.isInteger(limit) || limit < 1) throw new Error(`a limiter needs a positive integer limit, got ${limit}`);
  }

  async run<T>(key: string, task: () => Promise<T>): Promise<T> {
    const running = this.active.get(key) ?? 0;
    if (running >= this.limit) {
      // release() hands its slot straight to the first waiter (the count does not drop), so a
      // task arriving meanwhile cannot take it as well.
      await new Promise<void>((resolve) => {
        const q = this.queues.get(key) ?? [];
        q.push(resolve);
        this.queues.set(key, q);
      });
    } else {
      this.active.set(key, running + 1);
    }
    this.peaks.set(key, Math.max(this.peaks.get(key) ?? 0, this.active.get(key)!));
    try {
      return await task();
    } finally {
      this.release(key);
    }
  }

  private release(key: string): void {
    const next = this.queues.get(key)?.shift();
    if (next) next();
    else this.active.set(key, this.active.get(key)! - 1);
  }

  /** The most tasks of `key` that ran at once so far. */
  peak(key: string): number {
    return this.peaks.get(key) ?? 0;
  }
}
