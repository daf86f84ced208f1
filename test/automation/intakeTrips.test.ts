/**
 * A Stripe event's durable intake in two round trips (automation/billing/intake.ts) on live
 * PostgreSQL with pg-boss: the queries sent to the server are counted, and what they leave behind
 * is read back. Every outcome (accepted, duplicate, stale, ignored, a delinquent subscription's two
 * jobs) is two queries; a failure anywhere after the event insert, or a job pg-boss silently did
 * not insert, leaves nothing behind, and the pool's connection is usable again afterwards.
 */
import type { Pool } from "pg";
import type { PgBoss } from "pg-boss";
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { recordStripeEvent } from "../../automation/billing/intake.ts";
import { createPool } from "../../automation/db/database.ts";
import { migrate } from "../../automation/db/migrate.ts";
import { createLogger } from "../../automation/log.ts";
import { jobInsertStatement, QUEUES, startBoss } from "../../automation/queue.ts";
import { startTestPostgres, type TestPostgres } from "./support/postgres.ts";
import { subscriptionEvent } from "./support/stripe.ts";
import { countPoolStatements, type PoolStatements } from "../support/poolStatements.ts";

let server: TestPostgres;
let pool: Pool;
let boss: PgBoss;
/** Counts the queries sent through the pool's clients (each one a round trip). */
let sent: PoolStatements;

beforeAll(async () => {
  server = await startTestPostgres();
}, 180_000);
afterAll(async () => {
  await server?.stop();
});
beforeEach(async () => {
  const url = await server.newDatabase();
  pool = createPool(url);
  sent = countPoolStatements(pool);
  await migrate(pool);
  boss = await startBoss(url, { runExpireHours: 3 }, createLogger("silent"));
});
afterEach(async () => {
  await boss?.stop({ graceful: false, close: true });
  await pool?.end();
});

const now = () => Math.floor(Date.now() / 1000);
const GRACE = { graceHours: 72 };

/** The queries `fn` sends (this file's word for them: each is one round trip, often several statements). */
async function counted<T>(fn: () => Promise<T>): Promise<{ value: T; queries: string[] }> {
  const { value, statements } = await sent.counted(fn);
  return { value, queries: statements };
}

async function state() {
  const events = (await pool.query<{ id: string; outcome: string; reason: string | null; job_id: string | null; payload: unknown }>(
    "SELECT id, outcome, reason, job_id, payload FROM billing_events ORDER BY received_at, id",
  )).rows;
  const subs = (await pool.query<{ id: string; status: string; metadata: Record<string, string>; last_event_id: string; delinquent_since: string | null }>(
    "SELECT id, status, metadata, last_event_id, delinquent_since FROM subscriptions ORDER BY id",
  )).rows;
  const jobs = (await pool.query<{ id: string; data: unknown; retry_limit: number; expire_seconds: number; delayed: boolean }>(
    "SELECT id, data, retry_limit, expire_seconds, start_after > now() + interval '1 hour' AS delayed FROM pgboss.job WHERE name = $1 ORDER BY start_after",
    [QUEUES.reconcile],
  )).rows;
  return { events, subs, jobs };
}

/** The table pg-boss inserts reconcile jobs into (its queue's own, or the shared one). */
async function jobTable(): Promise<string> {
  const { rows } = await pool.query<{ table_name: string }>("SELECT table_name FROM pgboss.queue WHERE name = $1", [QUEUES.reconcile]);
  return `pgboss.${rows[0]!.table_name}`;
}

describe("recordStripeEvent: two round trips", () => {
  it("accepts a subscription event in two queries: the event, the subscription and its pg-boss job, committed together", async () => {
    const t = now() - 10;
    const ev = subscriptionEvent("evt_trip_1", "customer.subscription.created", t, { id: "sub_trip_1", status: "active", price: "price_std", metadata: { tenant_id: "trip-one" } });
    const { value, queries: sent } = await counted(() => recordStripeEvent(pool, boss, ev, GRACE));
    expect(value).toEqual({ duplicate: false, eventId: "evt_trip_1", outcome: "accepted", subscriptionId: "sub_trip_1" });
    expect(sent).toHaveLength(2);
    expect(sent[0]!.startsWith("BEGIN;")).toBe(true);
    expect(sent[1]!.trimEnd().endsWith("COMMIT;")).toBe(true);
    const s = await state();
    expect(s.jobs).toHaveLength(1);
    // pg-boss' own insert: the queue's settings (automation/queue.ts ensureQueues) apply to the job.
    expect(s.jobs[0]).toMatchObject({ data: { subscriptionId: "sub_trip_1", eventId: "evt_trip_1" }, retry_limit: 20, expire_seconds: 900, delayed: false });
    expect(s.events).toEqual([{ id: "evt_trip_1", outcome: "accepted", reason: null, job_id: s.jobs[0]!.id, payload: ev }]);
    expect(s.subs).toEqual([{ id: "sub_trip_1", status: "active", metadata: { tenant_id: "trip-one" }, last_event_id: "evt_trip_1", delinquent_since: null }]);
  });

  it("answers a redelivery as a duplicate in two queries and enqueues nothing; concurrent deliveries record it once", async () => {
    const ev = subscriptionEvent("evt_trip_dup", "customer.subscription.created", now() - 10, { id: "sub_trip_dup", status: "active", price: "price_std" });
    const [a, b] = await Promise.all([recordStripeEvent(pool, boss, ev, GRACE), recordStripeEvent(pool, boss, ev, GRACE)]);
    expect([a.duplicate, b.duplicate].sort()).toEqual([false, true]);
    const { value, queries: sent } = await counted(() => recordStripeEvent(pool, boss, ev, GRACE));
    expect(value).toEqual({ duplicate: true, eventId: "evt_trip_dup" });
    expect(sent).toEqual([expect.stringMatching(/^BEGIN;/), "ROLLBACK;"]);
    const s = await state();
    expect(s.events.map((e) => [e.id, e.outcome])).toEqual([["evt_trip_dup", "accepted"]]);
    expect(s.jobs).toHaveLength(1);
  });

  it("records an out-of-order (older) event as stale in two queries: the subscription keeps the newer state, no job", async () => {
    const t = now() - 100;
    await recordStripeEvent(pool, boss, subscriptionEvent("evt_new", "customer.subscription.updated", t, { id: "sub_order", status: "active", price: "price_ent" }), GRACE);
    const older = subscriptionEvent("evt_old", "customer.subscription.updated", t - 50, { id: "sub_order", status: "canceled", price: "price_std" });
    const { value, queries: sent } = await counted(() => recordStripeEvent(pool, boss, older, GRACE));
    expect(value).toMatchObject({ duplicate: false, eventId: "evt_old", outcome: "stale", subscriptionId: "sub_order" });
    expect(sent).toHaveLength(2);
    const s = await state();
    expect(s.events.find((e) => e.id === "evt_old")).toMatchObject({ outcome: "stale", job_id: null, reason: expect.stringContaining("older than the state already applied (event evt_new") });
    expect(s.subs).toEqual([expect.objectContaining({ id: "sub_order", status: "active", last_event_id: "evt_new" })]);
    expect(s.jobs).toHaveLength(1);
  });

  it("records an event type that changes no tenant as ignored in two queries, with no subscription row", async () => {
    const ev = { id: "evt_invoice", object: "event", type: "invoice.paid", created: now(), data: { object: { id: "in_1", object: "invoice" } } };
    const { value, queries: sent } = await counted(() => recordStripeEvent(pool, boss, ev, GRACE));
    expect(value).toMatchObject({ duplicate: false, eventId: "evt_invoice", outcome: "ignored" });
    expect(sent).toEqual([expect.stringMatching(/^BEGIN;/), "COMMIT;"]);
    const s = await state();
    expect(s.events.map((e) => [e.id, e.outcome])).toEqual([["evt_invoice", "ignored"]]);
    expect(s.subs).toEqual([]);
    expect(s.jobs).toEqual([]);
    // Signed but unusable (a tenant id that is no DNS label): recorded as rejected, also two queries.
    const bad = subscriptionEvent("evt_bad", "customer.subscription.created", now(), { id: "sub_bad", status: "active", price: "price_std", metadata: { tenant_id: "Not A Label" } });
    const rejected = await counted(() => recordStripeEvent(pool, boss, bad, GRACE));
    expect(rejected.value).toMatchObject({ duplicate: false, eventId: "evt_bad", outcome: "rejected", reason: expect.stringContaining("is not a tenant id") });
    expect(rejected.queries).toEqual([expect.stringMatching(/^BEGIN;/), "COMMIT;"]);
    expect((await state()).events.map((e) => [e.id, e.outcome])).toEqual([["evt_invoice", "ignored"], ["evt_bad", "rejected"]]);
  });

  it("sends a subscription that became past due its reconcile job and the grace period's delayed one, still in two queries", async () => {
    const t = now() - 60;
    const ev = subscriptionEvent("evt_late", "customer.subscription.updated", t, { id: "sub_late", status: "past_due", price: "price_std" });
    const { value, queries: sent } = await counted(() => recordStripeEvent(pool, boss, ev, GRACE));
    expect(value).toMatchObject({ outcome: "accepted" });
    expect(sent).toHaveLength(2);
    const s = await state();
    expect(s.jobs.map((j) => j.delayed)).toEqual([false, true]);
    expect(s.events[0]!.job_id).toBe(s.jobs[0]!.id);
    expect(s.subs[0]).toMatchObject({ status: "past_due", delinquent_since: String(t) });
  });

  it("keeps quotes, backslashes and non-ASCII text exact (values are quoted literals, not parameters)", async () => {
    const metadata = { tenant_id: "quote-test", note: "it's a \\ back'slash\\' and \"quotes\"; DROP TABLE x; -- ü€ 🚀", empty: "" };
    const ev = subscriptionEvent("evt_quote'\\", "customer.subscription.created", now() - 5, { id: "sub_quote'\\", status: "active", price: "price_'\\", metadata });
    expect(await recordStripeEvent(pool, boss, ev, GRACE)).toMatchObject({ outcome: "accepted", eventId: "evt_quote'\\" });
    const s = await state();
    expect(s.events[0]).toMatchObject({ id: "evt_quote'\\", payload: ev });
    expect(s.subs[0]).toMatchObject({ id: "sub_quote'\\", metadata });
    expect(s.jobs[0]!.data).toEqual({ subscriptionId: "sub_quote'\\", eventId: "evt_quote'\\" });
  });

  it("rolls everything back when a statement after the event insert fails, and the next delivery records it", async () => {
    const table = await jobTable();
    await pool.query(`CREATE FUNCTION refuse_job() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION 'job insert refused by the test'; END $$`);
    await pool.query(`CREATE TRIGGER refuse_job BEFORE INSERT ON ${table} FOR EACH ROW EXECUTE FUNCTION refuse_job()`);
    const ev = subscriptionEvent("evt_fail", "customer.subscription.created", now() - 5, { id: "sub_fail", status: "active", price: "price_std" });
    await expect(recordStripeEvent(pool, boss, ev, GRACE)).rejects.toThrow("job insert refused by the test");
    expect(await state()).toEqual({ events: [], subs: [], jobs: [] });
    // No transaction is left open on a pooled connection.
    expect((await pool.query("SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = current_database() AND state LIKE 'idle in transaction%'")).rows[0]!.n).toBe(0);
    await pool.query(`DROP TRIGGER refuse_job ON ${table}`);
    expect(await recordStripeEvent(pool, boss, ev, GRACE)).toMatchObject({ duplicate: false, outcome: "accepted" });
    expect((await state()).jobs).toHaveLength(1);
  });

  it("refuses to commit an accepted event whose job pg-boss did not insert (negative control: the job insert skipped)", async () => {
    const table = await jobTable();
    // A BEFORE trigger returning NULL drops the row without an error, as a skipped ON CONFLICT would.
    await pool.query(`CREATE FUNCTION skip_job() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RETURN NULL; END $$`);
    await pool.query(`CREATE TRIGGER skip_job BEFORE INSERT ON ${table} FOR EACH ROW EXECUTE FUNCTION skip_job()`);
    const ev = subscriptionEvent("evt_skip", "customer.subscription.created", now() - 5, { id: "sub_skip", status: "active", price: "price_std" });
    await expect(recordStripeEvent(pool, boss, ev, GRACE)).rejects.toThrow("division by zero");
    expect(await state()).toEqual({ events: [], subs: [], jobs: [] });
  });
});

describe("jobInsertStatement", () => {
  it("captures pg-boss' insert with its one JSON parameter inlined, and inserts nothing itself", async () => {
    const job = await jobInsertStatement(boss, QUEUES.reconcile, { subscriptionId: "sub_x", eventId: "evt_'x" });
    expect(job.id).toMatch(/^[0-9a-f-]{36}$/);
    expect(job.sql).not.toMatch(/\$\d/);
    expect(job.sql).toContain(`"evt_''x"`);
    expect((await state()).jobs).toEqual([]);
    await pool.query(job.sql);
    expect((await state()).jobs).toEqual([expect.objectContaining({ id: job.id, data: { subscriptionId: "sub_x", eventId: "evt_'x" } })]);
  });

  it("refuses a send that does not run exactly one statement with one parameter", async () => {
    const twoParams = { send: async (_q: string, _d: object, o: { id: string; db: { executeSql(t: string, v: unknown[]): Promise<unknown> } }) => {
      await o.db.executeSql("INSERT INTO x VALUES ($1, $2)", ["a", "b"]);
      return o.id;
    } } as unknown as PgBoss;
    await expect(jobInsertStatement(twoParams, QUEUES.reconcile, {})).rejects.toThrow("parameters [2]");
    const twoStatements = { send: async (_q: string, _d: object, o: { id: string; db: { executeSql(t: string, v: unknown[]): Promise<unknown> } }) => {
      await o.db.executeSql("SELECT $1", ["a"]);
      await o.db.executeSql("SELECT $1", ["a"]);
      return o.id;
    } } as unknown as PgBoss;
    await expect(jobInsertStatement(twoStatements, QUEUES.reconcile, {})).rejects.toThrow("2 statement(s)");
  });
});
