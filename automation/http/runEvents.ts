/**
 * Fan-out of run notifications to server-sent-event streams. One PostgreSQL connection LISTENs
 * on the run channels; workers in any process NOTIFY after persisting engine events or changing
 * a run's state, and every stream of that run re-reads what it has not sent yet. Streams of the
 * whole queue (GET /api/runs/events) hear every state change, of any run.
 *
 * Listeners are kept in sets, not on an EventEmitter: there is no per-emitter listener limit to
 * exceed (no MaxListenersExceededWarning however many streams are open); their number is bounded
 * by the streams StreamLimits lets open, and each stream removes its own on disconnect.
 */
import pg from "pg";
import type { Logger } from "../log.ts";
import { RUN_EVENTS_CHANNEL, RUN_STATE_CHANNEL } from "../runs/store.ts";

type Listener = () => void;
/** A run changed state (its id), or, after the notification connection was lost, anything may have (undefined). */
type StateListener = (runId: string | undefined) => void;

export class RunEventHub {
  private client?: pg.Client;
  private listeners = new Map<string, Set<Listener>>();
  private stateListeners = new Set<StateListener>();
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
      if (msg.channel === RUN_STATE_CHANNEL) for (const l of this.stateListeners) l(msg.payload);
    });
    await client.connect();
    await client.query(`LISTEN ${RUN_EVENTS_CHANNEL}`);
    await client.query(`LISTEN ${RUN_STATE_CHANNEL}`);
    this.client = client;
    // Anything missed while (re)connecting: wake every stream.
    for (const set of this.listeners.values()) for (const l of set) l();
    for (const l of this.stateListeners) l(undefined);
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

  /** Every run's state changes (the queue's streams); the result removes the listener. */
  subscribeStates(listener: StateListener): () => void {
    const mine: StateListener = (id) => listener(id);
    this.stateListeners.add(mine);
    return () => {
      this.stateListeners.delete(mine);
    };
  }

  /** Listeners registered now (run streams and queue streams): what a closed stream must have given back. */
  get listenerCount(): number {
    let n = this.stateListeners.size;
    for (const set of this.listeners.values()) n += set.size;
    return n;
  }

  async stop(): Promise<void> {
    this.closed = true;
    await this.client?.end().catch(() => undefined);
  }
}
