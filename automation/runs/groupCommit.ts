/**
 * Group commit of run claims and finishes by the control plane: the claims and finishes a process
 * makes at the same moment share one query, one transaction, one commit (oneTrip.ts runTrip).
 *
 * Why: each claim and finish tells the run's listeners (`pg_notify` in its transaction, so a
 * listener never misses a committed change). PostgreSQL serializes the commits of notifying
 * transactions: PreCommit_Notify takes a heavyweight lock on "database 0" and holds it until after
 * the commit record is flushed (src/backend/commands/async.c, PreCommit_Notify, "Serialize writers
 * by acquiring a special lock that we hold till after commit";
 * https://github.com/postgres/postgres/blob/REL_17_STABLE/src/backend/commands/async.c), so 32
 * workers' claims did not share WAL flushes: each waited for the flushes of the claims before it
 * (docs/control-plane.md, "Per-run overhead", has the measurement). Batched, they wait for one.
 *
 * A burst is split across a few trips in flight at once (at most MAX_TRIPS_IN_FLIGHT, each of at
 * least MIN_TRIP_ITEMS items when that many wait, at most MAX_TRIP_ITEMS): the server works on
 * them in parallel backends, on every core, and the runs of the first trip start (their overlays
 * are made on the event loop) while the later trips are still on the server. One trip carrying a
 * wave's 32 claims kept every one of them waiting for all 32 (docs/control-plane.md, "Per-run
 * overhead", has the measurement); the notifying commits still serialize on the notify lock, a
 * few flushes instead of one. Items that arrive while every trip slot is taken wait, and go with
 * everything else that arrived meanwhile when a trip comes back. Finishes go before claims (the
 * queue is ordered before it is split), so a stack freed by a finish is free for a claim in the
 * same or a later trip; a claim sent beside the finish of its own stack is still decided right by
 * the stacks' advisory locks (it waits for the finish, or takes its transactional path). An idle
 * batcher sends at the end of the event loop's turn (setImmediate), gathering the items asked for
 * in it: the runs whose runners ended in the same turn (timers or child-process exits handled in
 * one phase; Node runs each callback's microtasks before the next callback, so a microtask would
 * have sent the first finish alone and made the others wait for it), and a fetched batch of jobs,
 * which a dispatcher hands to its workers in one loop.
 *
 * A trip that the server refused as a whole (an error with a SQLSTATE:
 * the transaction was rolled back, nothing of it committed) is retried item by item, each in a trip
 * of its own, so what one item does never depends on another's success: a deadlock with another
 * transaction's stack locks (class 40) or a lock not available (55P03), and as much one item's
 * own error (a finish whose output PostgreSQL cannot store, class 22), which then fails that item
 * alone instead of every claim and finish that shared its trip. Not retried, failing every item of
 * the trip: an error without a SQLSTATE (the connection broke: whether the commit happened is not
 * known, so nothing is sent twice) and the classes that say the server or the connection is unusable
 * (08 connection, 53 resources, 57 operator intervention, 58 system, XX internal), where each item
 * alone would fail the same way.
 */
import { runTrip, type TripItem, type TripQueryable } from "./oneTrip.ts";

/** The most items in one trip (a claim's statement is about 2.5 kB of SQL). */
export const MAX_TRIP_ITEMS = 64;

/** Trips on their way at once (connections of the pool they hold: the control plane's pool has 10). */
export const MAX_TRIPS_IN_FLIGHT = 4;

/** The fewest items a trip of a split burst carries: each trip is a commit, and a commit a WAL flush. */
export const MIN_TRIP_ITEMS = 4;

interface Waiting {
  item: TripItem<unknown>;
  resolve: (v: unknown) => void;
  reject: (err: unknown) => void;
}

/** SQLSTATE classes after which trying the items one by one would only fail each the same way. */
const UNUSABLE_CLASSES = new Set(["08", "53", "57", "58", "XX"]);

/** Errors after which the trip's items are tried one by one: the server rolled the trip back. */
function separable(err: unknown): boolean {
  const code = (err as { code?: unknown }).code;
  return typeof code === "string" && /^[0-9A-Z]{5}$/.test(code) && !UNUSABLE_CLASSES.has(code.slice(0, 2));
}

export interface TripBatcherOptions {
  /** Default MAX_TRIP_ITEMS. */
  maxItems?: number;
  /** Default MAX_TRIPS_IN_FLIGHT. */
  maxInFlight?: number;
  /** Default MIN_TRIP_ITEMS. */
  minItems?: number;
}

export class TripBatcher {
  private queue: Waiting[] = [];
  /** A drain is due at the end of this turn of the event loop. */
  private scheduled = false;
  private inFlight = 0;
  private readonly maxItems: number;
  private readonly maxInFlight: number;
  private readonly minItems: number;
  /**
   * Trips sent, items they carried, the largest, trips retried item by item, and the most trips on
   * their way at once (tests and the bench read them).
   */
  readonly stats = { trips: 0, items: 0, largest: 0, retried: 0, mostInFlight: 0 };

  constructor(private readonly pool: TripQueryable, opts: TripBatcherOptions = {}) {
    this.maxItems = opts.maxItems ?? MAX_TRIP_ITEMS;
    this.maxInFlight = opts.maxInFlight ?? MAX_TRIPS_IN_FLIGHT;
    this.minItems = opts.minItems ?? MIN_TRIP_ITEMS;
  }

  /** The item's answer, once the trip that carried it committed. */
  run<T>(item: TripItem<T>): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      this.queue.push({ item, resolve: resolve as (v: unknown) => void, reject });
      // With every trip slot taken, the first trip to come back sends it (send() drains after each trip).
      if (this.scheduled || this.inFlight >= this.maxInFlight) return;
      this.scheduled = true;
      // Items asked for in this turn of the event loop go together.
      setImmediate(() => {
        this.scheduled = false;
        this.drain();
      });
    });
  }

  /** Sends what waits, split across the free trip slots. */
  private drain(): void {
    if (this.queue.length === 0 || this.inFlight >= this.maxInFlight) return;
    // Finishes first (stable: each kind in arrival order), before the queue is split.
    const order = (w: Waiting) => (w.item.kind === "finish" ? 0 : 1);
    this.queue.sort((a, b) => order(a) - order(b));
    while (this.queue.length > 0 && this.inFlight < this.maxInFlight) {
      const share = Math.ceil(this.queue.length / (this.maxInFlight - this.inFlight));
      const trip = this.queue.splice(0, Math.min(this.maxItems, Math.max(this.minItems, share)));
      this.stats.trips++;
      this.stats.items += trip.length;
      this.stats.largest = Math.max(this.stats.largest, trip.length);
      this.inFlight++;
      this.stats.mostInFlight = Math.max(this.stats.mostInFlight, this.inFlight);
      void this.send(trip);
    }
  }

  /** One trip, then what waited meanwhile; never rejects (each item's caller gets its answer or its error). */
  private async send(trip: Waiting[]): Promise<void> {
    try {
      const answers = await runTrip(this.pool, trip.map((w) => w.item));
      trip.forEach((w, i) => w.resolve(answers[i]));
    } catch (err) {
      if (trip.length > 1 && separable(err)) {
        this.stats.retried++;
        await Promise.all(trip.map((w) => runTrip(this.pool, [w.item]).then((a) => w.resolve(a[0]), w.reject)));
      } else {
        for (const w of trip) w.reject(err);
      }
    } finally {
      this.inFlight--;
      this.drain();
    }
  }
}
