/**
 * Drives the rollout engine: one tick every `intervalMs` (and at once when asked), never two
 * ticks of this process at a time. stop() clears the timer and waits for a tick in progress.
 */
import type { Logger } from "../log.ts";
import type { RolloutEngine } from "./engine.ts";

export interface RolloutWorkerOptions {
  /** Milliseconds between ticks. @default 2000 */
  intervalMs?: number;
}

export const DEFAULT_ROLLOUT_TICK_MS = 2000;

export class RolloutWorker {
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;
  private again = false;
  private stopped = false;

  constructor(
    private readonly engine: RolloutEngine,
    private readonly log: Logger,
    private readonly opts: RolloutWorkerOptions = {},
  ) {}

  start(): void {
    this.stopped = false;
    this.timer = setInterval(() => this.poke(), this.opts.intervalMs ?? DEFAULT_ROLLOUT_TICK_MS);
    this.poke();
  }

  /** Ticks now (or right after the tick in progress). */
  poke(): void {
    if (this.stopped) return;
    if (this.running) {
      this.again = true;
      return;
    }
    this.running = this.engine
      .tick()
      .catch((err: unknown) => this.log.error({ err: { message: err instanceof Error ? err.message : String(err) } }, "rollout tick failed; the next tick retries"))
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
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    await this.running;
  }
}
