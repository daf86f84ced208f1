/**
 * The batcher of run claims and finishes (automation/runs/groupCommit.ts) against a pool double
 * that records each query and answers one result per statement: which items share a query, in
 * which order, with which locks, and what a failed trip does (refused by the server: item by item;
 * a broken connection or an unusable server: every item fails). Live PostgreSQL: runOneTrip.test.ts.
 */
import { describe, expect, it } from "vitest";
import { lockKey } from "../../automation/db/tx.ts";
import { MAX_TRIP_ITEMS, MAX_TRIPS_IN_FLIGHT, MIN_TRIP_ITEMS, TripBatcher } from "../../automation/runs/groupCommit.ts";
import type { TripItem } from "../../automation/runs/oneTrip.ts";

/** An item whose statement names it; its answer is that name read back from its own result. */
function item(name: string, kind: "claim" | "finish", stacks: string[]): TripItem<string> {
  return { kind, stacks, sql: `SELECT '${name}' AS name`, read: (rows) => String(rows[0]?.name) };
}

interface Sent {
  sql: string;
  finish: (err?: Error) => void;
}

/** A pool whose queries wait until the test lets them finish; each answers a row per statement naming it. */
function poolDouble() {
  const sent: Sent[] = [];
  const pool = {
    query(sql: string): Promise<unknown> {
      return new Promise((resolve, reject) => {
        sent.push({
          sql,
          finish: (err) => {
            if (err) return reject(err);
            const statements = sql.split(";\n").map((s) => s.replace(/;$/, ""));
            resolve(statements.map((s) => ({ rows: [{ name: /^SELECT '(.+)' AS name$/.exec(s)?.[1] ?? "lock" }] })));
          },
        });
      });
    },
  };
  return { pool, sent };
}

const tick = () => new Promise((r) => setImmediate(r));
const namesIn = (sql: string) => [...sql.matchAll(/SELECT '(.+?)' AS name/g)].map((m) => m[1]);
const locksIn = (sql: string) => [...sql.matchAll(/pg_advisory_xact_lock\((-?\d+)\)/g)].map((m) => Number(m[1]));
const key = (stack: string) => lockKey(`stack:${stack}`) | 0;

describe("TripBatcher", () => {
  it("sends the items asked for in one tick as one query: each stack's lock once, sorted, then finishes before claims", async () => {
    const { pool, sent } = poolDouble();
    const b = new TripBatcher(pool);
    const answers = Promise.all([
      b.run(item("claim-c", "claim", ["stack-c"])),
      b.run(item("finish-b", "finish", ["stack-b", "stack-a"])),
      b.run(item("claim-a", "claim", ["stack-a"])),
    ]);
    await tick();
    expect(sent).toHaveLength(1);
    expect(locksIn(sent[0]!.sql)).toEqual(["stack-a", "stack-b", "stack-c"].map(key));
    expect(namesIn(sent[0]!.sql)).toEqual(["finish-b", "claim-c", "claim-a"]);
    sent[0]!.finish();
    // Each caller gets its own item's answer, in the order it asked.
    expect(await answers).toEqual(["claim-c", "finish-b", "claim-a"]);
    expect(b.stats).toEqual({ trips: 1, items: 3, largest: 3, retried: 0, mostInFlight: 1 });
  });

  it("sends the items asked for in separate callbacks of one turn of the event loop together (runners ending on timers of the same moment)", async () => {
    const { pool, sent } = poolDouble();
    const b = new TripBatcher(pool);
    // Three timers due at the same moment run in one timers phase, each callback's microtasks before
    // the next callback: the first item must not leave alone.
    const { answers } = await new Promise<{ answers: Promise<unknown[]> }>((resolve) => {
      const asked: Promise<unknown>[] = [];
      for (const n of ["one", "two", "three"]) {
        setTimeout(() => {
          asked.push(b.run(item(n, "finish", [n])));
          if (asked.length === 3) resolve({ answers: Promise.all(asked) });
        }, 1);
      }
    });
    await tick();
    expect(sent.map((t) => namesIn(t.sql))).toEqual([["one", "two", "three"]]);
    sent[0]!.finish();
    expect(await answers).toEqual(["one", "two", "three"]);
  });

  it(`splits a burst across ${MAX_TRIPS_IN_FLIGHT} trips in flight at once, finishes first, each caller getting its own answer`, async () => {
    const { pool, sent } = poolDouble();
    const b = new TripBatcher(pool);
    // A wave's end and start in one turn: 16 finishes and 16 claims, interleaved as they were asked for.
    const names = Array.from({ length: 32 }, (_, i) => `${i % 2 === 0 ? "claim" : "finish"}-${i}`);
    const answers = Promise.all(names.map((n) => b.run(item(n, n.startsWith("finish") ? "finish" : "claim", [`s${n}`]))));
    await tick();
    expect(sent).toHaveLength(MAX_TRIPS_IN_FLIGHT);
    const trips = sent.map((t) => namesIn(t.sql));
    expect(trips.map((t) => t.length)).toEqual([8, 8, 8, 8]);
    // Every finish before every claim, each kind in the order asked.
    expect(trips.flat()).toEqual([...names.filter((n) => n.startsWith("finish")), ...names.filter((n) => n.startsWith("claim"))]);
    // Answers come back as each trip does, in any order.
    for (const t of [...sent].reverse()) t.finish();
    expect(await answers).toEqual(names);
    expect(b.stats).toMatchObject({ trips: 4, items: 32, largest: 8, mostInFlight: MAX_TRIPS_IN_FLIGHT });
  });

  it(`puts at least ${MIN_TRIP_ITEMS} items in a trip of a split burst (a trip is a commit): 10 items go as 4, 4 and 2`, async () => {
    const { pool, sent } = poolDouble();
    const b = new TripBatcher(pool);
    const names = Array.from({ length: 10 }, (_, i) => `c${i}`);
    const answers = Promise.all(names.map((n) => b.run(item(n, "claim", [n]))));
    await tick();
    expect(sent.map((t) => namesIn(t.sql))).toEqual([names.slice(0, 4), names.slice(4, 8), names.slice(8)]);
    for (const t of sent) t.finish();
    expect(await answers).toEqual(names);
  });

  it("sends what arrives during a trip at once while a trip slot is free", async () => {
    const { pool, sent } = poolDouble();
    const b = new TripBatcher(pool);
    const first = b.run(item("one", "claim", ["s1"]));
    await tick();
    const second = b.run(item("two", "finish", ["s2"]));
    await tick();
    expect(sent.map((t) => namesIn(t.sql))).toEqual([["one"], ["two"]]);
    sent[1]!.finish();
    expect(await second).toBe("two");
    sent[0]!.finish();
    expect(await first).toBe("one");
  });

  it("holds what arrives while every trip slot is taken, and sends all of it together when a trip comes back (negative control: nothing leaves early)", async () => {
    const { pool, sent } = poolDouble();
    const b = new TripBatcher(pool, { maxInFlight: 1 });
    const first = b.run(item("one", "claim", ["s1"]));
    await tick();
    expect(sent).toHaveLength(1);
    const later = [b.run(item("two", "claim", ["s2"])), b.run(item("three", "finish", ["s3"]))];
    await tick();
    // Nothing sent while the only trip slot is taken.
    expect(sent).toHaveLength(1);
    sent[0]!.finish();
    expect(await first).toBe("one");
    await tick();
    expect(sent).toHaveLength(2);
    expect(namesIn(sent[1]!.sql)).toEqual(["three", "two"]);
    sent[1]!.finish();
    expect(await Promise.all(later)).toEqual(["two", "three"]);
    expect(b.stats).toMatchObject({ trips: 2, items: 3, largest: 2, mostInFlight: 1 });
  });

  it(`carries at most ${MAX_TRIP_ITEMS} items a trip (the rest go in the next)`, async () => {
    const { pool, sent } = poolDouble();
    const b = new TripBatcher(pool, { maxItems: 2, maxInFlight: 1 });
    const all = Promise.all(["a", "b", "c"].map((n) => b.run(item(n, "claim", [n]))));
    await tick();
    expect(namesIn(sent[0]!.sql)).toEqual(["a", "b"]);
    sent[0]!.finish();
    await tick();
    expect(namesIn(sent[1]!.sql)).toEqual(["c"]);
    sent[1]!.finish();
    expect(await all).toEqual(["a", "b", "c"]);
  });

  it("retries a trip that failed on a deadlock item by item, each in a query of its own", async () => {
    const { pool, sent } = poolDouble();
    const b = new TripBatcher(pool);
    const all = Promise.all([b.run(item("x", "claim", ["sx"])), b.run(item("y", "finish", ["sy"]))]);
    await tick();
    sent[0]!.finish(Object.assign(new Error("deadlock detected"), { code: "40P01" }));
    await tick();
    expect(sent.slice(1).map((s) => namesIn(s.sql))).toEqual([["y"], ["x"]]);
    expect(locksIn(sent[1]!.sql)).toEqual([key("sy")]);
    for (const s of sent.slice(1)) s.finish();
    expect(await all).toEqual(["x", "y"]);
    expect(b.stats.retried).toBe(1);
  });

  it("retries a trip refused for one item's own error item by item: only that item fails", async () => {
    const { pool, sent } = poolDouble();
    const b = new TripBatcher(pool);
    const all = [b.run(item("good", "claim", ["sg"])), b.run(item("bad", "finish", ["sb"]))].map((p) => p.then((v) => v, (e: Error) => e.message));
    await tick();
    // PostgreSQL refuses a text value with a NUL byte (22P05): the whole trip is rolled back.
    const nul = () => Object.assign(new Error("unsupported Unicode escape sequence"), { code: "22P05" });
    sent[0]!.finish(nul());
    await tick();
    expect(sent.slice(1).map((s) => namesIn(s.sql))).toEqual([["bad"], ["good"]]);
    sent[1]!.finish(nul());
    sent[2]!.finish();
    expect(await Promise.all(all)).toEqual(["good", "unsupported Unicode escape sequence"]);
    expect(b.stats.retried).toBe(1);
  });

  it("fails every item of a trip whose connection broke, retrying none: the commit may have happened (negative control of the retry)", async () => {
    const { pool, sent } = poolDouble();
    const b = new TripBatcher(pool);
    const all = [b.run(item("x", "claim", ["sx"])), b.run(item("y", "claim", ["sy"]))].map((p) => p.then(() => "ok", (e: Error) => e.message));
    await tick();
    sent[0]!.finish(new Error("Connection terminated unexpectedly"));
    expect(await Promise.all(all)).toEqual(["Connection terminated unexpectedly", "Connection terminated unexpectedly"]);
    await tick();
    expect(sent).toHaveLength(1);
    expect(b.stats.retried).toBe(0);
  });

  it("fails every item of a trip refused because the server is going away, retrying none (negative control of the retry)", async () => {
    const { pool, sent } = poolDouble();
    const b = new TripBatcher(pool);
    const all = [b.run(item("x", "claim", ["sx"])), b.run(item("y", "claim", ["sy"]))].map((p) => p.then(() => "ok", (e: Error) => e.message));
    await tick();
    sent[0]!.finish(Object.assign(new Error("connection terminated"), { code: "57P01" }));
    expect(await Promise.all(all)).toEqual(["connection terminated", "connection terminated"]);
    await tick();
    expect(sent).toHaveLength(1);
    expect(b.stats.retried).toBe(0);
    // The batcher goes on: the next item is sent.
    const next = b.run(item("z", "claim", ["sz"]));
    await tick();
    sent[1]!.finish();
    expect(await next).toBe("z");
  });
});
