/**
 * Cells that never fill up, on the billing and git paths (docs/cells.md): a Stripe creation opens a
 * cell at the reserve like POST /api/tenants, a subscription that finds no open cell with room
 * waits for the new cell and is created in it once its first run succeeded, and `opening: true` is
 * removed by the control plane as soon as a cell's first up succeeded, also for a cell file merged
 * by hand and deployed through POST /api/stacks/:stack/runs. Live PostgreSQL, a throwaway git
 * repository, the CLI test double (nothing is deployed). The example's staging cell use1-01
 * (capacity 20) starts with 16 residents, so the 17th tenant crosses the 20% reserve.
 */
import { existsSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadFleet } from "../../infra/model/fleet.ts";
import { planNewCell } from "../../infra/model/cells.ts";
import { startHarness, waitFor, type Harness } from "./support/harness.ts";
import { startTestPostgres, type TestPostgres } from "./support/postgres.ts";
import { makeFixtureRepo } from "./support/repo.ts";
import { subscriptionEvent } from "./support/stripe.ts";

let pg: TestPostgres;
let h: Harness;
let gate: string;
const CELL = "shared-staging-use1-02";
/** A cell opened by hand (`tenantctl new` offline, merged by pull request). */
const MANUAL = "shared-prod-euw1-02";

beforeAll(async () => {
  pg = await startTestPostgres();
  const repo = makeFixtureRepo();
  for (let i = 0; i < 14; i++) {
    const id = `filler-${String(i).padStart(2, "0")}`;
    writeFileSync(join(repo.dir, "tenants", `${id}.yaml`), `id: ${id}\ndisplayName: ${id}\ntier: free\nregion: us-east-1\nenvironments:\n  staging: {}\nplacement:\n  staging: use1-01\n`);
  }
  repo.git("add", "--all");
  repo.git("commit", "--quiet", "-m", "fill staging use1-01 to 16 of 20");
  gate = join(repo.dir, "..", `${repo.dir.split("/").at(-1)}-gate`);
  h = await startHarness({ pg, repo, fake: { holdUntil: { [CELL]: gate }, failures: { [MANUAL]: "first up failed (injected)" } } });
}, 120_000);
afterAll(async () => {
  if (gate && !existsSync(gate)) writeFileSync(gate, ""); // release a held run so shutdown does not wait on it
  await h?.close();
  await pg?.stop();
  if (gate) rmSync(gate, { force: true });
});

const now = () => Math.floor(Date.now() / 1000);
let seq = 0;
/** A Stripe subscription for a free staging tenant `id` in us-east-1; resolves with its reconcile result. */
async function subscribe(id: string): Promise<Record<string, unknown>> {
  const eventId = `evt_cells_${++seq}`;
  const res = await h.post(subscriptionEvent(eventId, "customer.subscription.created", now(), {
    id: `sub_${id}`, status: "active", price: "price_free", metadata: { tenant_id: id, region: "us-east-1", environments: "staging" },
  }));
  expect(res.status).toBe(200);
  return waitFor(`the result of ${eventId}`, async () => {
    const { rows } = await h.cp.db.pool.query<{ result: Record<string, unknown> | null }>("SELECT result FROM billing_events WHERE id = $1", [eventId]);
    return rows[0]?.result ?? undefined;
  }, 30_000);
}
const placementOf = (id: string) => /placement:\n\s+staging: (\S+)/.exec(h.repo.show("main", `tenants/${id}.yaml`) ?? "")?.[1];
const subjects = () => h.repo.log().map((c) => c.subject);
const waitingFor = async (sub: string) => (await h.cp.db.pool.query<{ w: string | null }>("SELECT waiting_for_cell AS w FROM subscriptions WHERE id = $1", [sub])).rows[0]?.w;

describe("Stripe creations and cells", () => {
  it("the subscription that crosses the reserve opens exactly one cell, committed on its own with its first run queued, and is placed in the open cell", async () => {
    expect(await subscribe("bill-a")).toMatchObject({ outcome: "committed", tenantId: "bill-a" });
    expect(placementOf("bill-a")).toBe("use1-01");
    expect(subjects().slice(0, 2)).toEqual([
      "tenants: create bill-a (free, pooled in shared-staging-use1-01) for subscription sub_bill-a",
      `tenants: open cell ${CELL} (10.3.0.0/16, us-east-1a, us-east-1b): staging/us-east-1 would fall below its 20% reserve`,
    ]);
    expect(h.repo.git("show", "--name-only", "--format=", "main~1").trim()).toBe(`stacks/Pulumi.${CELL}.yaml`);
    expect(h.repo.show("main", `stacks/Pulumi.${CELL}.yaml`)).toContain("    opening: true\n");
    const runs = await h.cp.runs.list({ stacks: [CELL] });
    expect(runs.map((r) => r.operation)).toEqual(["up"]);
    // The next one finds the cell opening: no second cell.
    expect(await subscribe("bill-b")).toMatchObject({ outcome: "committed" });
    expect(subjects().filter((s) => s.startsWith("tenants: open cell "))).toHaveLength(1);
  }, 60_000);

  it("a subscription that finds no open cell with room waits for the cell's first run, then is created in it without another event", async () => {
    for (const id of ["bill-c", "bill-d"]) expect(await subscribe(id)).toMatchObject({ outcome: "committed" });
    expect([placementOf("bill-c"), placementOf("bill-d")]).toEqual(["use1-01", "use1-01"]);
    const [cellRun] = await h.cp.runs.list({ stacks: [CELL] });
    const waiting = await subscribe("bill-e");
    expect(waiting).toMatchObject({ outcome: "waiting", tenantId: "bill-e", cell: CELL, cellRun: cellRun!.id });
    expect(waiting.message).toMatch(new RegExp(`^waiting for cell ${CELL} to open \\(its first run ${cellRun!.id} is (queued|running)\\)`));
    expect(await waitingFor("sub_bill-e")).toBe(CELL);
    expect(h.repo.show("main", "tenants/bill-e.yaml")).toBeUndefined();
    // Not a rejection.
    expect(await (await fetch(`${h.metricsUrl}/metrics`)).text()).not.toMatch(/tenancy_billing_events_rejected_total\{stage="change"\} [1-9]/);

    writeFileSync(gate, "");
    await waitFor("bill-e to be created", async () => (placementOf("bill-e") ? true : undefined), 60_000);
    expect(placementOf("bill-e")).toBe("use1-02");
    const run = (await h.cp.runs.list({ stacks: [CELL] })).at(-1)!;
    expect(run).toMatchObject({ id: cellRun!.id, state: "succeeded" });
    expect(subjects().slice(0, 2)).toEqual([
      "tenants: create bill-e (free, pooled in shared-staging-use1-02) for subscription sub_bill-e",
      `tenants: open cell ${CELL} for placement: its first up succeeded (run ${run.id})`,
    ]);
    expect(h.repo.show("main", `stacks/Pulumi.${CELL}.yaml`)).not.toMatch(/opening/);
    await waitFor("the subscription to stop waiting", async () => ((await waitingFor("sub_bill-e")) === null ? true : undefined), 10_000);
  }, 120_000);

  it("a cell merged by hand opens by itself once its first up through the control plane succeeded, not after a failed one", async () => {
    const fleet = loadFleet({ projectDir: h.repo.dir }).fleet!;
    const cell = planNewCell(fleet, "prod", "eu-west-1");
    expect(cell.stack).toBe(MANUAL);
    writeFileSync(join(h.repo.dir, "stacks", `Pulumi.${MANUAL}.yaml`), cell.text);
    h.repo.git("add", "--all");
    h.repo.git("commit", "--quiet", "-m", "open cell euw1-02 (merged pull request)");
    const merged = h.repo.git("rev-parse", "HEAD").trim();

    // The deploy workflow's run of the new stack fails: the cell stays opening.
    const first = await h.api("POST", `/api/stacks/${MANUAL}/runs`);
    expect(first.status).toBe(202);
    const firstId = (first.json.run as { id: string }).id;
    await waitFor("the failed first run", async () => ((await h.cp.runs.get(firstId))?.state === "failed" ? true : undefined), 30_000);
    expect(await h.cp.cellReadiness.tick()).toEqual([]);
    expect(h.repo.git("rev-parse", "HEAD").trim()).toBe(merged);
    expect(h.repo.show("main", `stacks/Pulumi.${MANUAL}.yaml`)).toContain("    opening: true\n");

    // Fixed; the workflow runs it again and it succeeds: a commit of its own removes the marker.
    delete h.fake.options.failures![MANUAL];
    const second = await h.api("POST", `/api/stacks/${MANUAL}/runs`);
    const secondId = (second.json.run as { id: string }).id;
    await waitFor("the marker to be removed", async () => (h.repo.show("main", `stacks/Pulumi.${MANUAL}.yaml`)?.includes("opening") === false ? true : undefined), 30_000);
    expect(h.repo.log()[0]!.subject).toBe(`tenants: open cell ${MANUAL} for placement: its first up succeeded (run ${secondId})`);
    expect(h.repo.git("show", "--name-only", "--format=", "main").trim()).toBe(`stacks/Pulumi.${MANUAL}.yaml`);
    expect(h.repo.git("rev-parse", "main~1").trim()).toBe(merged);
    // Only the marker line and its comment went; no run was queued for it.
    expect(h.repo.git("diff", "--numstat", "main~1", "main").trim()).toBe(`0\t2\tstacks/Pulumi.${MANUAL}.yaml`);
    expect((await h.cp.runs.list({ stacks: [MANUAL] })).map((r) => r.id)).toEqual([secondId, firstId]);
    expect(await h.cp.cellReadiness.tick()).toEqual([]);
  }, 90_000);
});
