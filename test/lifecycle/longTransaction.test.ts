/**
 * An upgrade of a tenant whose application holds a transaction open for longer than the
 * configured timeout (TENANCY_CUTOVER_TIMEOUT_MS), on live PostgreSQL (harness.ts says what is
 * real and what stands in), through the whole upgrade: change capture cannot start while the
 * transaction is open (a logical slot's consistent point waits for every transaction running on
 * the server), so each attempt of copy.data waits up to the timeout and gives up; the last one
 * fails the workflow. The abort is clean: the long transaction itself is never ended (it commits
 * afterwards), the tenant keeps writing to its cell with LOGIN, no slot or publication is left and
 * no table stays REPLICA IDENTITY FULL, no stack is held, the connection document still names the
 * cell, and the workflow's error names the transaction and what to do. The retry after the
 * transaction committed completes the upgrade with every row, the long transaction's included.
 */
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { slotName } from "../../automation/lifecycle/pg/cdc/slot.ts";
import { requireFleet } from "../../infra/model/fleet.ts";
import { pgTenantIdent } from "../../infra/model/naming.ts";
import { createScenario, loginOf, schemaState, startBench, TENANT_PASSWORD, type Bench, type Scenario } from "./harness.ts";
import { docOf } from "./probes.ts";
import { connect, createApplicationSchema, qi, startWriter, withDb } from "./tenantDb.ts";

let bench: Bench;
beforeAll(async () => {
  bench = await startBench();
});
afterAll(async () => {
  await bench?.stop();
});

const onDb = withDb;

/** What an aborted capture must not leave on the cell: slots, publications, tables switched to REPLICA IDENTITY FULL. */
async function captureLeftovers(s: Scenario): Promise<{ slots: string[]; publications: string[]; identityFull: string[] }> {
  return onDb(s.cell, async (c) => ({
    slots: (await c.query<{ n: string }>("SELECT slot_name AS n FROM pg_replication_slots ORDER BY 1")).rows.map((r) => r.n),
    publications: (await c.query<{ n: string }>("SELECT pubname AS n FROM pg_publication ORDER BY 1")).rows.map((r) => r.n),
    identityFull: (await c.query<{ n: string }>(
      "SELECT c.relname AS n FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = $1 AND c.relreplident = 'f' ORDER BY 1",
      [pgTenantIdent(s.tenant)],
    )).rows.map((r) => r.n),
  }));
}

describe("an upgrade of a tenant whose writer holds a long transaction", () => {
  it("waits for it up to the configured timeout at each attempt, then fails cleanly; the retry after it commits completes", async () => {
    const timeout = 1_500;
    const s = await createScenario(bench, { prefix: "ltx" }, { config: { cutoverTimeoutMs: timeout, maxAttempts: 2 } });
    const ident = pgTenantIdent(s.tenant);
    const q = qi(ident);
    let long: pg.Client | undefined;
    try {
      // 60 customers: the writer deletes among ids 2 to 51, never one of its own rows.
      await createApplicationSchema(s.cell, ident, TENANT_PASSWORD, 60);
      const writer = startWriter(s.cell, ident, TENANT_PASSWORD, 31);
      await writer.waitForCommits(5);
      // The application's long transaction (a batch job, a forgotten BEGIN), open through the upgrade.
      long = await connect(s.cell, { user: ident, password: TENANT_PASSWORD });
      await long.query("BEGIN");
      await long.query(`INSERT INTO ${q}.customers (email, name, mood) VALUES ('long@example.com', 'long', 'ok')`);
      const longPid = (await long.query<{ pid: number }>("SELECT pg_backend_pid() AS pid")).rows[0]!.pid;
      // Negative control: before the upgrade nothing of a capture is on the cell.
      expect(await captureLeftovers(s)).toEqual({ slots: [], publications: [], identityFull: [] });

      const wf = await s.service.requestUpgrade(s.tenant);
      const slot = slotName(wf.id, "prod");
      const expected = new RegExp(
        `^creating replication slot ${slot} waited ${timeout} ms for open transactions to end \\(oldest: pid ${longPid} of ${ident}, open for [^)]+\\); ` +
          "nothing was kept \\(no slot, no publication, replica identities as they were\\)\\. Change capture cannot start while that transaction stays open: " +
          "have it committed or ended \\(SELECT pg_terminate_backend\\(pid\\) on the cell ends it\\), or raise TENANCY_CUTOVER_TIMEOUT_MS; " +
          "the step's next attempt starts the capture again \\(once the workflow has failed: tenantctl retry WORKFLOW_ID, or roll the upgrade or move back\\)$",
      );
      const first = await s.service.engine.run(wf.id);
      expect(first).toMatchObject({ state: "running", step: "copy.data" });
      expect(first.error).toMatch(expected);
      // Between the attempts the tenant writes to its cell, and the attempt kept nothing.
      const before = writer.stats.commits;
      await writer.waitForCommits(before + 3);
      expect(writer.stats.stoppedBy).toBeUndefined();
      expect(await captureLeftovers(s)).toEqual({ slots: [], publications: [], identityFull: [] });

      const last = await s.service.engine.run(wf.id, { force: true });
      expect(last).toMatchObject({ state: "failed", step: "copy.data" });
      expect(last.error).toMatch(expected);
      const record = (await s.service.engine.get(wf.id))!;
      expect(record).toMatchObject({ state: "failed", currentStep: "copy.data", attempts: 2 });
      expect(record.lastError).toBe(last.error);
      expect(s.logs.some((l) => l.level === "error" && l.fields.workflowId === wf.id && l.message.startsWith("workflow failed"))).toBe(true);
      expect(s.logs.some((l) => l.fields.workflowId === wf.id && l.message === "change capture dropped: the upgrade failed")).toBe(true);

      // The abort is clean: the long transaction was never ended, the tenant serves from its cell.
      expect((await long.query<{ n: number }>("SELECT 1 AS n")).rows).toEqual([{ n: 1 }]);
      await writer.waitForCommits(writer.stats.commits + 3);
      expect(writer.stats.stoppedBy).toBeUndefined();
      expect(await loginOf(s.cell, s.tenant)).toBe(true);
      expect(await captureLeftovers(s)).toEqual({ slots: [], publications: [], identityFull: [] });
      expect(s.runner.holds.size).toBe(0);
      expect(docOf(s)).toMatchObject({ port: s.cell.server.port, database: s.cell.database });
      const t = requireFleet({ projectDir: s.root }).tenants.get(s.tenant)!.tenant;
      expect(t.deployment === "dedicated" && t.migration?.phase).toBe("copying");
      await long.query("COMMIT");
      await long.end();
      long = undefined;

      // The retry, the transaction ended: the upgrade completes, with the long transaction's row.
      await s.service.engine.retry(wf.id, { by: "test" });
      const done = await s.service.engine.run(wf.id, { force: true });
      expect(done.error ?? null).toBeNull();
      expect(done).toMatchObject({ state: "waiting", step: "cleanup.wait" });
      await writer.done;
      expect(writer.stats.stoppedBy).toMatch(/terminat|connection error|not permitted to log in/);
      const c = await connect(s.ded, { user: ident, password: TENANT_PASSWORD });
      try {
        const emails = (await c.query<{ email: string }>(`SELECT email FROM ${q}.customers WHERE email = 'long@example.com' OR email LIKE 'w31-%'`)).rows.map((r) => r.email);
        expect(new Set(emails)).toEqual(new Set(["long@example.com", ...writer.stats.inserted]));
        expect(emails).toHaveLength(writer.stats.inserted.length + 1);
      } finally {
        await c.end();
      }
      expect(await schemaState(s.ded, s.tenant)).toBe(await schemaState(s.cell, s.tenant));
      expect(await loginOf(s.cell, s.tenant)).toBe(false);
      expect(docOf(s)).toMatchObject({ port: s.ded.server.port, database: s.ded.database });
      expect((await captureLeftovers(s)).slots).toEqual([]);
    } finally {
      if (long) await long.end().catch(() => undefined);
      await s.close();
    }
  }, 240_000);
});
