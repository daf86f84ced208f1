/**
 * Scheduled drift detection through the control plane with the Pulumi CLI test double (nothing is
 * read from a cloud): every stack of the example fleet gets a `preview --refresh`, never more than
 * the concurrency at once; the verdicts (clean, drifted with what differs, failed) show in the API,
 * tenantctl and the metric; a queued check gives way to an update.
 */
import { rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { bufferIo } from "../../cli/io.ts";
import { main } from "../../cli/main.ts";
import { withTransaction } from "../../automation/db/tx.ts";
import { firstCheckOffsetMs } from "../../automation/drift/scheduler.ts";
import { commandLog } from "./support/fakePulumi.ts";
import { API_KEY, startHarness, waitFor, type Harness } from "./support/harness.ts";
import { startTestPostgres, type TestPostgres } from "./support/postgres.ts";

const DRIFTED = "shared-prod-use1-01";
const BROKEN = "dedicated-delta-health-prod";
const STACKS = [
  "dedicated-acme-prod", "dedicated-delta-health-prod", "dedicated-megacorp-prod", "dedicated-megacorp-staging",
  "platform-eu-west-1", "platform-us-east-1", "shared-prod-euw1-01", "shared-prod-use1-01", "shared-prod-use1-02", "shared-staging-use1-01",
];

let pg: TestPostgres;
let h: Harness;
let maxInFlight = 0;
let sampler: NodeJS.Timeout | undefined;

beforeAll(async () => {
  pg = await startTestPostgres();
  h = await startHarness({
    pg,
    config: { drift: { periodMs: 8_000, concurrency: 2 } },
    fake: { eventDelayMs: 20, drift: { [DRIFTED]: [{ tenant: "startup-alpha", diffs: ["tags", "storageGb"] }] }, failures: { [BROKEN]: "provider error while refreshing (injected)" } },
  });
  sampler = setInterval(() => {
    void h.cp.db.pool
      .query<{ n: string }>("SELECT count(*) AS n FROM runs WHERE operation = 'preview' AND state IN ('queued', 'running')")
      .then((r) => (maxInFlight = Math.max(maxInFlight, Number(r.rows[0]!.n))))
      .catch(() => undefined);
  }, 25);
});
afterAll(async () => {
  clearInterval(sampler);
  await h?.close();
  await pg?.stop();
});

interface Row { stack: string; state: string; previous: string | null; tenants: string[]; error: string | null; resources: { urn: string; op: string; diffs: string[] }[] }
/** The verdicts; a stack being checked again (the period is short here) shows its previous verdict. */
const drift = async (q = "") =>
  ((await h.api("GET", `/api/drift${q}`)).json as unknown as { stacks: Row[] }).stacks.map((r) => ({ ...r, state: r.state === "checking" && r.previous ? r.previous : r.state }));

describe("drift detection", () => {
  it("spreads first checks over one period by a stable hash", () => {
    const offsets = STACKS.map((s) => firstCheckOffsetMs(s, 3_600_000));
    expect(offsets.every((o) => o >= 0 && o < 3_600_000)).toBe(true);
    expect(new Set(offsets).size).toBe(STACKS.length);
    expect(STACKS.map((s) => firstCheckOffsetMs(s, 3_600_000))).toEqual(offsets);
  });

  it("checks every stack with preview --refresh, at most two at once, and reports clean, drifted and failed", async () => {
    const rows = await waitFor("a verdict for every stack", async () => {
      const r = await drift();
      return r.length === STACKS.length && r.every((x) => ["clean", "drifted", "failed"].includes(x.state)) ? r : undefined;
    }, 60_000);
    expect(rows.map((r) => r.stack)).toEqual(STACKS);
    const by = new Map(rows.map((r) => [r.stack, r]));
    expect(by.get(DRIFTED)).toMatchObject({
      state: "drifted",
      tenants: ["freebie-one", "startup-alpha"],
      resources: [{ urn: `urn:pulumi:${DRIFTED}::saas-tenancy::saas-tenancy:test:FakeTenantResource::startup-alpha`, op: "update", diffs: ["storageGb", "tags"] }],
    });
    expect(by.get(BROKEN)!.state).toBe("failed");
    expect(by.get(BROKEN)!.error).toContain("provider error while refreshing (injected)");
    for (const s of STACKS.filter((x) => x !== DRIFTED && x !== BROKEN)) expect(by.get(s)).toMatchObject({ state: "clean", resources: [] });
    expect(maxInFlight).toBeGreaterThan(0);
    expect(maxInFlight).toBeLessThanOrEqual(2);
    const previews = commandLog(h.stateDir).filter((c) => c.args[0] === "preview");
    expect(previews.length).toBeGreaterThanOrEqual(STACKS.length);
    expect(previews.every((c) => c.args.includes("--refresh"))).toBe(true);
    // Nothing was applied: no up ran.
    expect(commandLog(h.stateDir).filter((c) => c.args[0] === "up")).toEqual([]);

    const metrics = await h.cp.metrics.registry.metrics();
    expect(metrics).toContain(`tenancy_stack_drift{stack="${DRIFTED}"} 1`);
    expect(metrics).toContain(`tenancy_stack_drift{stack="${BROKEN}"} -1`);
    expect(metrics).toContain('tenancy_stack_drift{stack="dedicated-acme-prod"} 0');
  }, 90_000);

  it("answers per tenant, in tenantctl too, with exit 1 while anything drifted", async () => {
    expect((await drift("?tenant=startup-alpha")).map((r) => r.stack)).toEqual(["shared-prod-use1-01", "shared-staging-use1-01"]);
    expect((await h.api("GET", "/api/drift?tenant=nobody")).status).toBe(404);
    const saved = { url: process.env.TENANCY_URL, key: process.env.TENANCY_API_KEY };
    process.env.TENANCY_URL = h.baseUrl;
    process.env.TENANCY_API_KEY = API_KEY;
    try {
      const io = bufferIo();
      expect(await main(["drift", "--stack", DRIFTED], io)).toBe(1);
      expect(io.stdout.join("\n")).toMatch(/shared-prod-use1-01\s+(drifted|checking \(was drifted\))\s+.*freebie-one,startup-alpha\s+startup-alpha \(update: storageGb, tags\)/);
      const clean = bufferIo();
      expect(await main(["drift", "--stack", "dedicated-acme-prod"], clean)).toBe(0);
    } finally {
      for (const [k, v] of [["TENANCY_URL", saved.url], ["TENANCY_API_KEY", saved.key]] as const) {
        if (v === undefined) delete process.env[k];
        else process.env[k] = v;
      }
    }
  });

  it("a queued check gives way to an update of its stack and is due again at once", async () => {
    const stack = "shared-prod-use1-02";
    const { preview, up } = await withTransaction(h.cp.db.pool, async (c) => {
      // Hold the stack with a running run so both stay queued.
      await c.query("INSERT INTO runs (stack, operation, options, state, change_ids, reasons, started_at, heartbeat_at, worker) VALUES ($1, 'up', '{}', 'running', '{}', '{test holds the stack}', now(), now() + interval '1 hour', 'test')", [stack]);
      const p = await h.cp.runs.enqueue(c, stack, { operation: "preview", reason: "drift check (test)" });
      await c.query("UPDATE stack_drift SET state = 'checking', previous = 'clean', run_id = $2 WHERE stack = $1", [stack, p.runId]);
      const u = await h.cp.runs.enqueue(c, stack, { reason: "a tenant change (test)" });
      return { preview: p.runId, up: u.runId };
    });
    expect(up).not.toBe(preview);
    const gaveWay = await h.cp.runs.get(preview);
    expect(gaveWay!.state).toBe("failed");
    expect(gaveWay!.error).toBe(`superseded by an update: ${stack} has an up queued; the drift check runs again later`);
    await h.cp.drift!.tick();
    const [row] = await h.cp.drift!.list({ stacks: [stack] });
    expect(row!.state).toBe("clean");
    expect(Date.parse(row!.dueAt)).toBeLessThanOrEqual(Date.now());
    await h.cp.db.pool.query("DELETE FROM runs WHERE stack = $1 AND worker = 'test'", [stack]);
  });

  it("a tick takes the fleet's stacks from the fleet cache: the files are parsed again only when they changed", async () => {
    await h.cp.drift!.tick();
    const loads = h.cp.fleet.loads;
    await h.cp.drift!.tick();
    await h.cp.drift!.tick();
    expect(h.cp.fleet.loads).toBe(loads);
    // Negative control: an entry added to tenants/ (not even a tenant file) makes the next tick load again.
    const extra = join(h.repo.dir, "tenants", "NOTES.txt");
    writeFileSync(extra, "not a tenant\n");
    try {
      await h.cp.drift!.tick();
      expect(h.cp.fleet.loads).toBe(loads + 1);
    } finally {
      rmSync(extra);
    }
  });
});
