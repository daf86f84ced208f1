import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadFleet } from "../../infra/model/fleet.ts";
import { cellStackName } from "../../infra/model/naming.ts";
import { chooseCell } from "../../infra/model/placement.ts";
import { commandLog, stackState } from "./support/fakePulumi.ts";
import { count, startHarness, waitFor, type Harness } from "./support/harness.ts";
import { startTestPostgres, type TestPostgres } from "./support/postgres.ts";
import { sign, subscriptionEvent } from "./support/stripe.ts";

let pg: TestPostgres;
beforeAll(async () => {
  pg = await startTestPostgres();
});
afterAll(async () => {
  await pg?.stop();
});

const now = () => Math.floor(Date.now() / 1000);

function expectedCell(h: Harness, env = "prod", region = "us-east-1"): string {
  const { fleet } = loadFleet({ projectDir: h.repo.dir });
  return cellStackName(env, chooseCell(fleet!, env, region).id);
}

async function rows(h: Harness, sql: string, values: unknown[] = []) {
  return (await h.cp.db.pool.query(sql, values)).rows as Record<string, unknown>[];
}

describe("POST /webhooks/stripe", () => {
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness({ pg });
  });
  afterAll(async () => {
    await h?.close();
  });

  it("turns one signed event into one commit citing it and exactly one run of the right stack", async () => {
    const stack = expectedCell(h);
    const ev = subscriptionEvent("evt_create_zeta", "customer.subscription.created", now() - 10, {
      id: "sub_zeta",
      status: "active",
      price: "price_standard_monthly",
      metadata: { tenant_id: "zeta-labs", tenant_name: "Zeta Labs" },
    });
    const res = await h.post(ev);
    expect(res.status).toBe(200);
    expect(res.json).toMatchObject({ received: true, duplicate: false, eventId: "evt_create_zeta", outcome: "accepted" });

    const run = await waitFor("the run to succeed", async () => {
      const r = await rows(h, "SELECT * FROM runs");
      return r.length === 1 && r[0]!.state === "succeeded" ? r[0] : undefined;
    });
    expect(run.stack).toBe(stack);
    expect(await count(h, "SELECT 1 FROM runs")).toBe(1);

    // The tenant file, committed on main, citing the event.
    const file = h.repo.show("main", "tenants/zeta-labs.yaml")!;
    expect(file).toContain("tier: standard");
    expect(file).toContain(`prod: ${stack.replace("shared-prod-", "")}`);
    expect(file).toContain("subscriptionId: sub_zeta");
    const [head] = h.repo.log();
    expect(head!.subject).toMatch(/^tenants: create zeta-labs \(standard, pooled in shared-prod-use1-0\d\) for subscription sub_zeta$/);
    expect(head!.body).toContain("Stripe-Event: evt_create_zeta");
    expect(run.commit_sha).toBe(head!.sha);

    // The real Automation API drove the CLI: stack select/init, then up with the policy pack.
    const ups = commandLog(h.stateDir).filter((c) => c.args[0] === "up");
    expect(ups).toHaveLength(1);
    expect(ups[0]!.args).toEqual(expect.arrayContaining(["--stack", stack, "--policy-pack", "--event-log"]));
    expect(stackState(h.stateDir, stack)!.updates.at(-1)!.tenants).toContain("zeta-labs");
    // Engine events were persisted as the run's progress.
    const events = await rows(h, "SELECT event FROM run_events WHERE run_id = $1 ORDER BY id", [run.id]);
    expect(events.map((e) => Object.keys(e.event as object).find((k) => k.endsWith("Event")))).toEqual([
      "preludeEvent",
      ...Array.from({ length: stackState(h.stateDir, stack)!.updates.at(-1)!.tenants.length }, () => ["resourcePreEvent", "resOutputsEvent"]).flat(),
      "summaryEvent",
      "cancelEvent",
    ]);
    const recorded = await rows(h, "SELECT outcome, result FROM billing_events WHERE id = 'evt_create_zeta'");
    expect(recorded[0]).toMatchObject({ outcome: "accepted", result: { outcome: "committed", tenantId: "zeta-labs", commit: head!.sha } });
  });

  it("records an event posted twice concurrently once and enqueues its work once", async () => {
    const ev = subscriptionEvent("evt_twice", "customer.subscription.created", now() - 5, {
      id: "sub_twice",
      status: "active",
      price: "price_free",
      metadata: { tenant_id: "twice-co" },
    });
    const body = JSON.stringify(ev);
    const results = await Promise.all(Array.from({ length: 8 }, () => h.post(undefined, { body })));
    expect(results.map((r) => r.status)).toEqual(Array(8).fill(200));
    expect(results.filter((r) => r.json.duplicate === false)).toHaveLength(1);
    expect(results.filter((r) => r.json.duplicate === true)).toHaveLength(7);
    expect(await count(h, "SELECT 1 FROM billing_events WHERE id = 'evt_twice'")).toBe(1);
    expect(await count(h, "SELECT 1 FROM pgboss.job WHERE name = 'billing-reconcile' AND data->>'eventId' = 'evt_twice'")).toBe(1);
    await waitFor("the tenant commit", () => h.repo.show("main", "tenants/twice-co.yaml"));
    await waitFor("its run", async () => (await count(h, "SELECT 1 FROM runs WHERE 'create twice-co' = ANY(SELECT left(r, 15) FROM unnest(reasons) r) AND state = 'succeeded'")) === 1);
    expect(h.repo.log().filter((c) => c.body.includes("Stripe-Event: evt_twice"))).toHaveLength(1);
  });

  it("rejects forged, stale and re-serialized signatures with 400 and leaves no trace", async () => {
    const before = {
      events: await count(h, "SELECT 1 FROM billing_events"),
      jobs: await count(h, "SELECT 1 FROM pgboss.job"),
      subs: await count(h, "SELECT 1 FROM subscriptions"),
      commits: h.repo.log().length,
    };
    const ev = subscriptionEvent("evt_forged", "customer.subscription.created", now(), {
      id: "sub_forged",
      status: "active",
      price: "price_enterprise",
      metadata: { tenant_id: "forged-inc" },
    });
    const body = JSON.stringify(ev);
    const cases = [
      { name: "wrong secret", signature: sign(body, { secret: "whsec_attacker" }), body },
      { name: "older than 300 s", signature: sign(body, { timestamp: now() - 301 }), body },
      { name: "re-serialized body", signature: sign(body), body: JSON.stringify(ev, null, 2) },
      { name: "body changed after signing", signature: sign(body), body: body.replace("price_enterprise", "price_free") },
      { name: "garbage header", signature: "t=1,v1=deadbeef", body },
      { name: "no header", signature: "", body },
    ];
    for (const c of cases) {
      const res = await h.post(undefined, { signature: c.signature, body: c.body });
      expect(res.status, c.name).toBe(400);
      expect(res.json, c.name).toEqual({ error: { message: expect.stringMatching(/Stripe-Signature|signature/) } });
      expect(JSON.stringify(res.json)).not.toMatch(/at .*\.(ts|js):\d+/);
    }
    expect(await count(h, "SELECT 1 FROM billing_events")).toBe(before.events);
    expect(await count(h, "SELECT 1 FROM pgboss.job")).toBe(before.jobs);
    expect(await count(h, "SELECT 1 FROM subscriptions")).toBe(before.subs);
    expect(h.repo.log().length).toBe(before.commits);
    const metrics = await (await fetch(`${h.metricsUrl}/metrics`)).text();
    expect(metrics).toMatch(/tenancy_billing_events_rejected_total\{stage="signature"\} 6/);
  });

  it("applies events per subscription by created: a stale event changes nothing, a deleted subscription is never re-provisioned", async () => {
    const sub = { id: "sub_order", price: "price_free", metadata: { tenant_id: "order-co" } };
    const t0 = now() - 1000;
    // Arrival order: updated (t0+20, enterprise), created (t0, free: stale), deleted (t0+30), updated (t0+25: stale).
    const arrivals = [
      subscriptionEvent("evt_o2", "customer.subscription.updated", t0 + 20, { ...sub, status: "active", price: "price_enterprise" }),
      subscriptionEvent("evt_o1", "customer.subscription.created", t0, { ...sub, status: "active" }),
    ];
    for (const e of arrivals) expect((await h.post(e)).status).toBe(200);
    await waitFor("order-co created", () => h.repo.show("main", "tenants/order-co.yaml"));
    const created = h.repo.show("main", "tenants/order-co.yaml")!;
    expect(created).toContain("tier: enterprise");
    expect((await rows(h, "SELECT outcome, reason FROM billing_events WHERE id = 'evt_o1'"))[0]).toMatchObject({ outcome: "stale", reason: expect.stringContaining("older than the state already applied (event evt_o2") });

    expect((await h.post(subscriptionEvent("evt_o4", "customer.subscription.deleted", t0 + 30, { ...sub, status: "canceled", price: "price_enterprise" }))).status).toBe(200);
    await waitFor("order-co offboarding", () => h.repo.show("main", "tenants/order-co.yaml")?.includes("lifecycle: offboarding"));
    const late = [
      subscriptionEvent("evt_o3", "customer.subscription.updated", t0 + 25, { ...sub, status: "active", price: "price_standard_monthly" }),
      // Even an event that claims to be newer cannot bring a deleted subscription back.
      subscriptionEvent("evt_o5", "customer.subscription.updated", t0 + 40, { ...sub, status: "active", price: "price_standard_monthly" }),
    ];
    for (const e of late) expect((await h.post(e)).json).toMatchObject({ outcome: "stale" });
    const final = h.repo.show("main", "tenants/order-co.yaml")!;
    expect(final).toContain("lifecycle: offboarding");
    expect(final).toContain("tier: enterprise");
    expect(final).toContain(`requestedAt: ${new Date((t0 + 30) * 1000).toISOString()}`);
    expect(await count(h, "SELECT 1 FROM pgboss.job WHERE name = 'billing-reconcile' AND data->>'eventId' IN ('evt_o1', 'evt_o3', 'evt_o5')")).toBe(0);
  });

  it("records and ignores event types that do not change tenants, and deduplicates them too", async () => {
    const ev = { id: "evt_invoice", object: "event", type: "invoice.paid", created: now(), data: { object: { id: "in_1", object: "invoice" } } };
    expect((await h.post(ev)).json).toMatchObject({ outcome: "ignored", duplicate: false });
    expect((await h.post(ev)).json).toMatchObject({ duplicate: true });
  });
});

describe("grace period", () => {
  it("suspends a tenant only after it stayed unpaid beyond the grace period, and resumes it when paid", async () => {
    const graceSeconds = 3;
    const h = await startHarness({ pg, config: { unpaidGraceHours: graceSeconds / 3600 } });
    try {
      const sub = { id: "sub_grace", price: "price_standard_monthly", metadata: { tenant_id: "grace-co" } };
      const t = now();
      await h.post(subscriptionEvent("evt_g1", "customer.subscription.created", t - 60, { ...sub, status: "active" }));
      await waitFor("grace-co created", () => h.repo.show("main", "tenants/grace-co.yaml"));
      // Past due from the event's time t: the suspension is due at t + grace, never before (a loaded
      // machine may only make it later, so the check is on the commit's time, not on a sample).
      await h.post(subscriptionEvent("evt_g2", "customer.subscription.updated", t, { ...sub, status: "past_due" }));
      await waitFor("suspension after the grace period", () => h.repo.show("main", "tenants/grace-co.yaml")?.includes("lifecycle: suspended"), 20_000);
      expect(h.repo.log()[0]!.subject).toMatch(/grace-co: suspend: subscription sub_grace past_due since/);
      expect(Number(h.repo.git("log", "-1", "--format=%ct", "main").trim())).toBeGreaterThanOrEqual(t + graceSeconds);
      await h.post(subscriptionEvent("evt_g3", "customer.subscription.updated", t + 5, { ...sub, status: "active" }));
      await waitFor("resumption", () => h.repo.show("main", "tenants/grace-co.yaml")?.includes("lifecycle: active"));
    } finally {
      await h.close();
    }
  });
});
