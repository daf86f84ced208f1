/**
 * Fetches a stack-run queue's jobs in batches for a fixed number of slots (the run worker's
 * concurrency on that queue, TENANCY_MAX_PARALLEL_RUNS per region).
 *
 * pg-boss's own `work()` takes one job per worker and polls per worker: 32 slots were 32 pollers,
 * each fetching with its own statement (64 statements a second at a 0.5 s polling interval, through
 * pg-boss's 4 connections), and a wave of 32 runs was 32 fetches. A `work()` with `batchSize` does
 * not help: it hands the batch to one handler and fetches again only when the whole batch is done,
 * so a wave would wait for its slowest update. Here one loop per queue fetches, in one statement,
 * as many jobs as there are free slots (pg-boss `fetch` with `batchSize`), starts each at once and
 * settles each on its own when its run ends (`complete`, or `fail` when the handler throws, which
 * pg-boss retries as before). A slot that frees fetches again at once; an idle queue is polled at
 * the polling interval or woken by `notify()` (jobs committed by this process).
 *
 * Never more runs at once than slots: the fetch asks for the free slots only, a job is dispatched
 * the moment it is fetched, and its slot is free again when its handler is done (its run ended and
 * was recorded), while pg-boss's completion of the job is still on its way. A process that dies with fetched jobs loses none: a job
 * fetched and never claimed is sent again (RunStore.reapStale, "fetched by a process that never
 * claimed it"), a claimed run whose heartbeat stops is taken over (docs/control-plane.md, "After a
 * crash").
 */
import type { Job, PgBoss } from "pg-boss";
import type { StackRunJob } from "../queue.ts";

export interface JobDispatcherOptions {
  boss: PgBoss;
  queue: string;
  /** Jobs of this queue handled at once in this process. */
  slots: number;
  pollingIntervalSeconds: number;
  /** Runs one job; resolves when its run ended. A throw fails the job (pg-boss retries it). */
  handle: (jobId: string, data: StackRunJob) => Promise<void>;
  /** A fetch, complete or fail that failed (the loop goes on at the next poll). */
  onError: (err: Error, what: string) => void;
}

export class JobDispatcher {
  private active = 0;
  private stopped = false;
  private loop?: Promise<void>;
  private wake?: () => void;
  /** Set when something happened while a fetch was in flight: fetch again before sleeping. */
  private poked = false;
  private readonly settling = new Set<Promise<void>>();
  /** Fetch statements issued and jobs they returned (tests and the bench count them). */
  readonly stats = { fetches: 0, jobs: 0, largestBatch: 0 };

  constructor(private readonly opts: JobDispatcherOptions) {}

  /** Jobs in hand whose handler has not finished (what the slots bound). */
  get inHand(): number {
    return this.active;
  }

  start(): void {
    this.stopped = false;
    this.loop ??= this.run().finally(() => (this.loop = undefined));
  }

  /** New jobs may be there: fetch now rather than at the next poll. */
  notify(): void {
    this.poked = true;
    this.wake?.();
  }

  /** Stops fetching; jobs in hand go on (the run worker decides how long to wait for them). */
  async stop(): Promise<void> {
    this.stopped = true;
    this.wake?.();
    await this.loop;
  }

  /** Resolves when every job in hand has run and been settled with pg-boss. */
  async drain(): Promise<void> {
    while (this.settling.size > 0) await Promise.allSettled([...this.settling]);
  }

  private async run(): Promise<void> {
    const { boss, queue, slots } = this.opts;
    while (!this.stopped) {
      this.poked = false;
      const free = slots - this.active;
      if (free > 0) {
        try {
          const jobs = await boss.fetch<StackRunJob>(queue, { batchSize: free });
          this.stats.fetches++;
          this.stats.jobs += jobs.length;
          this.stats.largestBatch = Math.max(this.stats.largestBatch, jobs.length);
          for (const job of jobs) this.dispatch(job);
          // A full batch: the queue may hold more, and any slot freed meanwhile takes one at once.
          if (jobs.length === free && this.active < slots) continue;
        } catch (err) {
          this.opts.onError(err as Error, `fetching ${queue} jobs`);
        }
      }
      if (this.stopped || this.poked) continue;
      // Free slots poll; with every slot busy only a slot freeing (or stop) wakes the loop.
      await new Promise<void>((resolve) => {
        const timer = this.active < slots ? setTimeout(resolve, this.opts.pollingIntervalSeconds * 1000) : undefined;
        this.wake = () => {
          if (timer) clearTimeout(timer);
          resolve();
        };
      });
      this.wake = undefined;
    }
  }

  private dispatch(job: Job<StackRunJob>): void {
    const { boss, queue } = this.opts;
    this.active++;
    // Settled with the attempt it was fetched as: a job pg-boss meanwhile expired and handed out
    // again is not completed by this (late) attempt.
    const attempt = { id: job.id, retryCount: job.retryCount };
    // The slot is free once the handler is done (its run ended and was recorded): the next job is
    // fetched while this one is being completed, which nothing of the run waits for any more.
    const ran = this.opts.handle(job.id, job.data).then(
      () => ({ ok: true as const }),
      (err: unknown) => ({ ok: false as const, err: err as Error }),
    );
    const settled = ran
      .then((outcome) => {
        this.active--;
        this.notify();
        return outcome.ok
          ? boss.complete(queue, attempt).then(() => undefined, (err: unknown) => this.opts.onError(err as Error, `completing job ${job.id}`))
          : boss.fail(queue, attempt, { message: outcome.err.message }).then(() => undefined, (e: unknown) => this.opts.onError(e as Error, `failing job ${job.id}`));
      })
      .finally(() => this.settling.delete(settled));
    this.settling.add(settled);
  }
}
