/**
 * Fan-out of run notifications to server-sent-event streams. One PostgreSQL connection LISTENs
 * on the run channels; workers in any process NOTIFY after persisting engine events or changing
 * a run's state, and every stream of that run re-reads what it has not sent yet.
 */
import pg from "pg";
import type { Logger } from "../log.ts";
import { RUN_EVENTS_CHANNEL, RUN_STATE_CHANNEL } from "../runs/store.ts";

type Listener = () => void;

export class RunEventHub {
  private client?: pg.Client;
  private listeners = new Map<string, Set<Listener>>();
  private closed = false;

  constructor(
    private readonly url: string,
    private readonly log: Logger,
  ) {}

  async start(): Promise<void> {
    const client = new pg.Client({ connectionString: this.url });
    client.on("error", (err) => {
      this.log.warn({ err: { message: err.message } }, "run notification connection lost; reconnecting");
      this.client = undefined;
      if (!this.closed) setTimeout(() => void this.start().catch(() => undefined), 1000).unref();
    });
    client.on("notification", (msg) => {
      if (!msg.payload) return;
      for (const l of this.listeners.get(msg.payload) ?? []) l();
    });
    await client.connect();
    await client.query(`LISTEN ${RUN_EVENTS_CHANNEL}`);
    await client.query(`LISTEN ${RUN_STATE_CHANNEL}`);
    this.client = client;
    // Anything missed while (re)connecting: wake every stream.
    for (const set of this.listeners.values()) for (const l of set) l();
  }

  subscribe(runId: string, listener: Listener): () => void {
    const set = this.listeners.get(runId) ?? new Set();
    set.add(listener);
    this.listeners.set(runId, set);
    return () => {
      set.delete(listener);
      if (set.size === 0) this.listeners.delete(runId);
    };
  }

  async stop(): Promise<void> {
    this.closed = true;
    await this.client?.end().catch(() => undefined);
  }
}
