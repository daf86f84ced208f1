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
 * One trip at a time: an item that arrives while a trip is on its way waits for it and goes with
 * every other item that arrived meanwhile (at most MAX_TRIP_ITEMS; finishes before claims, so a
 * stack freed by a finish is free for a claim in the same trip). An idle batcher sends at the end
 * of the event loop's turn (setImmediate), gathering the items asked for in it: the runs whose
 * runners ended in the same turn (timers or child-process exits handled in one phase; Node runs
 * each callback's microtasks before the next callback, so a microtask would have sent the first
 * finish alone and made the others wait for it), and a fetched batch of jobs, which a dispatcher
 * hands to its workers in one loop. A trip that the server refused as a whole (an error with a SQLSTATE:
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

export class TripBatcher {
  private queue: Waiting[] = [];
  private busy = false;
  /** Trips sent, items they carried, the largest, and trips retried item by item (tests and the bench read them). */
  readonly stats = { trips: 0, items: 0, largest: 0, retried: 0 };

  constructor(private readonly pool: TripQueryable, private readonly maxItems = MAX_TRIP_ITEMS) {}

  /** The item's answer, once the trip that carried it committed. */
  run<T>(item: TripItem<T>): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      this.queue.push({ item, resolve: resolve as (v: unknown) => void, reject });
      if (this.busy) return;
      this.busy = true;
      // Items asked for in this turn of the event loop go together.
      setImmediate(() => void this.drain());
    });
  }

  private async drain(): Promise<void> {
    try {
      while (this.queue.length > 0) {
        // Finishes first (stable: each kind in arrival order).
        const order = (w: Waiting) => (w.item.kind === "finish" ? 0 : 1);
        const trip = this.queue.splice(0, this.maxItems).sort((a, b) => order(a) - order(b));
        this.stats.trips++;
        this.stats.items += trip.length;
        this.stats.largest = Math.max(this.stats.largest, trip.length);
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
        }
      }
    } finally {
      this.busy = false;
    }
  }
}
