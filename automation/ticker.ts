/**
 * Calls a periodic job of the control plane (the rollout engine, the drift scheduler) every
 * `intervalMs` and at once when poked, never two calls of one ticker at a time. A failed tick is
 * logged and retried by the next. stop() clears the timer and waits for a tick in progress.
 */
import type { Logger } from "./log.ts";

export interface TickerOptions {
  /** Milliseconds between ticks. @default 2000 */
  intervalMs?: number;
}

export const DEFAULT_TICK_MS = 2000;

export class Ticker {
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;
  private again = false;
  private stopped = false;

  constructor(
    /** What the ticker drives, for its log lines. */
    private readonly name: string,
    private readonly tick: () => Promise<unknown>,
    private readonly log: Logger,
    private readonly opts: TickerOptions = {},
  ) {}

  private started = false;

  start(): void {
    this.stopped = false;
    this.started = true;
    this.timer = setInterval(() => this.poke(), this.opts.intervalMs ?? DEFAULT_TICK_MS);
    this.poke();
  }

  /** Ticks now (or right after the tick in progress); nothing before start() or after stop(). */
  poke(): void {
    if (this.stopped || !this.started) return;
    if (this.running) {
      this.again = true;
      return;
    }
    this.running = this.tick()
      .then(() => undefined)
      .catch((err: unknown) => this.log.error({ err: { message: err instanceof Error ? err.message : String(err) } }, `${this.name} failed; the next tick retries`))
      .finally(() => {
        this.running = undefined;
        if (this.again) {
          this.again = false;
          this.poke();
        }
      });
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.started = false;
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    await this.running;
  }
}
