/**
 * 1,000 signed Stripe events (800 distinct, 200 redeliveries) for 60 subscriptions, posted in a
 * shuffled order 16 at a time: the tenant files end at each subscription's newest state, every
 * event is recorded once, and each touched stack gets exactly one run.
 */
import { afterAll, beforeAll, expect, it } from "vitest";
import { parse } from "yaml";
import { fleetUsage } from "../../infra/model/cells.ts";
import { loadFleet, stacksOfTenant } from "../../infra/model/fleet.ts";
import { commandLog, stackState } from "./support/fakePulumi.ts";
import { count, PRICE_TIERS, startHarness, waitFor, type Harness } from "./support/harness.ts";
import { startTestPostgres, type TestPostgres } from "./support/postgres.ts";
import { subscriptionEvent } from "./support/stripe.ts";

let pg: TestPostgres;
let h: Harness;
beforeAll(async () => {
  pg = await startTestPostgres();
  // Run workers start only once billing has settled, so every touched stack has one queued run.
  h = await startHarness({ pg, start: { reconciler: false, runs: false }, deps: { reconcileBatchSize: 100 } });
});
afterAll(async () => {
  // The test starts the reconciler and the run workers itself (not through cp.start), so
  // cp.stop() does not know them: stop them here, or the reconciler's claim connection (held
  // for its lifetime) keeps the pool from closing.
  await h?.cp.reconciler.stop();
  await h?.cp.runWorker.stop();
  await h?.close();
  await pg?.stop();
});

/** Deterministic PRNG (mulberry32) so a failure can be replayed with the printed seed. */
function rng(seed: number) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const SEED = Number(process.env.LOAD_SEED ?? 20261122);
const SUBSCRIPTIONS = 60;
const UNIQUE = 800;
const DUPLICATES = 200;
const POOLED_PRICES = ["price_free", "price_standard_monthly", "price_enterprise"];
const INTERIM_STATUSES = ["active", "trialing", "past_due", "unpaid", "active", "active"];

interface Sub {
  id: string;
  tenant: string;
  region: string;
  env: string;
  events: Record<string, unknown>[];
  latestPrice: string;
}

function plan() {
  const rand = rng(SEED);
  const pick = <T,>(xs: readonly T[]) => xs[Math.floor(rand() * xs.length)]!;
  const base = Math.floor(Date.now() / 1000) - 100_000;
  const subs: Sub[] = [];
  for (let i = 0; i < SUBSCRIPTIONS; i++) {
    const n = String(i).padStart(2, "0");
    const [region, env] = i < 30 ? ["us-east-1", "prod"] : i < 45 ? ["eu-west-1", "prod"] : ["us-east-1", "staging"];
    subs.push({ id: `sub_load_${n}`, tenant: `load-${n}`, region, env, events: [], latestPrice: "" });
  }
  // 800 distinct events: 13 or 14 per subscription, created strictly increasing per subscription;
  // the newest is always paid up (active or trialing) so every subscription ends provisioned.
  for (let k = 0; k < UNIQUE; k++) {
    const s = subs[k % SUBSCRIPTIONS]!;
    const j = s.events.length;
    const last = k + SUBSCRIPTIONS >= UNIQUE;
    const price = pick(POOLED_PRICES);
    const status = last ? pick(["active", "trialing"]) : j === 0 ? "active" : pick(INTERIM_STATUSES);
    const type = j === 0 ? "customer.subscription.created" : "customer.subscription.updated";
    s.events.push(subscriptionEvent(`evt_load_${s.id.slice(-2)}_${String(j).padStart(2, "0")}`, type, base + j * 60, {
      id: s.id,
      status,
      price,
      metadata: { tenant_id: s.tenant, region: s.region, environments: s.env },
    }));
    s.latestPrice = price;
  }
  const distinct = subs.flatMap((s) => s.events);
  const deliveries = [...distinct];
  for (let d = 0; d < DUPLICATES; d++) deliveries.push(pick(distinct));
  for (let i = deliveries.length - 1; i > 0; i--) {
    const j = Math.floor(rand() * (i + 1));
    [deliveries[i], deliveries[j]] = [deliveries[j]!, deliveries[i]!];
  }
  return { subs, deliveries };
}

async function postAll(events: readonly Record<string, unknown>[], concurrency = 16) {
  const statuses: number[] = [];
  let next = 0;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < events.length) {
        const e = events[next++]!;
        statuses.push((await h.post(e)).status);
      }
    }),
  );
  return statuses;
}

it(`applies 1,000 shuffled events with 20% duplicates to the expected tenant files with exactly the needed runs (seed ${SEED})`, async () => {
  const { subs, deliveries } = plan();
  expect(deliveries).toHaveLength(UNIQUE + DUPLICATES);
  // The billing worker joins half-way, so intake and reconciliation also overlap.
  const statuses = await postAll(deliveries.slice(0, deliveries.length / 2));
  await h.cp.reconciler.start();
  statuses.push(...(await postAll(deliveries.slice(deliveries.length / 2))));
  expect(statuses.every((s) => s === 200)).toBe(true);

  expect(await count(h, "SELECT 1 FROM billing_events")).toBe(UNIQUE);
  const metrics = await (await fetch(`${h.metricsUrl}/metrics`)).text();
  expect(metrics).toContain(`tenancy_billing_events_deduplicated_total ${DUPLICATES}`);
  const accepted = await count(h, "SELECT 1 FROM billing_events WHERE outcome = 'accepted'");
  expect(accepted + (await count(h, "SELECT 1 FROM billing_events WHERE outcome = 'stale'"))).toBe(UNIQUE);
  // Exactly one reconcile job per accepted event, none for stale events or redeliveries.
  expect(await count(h, "SELECT 1 FROM pgboss.job WHERE name = 'billing-reconcile' AND data->>'eventId' IS NOT NULL")).toBe(accepted);

  await waitFor("every accepted event to be reconciled", async () => (await count(h, "SELECT 1 FROM billing_events WHERE outcome = 'accepted' AND processed_at IS NULL")) === 0, 110_000, 250);

  // Tenant files: each subscription's newest state.
  const { fleet, problems } = loadFleet({ projectDir: h.repo.dir });
  expect(problems).toEqual([]);
  const expectedStacks = new Set<string>();
  for (const s of subs) {
    const text = h.repo.show("main", `tenants/${s.tenant}.yaml`);
    expect(text, s.tenant).toBeDefined();
    const doc = parse(text!) as Record<string, unknown>;
    expect(doc.tier, s.tenant).toBe(PRICE_TIERS.get(s.latestPrice));
    expect(doc.lifecycle ?? "active", s.tenant).toBe("active");
    expect(doc.billing, s.tenant).toMatchObject({ provider: "stripe", subscriptionId: s.id, priceId: s.latestPrice });
    expect(doc.region).toBe(s.region);
    expect(Object.keys(doc.environments as object)).toEqual([s.env]);
    for (const st of stacksOfTenant(fleet!.tenants.get(s.tenant)!.tenant)) expectedStacks.add(st);
  }
  // Cells opened at the reserve (docs/cells.md): exactly where placing these tenants left an env and
  // region's headroom below the reserve without the new cell, and none elsewhere. A new cell's
  // first run is a touched stack too; no tenant is placed in it while it is opening.
  const opened = [...fleet!.cells.values()].filter((c) => c.config.opening === true);
  for (const u of fleetUsage(fleet!)) {
    const mine = opened.filter((c) => c.env === u.env && c.region === u.region);
    const without = mine.reduce((acc, c) => ({ headroom: acc.headroom - c.capacity, capacity: acc.capacity - c.capacity }), { headroom: u.headroom, capacity: u.capacity });
    const crossed = without.headroom * 100 < without.capacity * u.reservePercent;
    expect(mine.length, `${u.env}/${u.region}`).toBe(crossed ? 1 : 0);
    expect(u.cells.filter((c) => c.opening).every((c) => c.residents.length === 0), `${u.env}/${u.region}`).toBe(true);
  }
  for (const c of opened) expectedStacks.add(c.stack);
  // Every commit cites the Stripe events it applies; none is empty.
  const commits = h.repo.log().filter((c) => c.subject.startsWith("tenants: "));
  expect(commits.length).toBeGreaterThanOrEqual(SUBSCRIPTIONS);
  for (const c of commits) expect(c.body).toMatch(/\nStripe-Event: evt_load_/);

  // Runs: one queued run per touched stack, nothing else.
  const queued = (await h.cp.db.pool.query<{ stack: string; state: string }>("SELECT stack, state FROM runs ORDER BY stack")).rows;
  expect(queued.map((r) => r.stack)).toEqual([...expectedStacks].sort());
  expect(queued.every((r) => r.state === "queued")).toBe(true);

  await h.cp.runWorker.start();
  await waitFor("all runs to finish", async () => (await count(h, "SELECT 1 FROM runs WHERE state IN ('queued', 'running')")) === 0, 60_000, 250);
  const done = (await h.cp.db.pool.query<{ stack: string; state: string }>("SELECT stack, state FROM runs ORDER BY stack")).rows;
  expect(done).toEqual([...expectedStacks].sort().map((stack) => ({ stack, state: "succeeded" })));
  const ups = commandLog(h.stateDir).filter((c) => c.args[0] === "up");
  expect(ups).toHaveLength(expectedStacks.size);
  // Each stack's single update rendered every tenant the files place in it.
  for (const stack of expectedStacks) {
    const tenants = subs.filter((s) => stacksOfTenant(fleet!.tenants.get(s.tenant)!.tenant).includes(stack)).map((s) => s.tenant);
    expect(stackState(h.stateDir, stack)!.updates.at(-1)!.tenants).toEqual(expect.arrayContaining(tenants));
  }

  // Phase 2: ten subscriptions are deleted (with redeliveries and a late, older update each).
  await h.cp.runWorker.stop();
  const deleted = subs.slice(0, 10);
  // The deletions (each delivered twice) arrive in a shuffled order; then each subscription's late
  // update (created after its last update but before its deletion) arrives. Sent after the
  // deletions so that it is stale whatever the reconciler's timing: one sent before would be a
  // legitimate newer state, applied or not depending on when the deletion is reconciled.
  const deletions: Record<string, unknown>[] = [];
  const lates: Record<string, unknown>[] = [];
  for (const s of deleted) {
    const lastCreated = (s.events.at(-1)!.created as number);
    const del = subscriptionEvent(`evt_del_${s.id}`, "customer.subscription.deleted", lastCreated + 60, { id: s.id, status: "canceled", price: s.latestPrice });
    deletions.push(del, del);
    lates.push(subscriptionEvent(`evt_late_${s.id}`, "customer.subscription.updated", lastCreated + 30, { id: s.id, status: "active", price: "price_enterprise" }));
  }
  const rand = rng(SEED + 1);
  deletions.sort(() => rand() - 0.5);
  lates.sort(() => rand() - 0.5);
  expect((await postAll(deletions, 8)).every((s) => s === 200)).toBe(true);
  expect((await postAll(lates, 8)).every((s) => s === 200)).toBe(true);
  expect(await count(h, "SELECT 1 FROM billing_events WHERE id LIKE 'evt_late_%' AND outcome = 'stale'")).toBe(deleted.length);
  await waitFor("offboarding commits", () => deleted.every((s) => h.repo.show("main", `tenants/${s.tenant}.yaml`)?.includes("lifecycle: offboarding")), 30_000, 250);
  for (const s of deleted) {
    const doc = parse(h.repo.show("main", `tenants/${s.tenant}.yaml`)!) as Record<string, unknown>;
    expect(doc.tier).toBe(PRICE_TIERS.get(s.latestPrice));
  }
  const deletedStacks = new Set(deleted.flatMap((s) => stacksOfTenant(fleet!.tenants.get(s.tenant)!.tenant)));
  await waitFor("the offboarding reconciles", async () => (await count(h, "SELECT 1 FROM billing_events WHERE outcome = 'accepted' AND processed_at IS NULL")) === 0, 30_000, 250);
  const queued2 = (await h.cp.db.pool.query<{ stack: string }>("SELECT stack FROM runs WHERE state = 'queued' ORDER BY stack")).rows.map((r) => r.stack);
  expect(queued2).toEqual([...deletedStacks].sort());
  await h.cp.runWorker.start();
  await waitFor("the offboarding runs", async () => (await count(h, "SELECT 1 FROM runs WHERE state IN ('queued', 'running')")) === 0, 60_000, 250);
  const perStack = (await h.cp.db.pool.query<{ stack: string; n: string }>("SELECT stack, count(*) AS n FROM runs GROUP BY stack")).rows;
  for (const { stack, n } of perStack) expect(Number(n), stack).toBe(deletedStacks.has(stack) ? 2 : 1);
}, 150_000);
