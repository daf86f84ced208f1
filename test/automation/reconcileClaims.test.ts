/**
 * Billing reconcile jobs cut off by a crash (automation/billing/claims.ts): a job left `active`
 * by a process that died is retried as soon as a reconciler starts (not after pg-boss' 15-minute
 * expiry) and its event is applied once; a job in the hands of a live process is left alone.
 */
import { randomUUID } from "node:crypto";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { lockKey } from "../../automation/db/tx.ts";
import { QUEUES, type ReconcileJob } from "../../automation/queue.ts";
import { startHarness, waitFor, type Harness } from "./support/harness.ts";
import { startTestPostgres, type TestPostgres } from "./support/postgres.ts";
import { subscriptionEvent } from "./support/stripe.ts";

let pgs: TestPostgres;
beforeAll(async () => {
  pgs = await startTestPostgres();
});
afterAll(async () => {
  await pgs?.stop();
});

const now = () => Math.floor(Date.now() / 1000);

describe("billing reconcile jobs cut off by a crash", () => {
  let h: Harness;
  let live: pg.Client | undefined;
  afterAll(async () => {
    await live?.end();
    await h?.close();
  });

  it("are retried when a reconciler starts and applied once; a live owner's job is not touched", async () => {
    h = await startHarness({ pg: pgs, start: { http: true, reconciler: false, runs: true } });
    const pool = h.cp.db.pool;
    const accept = async (eventId: string, tenant: string) => {
      const res = await h.post(subscriptionEvent(eventId, "customer.subscription.created", now() - 5, {
        id: `sub_${tenant}`, status: "active", price: "price_free", metadata: { tenant_id: tenant },
      }));
      expect(res.json).toMatchObject({ eventId, outcome: "accepted" });
      // The process that died had taken the job: it is `active`, claimed by that process.
      const [job] = await h.cp.boss.fetch<ReconcileJob>(QUEUES.reconcile);
      expect(job?.data.eventId).toBe(eventId);
      return job!.id;
    };
    const orphan = await accept("evt_orphaned", "orphan-co");
    await pool.query("INSERT INTO reconcile_claims (job_id, owner) VALUES ($1, $2)", [orphan, randomUUID()]);
    // Negative control: the owner of this claim is alive (it holds its lock).
    const held = await accept("evt_held", "held-co");
    const liveOwner = randomUUID();
    live = new pg.Client({ connectionString: h.config.databaseUrl });
    await live.connect();
    await live.query("SELECT pg_advisory_lock(7240010, $1)", [lockKey(liveOwner)]);
    await pool.query("INSERT INTO reconcile_claims (job_id, owner) VALUES ($1, $2)", [held, liveOwner]);

    await h.cp.start({ reconciler: true });

    const result = await waitFor("the orphaned event's result", async () => {
      const { rows } = await pool.query<{ result: { outcome: string } | null }>("SELECT result FROM billing_events WHERE id = 'evt_orphaned'");
      return rows[0]?.result ?? undefined;
    });
    expect(result.outcome).toBe("committed");
    expect(h.repo.git("log", "--format=%H", "--grep=Stripe-Event: evt_orphaned", "main").trim().split("\n")).toHaveLength(1);
    const state = async (id: string) => (await pool.query<{ state: string }>("SELECT state FROM pgboss.job WHERE id = $1", [id])).rows[0]?.state;
    // The event's result is written before pg-boss completes the job: wait for the completion.
    await waitFor("the orphaned job to complete", async () => ((await state(orphan)) === "completed" ? true : undefined));
    expect(await state(held)).toBe("active");
    expect((await pool.query("SELECT job_id, owner FROM reconcile_claims")).rows).toEqual([{ job_id: held, owner: liveOwner }]);
    const { rows } = await pool.query("SELECT result FROM billing_events WHERE id = 'evt_held'");
    expect(rows[0]?.result).toBeNull();
  });
});
