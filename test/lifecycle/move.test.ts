/**
 * The cell move (automation/lifecycle/workflows/move.ts) against two live PostgreSQL servers, one
 * holding the cell the tenant leaves (wal_level logical) and one the cell it moves to (harness.ts
 * says what is real and what stands in): an application writing through its connection document
 * and a second writer throughout copy, stream and switch; every committed write arrives; no stack
 * run inside the window; the tenant's role reaches one cell only; every commit passes
 * `validate --base`; cleanup after the retention and the final dump; a crash after every step
 * resumes to the same end state.
 */
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { affectedStacks } from "../../cli/affected/affected.ts";
import type { EngineHooks } from "../../automation/lifecycle/engine/engine.ts";
import { LifecycleRequestError } from "../../automation/lifecycle/service.ts";
import { requireFleet } from "../../infra/model/fleet.ts";
import { pgTenantIdent } from "../../infra/model/naming.ts";
import { routeOf } from "../../infra/model/routes.ts";
import { CELL2, CELL2_STACK, CELL_STACK, createScenario, gitLog, loginOf, schemaState, SimulatedCrash, startBench, TENANT_PASSWORD, type Bench, type Scenario } from "./harness.ts";
import { connect, createApplicationSchema, provisionTenantInDb, qi, startWriter } from "./tenantDb.ts";
import { connectionDocName, slotsOn, startApplication, tenantLogin } from "./probes.ts";
import { execFileSync } from "node:child_process";

let bench: Bench;
beforeAll(async () => {
  bench = await startBench();
});
afterAll(async () => {
  await bench?.stop();
});

/** Runs the workflow to its end, advancing the clock over waits, re-running after simulated crashes. */
async function drive(s: Scenario, id: string): Promise<number> {
  let crashes = 0;
  for (let i = 0; i < 100; i++) {
    try {
      const r = await s.service.engine.run(id, { force: true });
      if (r.state === "succeeded") return crashes;
      if (r.state === "failed" || r.state === "cancelled") throw new Error(`workflow ${r.state}: ${r.error}`);
      if (r.state === "waiting" && r.wakeAt) s.clock.advance(r.wakeAt.getTime() - s.clock.now().getTime());
    } catch (err) {
      if (!(err instanceof SimulatedCrash)) throw err;
      crashes++;
    }
  }
  throw new Error("workflow did not finish");
}

describe("cell move use1-01 -> use1-02", () => {
  it("moves with the application writing: every committed write arrives, the window runs no stack, one cell at a time serves the role, cleanup after retention", async () => {
    let switched: () => Promise<void> = async () => undefined;
    let afterCopy: () => Promise<void> = async () => undefined;
    const hooks: EngineHooks = {
      afterRecord: async (_wf, step) => {
        if (step === "copy.data") await afterCopy();
        if (step === "cutover.switch") await switched();
      },
    };
    // Two writers drain hundreds of transactions in the window; at a load average of 20 on 2 cores
    // that took 5.5 s once, so the drain gets 30 s here (the harness's 10 s failed it once).
    const s = await createScenario(bench, { prefix: "mv" }, { hooks, secondCell: true, config: { cutoverTimeoutMs: 30_000 } });
    const cell2 = s.cell2!;
    try {
      const ident = pgTenantIdent(s.tenant);
      await createApplicationSchema(s.cell, ident, TENANT_PASSWORD, 200);
      // A neighbour in the destination cell, with data the moved tenant must not reach.
      await provisionTenantInDb(cell2, "tenant_neighbour", "neighbour-pw", true);
      const n = await connect(cell2, { user: "tenant_neighbour", password: "neighbour-pw" });
      await n.query("CREATE TABLE tenant_neighbour.secrets (v text)");
      await n.query("INSERT INTO tenant_neighbour.secrets VALUES ('x')");
      await n.end();
      // Before the move, the tenant cannot log in to the destination cell at all (no role there).
      expect(await tenantLogin(cell2, s.tenant)).toMatch(/password authentication failed|does not exist/);

      const docName = connectionDocName(s);
      // The application: writes every 5 ms through the connection document it reads on each (re)connect.
      const app = startApplication(s, "app");
      const events = app.events;
      // A second writer (insert, update, delete across tables) on the cell left, until it is cut off.
      const writer = startWriter(s.cell, ident, TENANT_PASSWORD, 11);
      await writer.waitForCommits(3);
      let commitsAtCopy = 0;
      let loginDuringCopy = "";
      afterCopy = async () => {
        commitsAtCopy = writer.stats.commits;
        await writer.waitForCommits(commitsAtCopy + 15);
        loginDuringCopy = await tenantLogin(cell2, s.tenant);
      };
      const [srcPort, dstPort] = [s.cell.server.port, cell2.server.port];
      switched = async () => {
        for (let i = 0; i < 1000 && !events.some((e) => e.kind === "accepted" && e.port === dstPort); i++) await new Promise((r) => setTimeout(r, 10));
      };

      const wf = await s.service.requestMove(s.tenant, { env: "prod", to: CELL2 });
      expect(wf.params).toEqual({ env: "prod", from: "use1-01", to: "use1-02" });
      const ran = await s.service.engine.run(wf.id);
      expect(ran.error ?? null).toBeNull();
      // The switch records its window and what it drained in it (the writes since the catch-up before it).
      const sw = (await s.service.engine.steps(wf.id)).find((x) => x.step === "cutover.switch")!.output.prod as { windowMs: number; drainedTransactions: number };
      expect(sw.windowMs).toBeGreaterThan(0);
      expect(sw.drainedTransactions).toBeGreaterThan(0);
      expect(ran).toMatchObject({ state: "waiting", step: "cleanup.wait" });
      // Switched: a cancel would leave the old schema and the file's move block behind for good; refused, the move finishes by itself.
      await expect(s.service.engine.cancel(wf.id, "operator")).rejects.toThrow(
        `cancel of move workflow ${wf.id} refused: it has completed cutover.switch, so tenant ${s.tenant} serves from its new place; ` +
          `a cancel now would leave the old copy and the file's record of the move behind for good. It finishes by itself (at cleanup.wait, next attempt ${ran.wakeAt!.toISOString()})`,
      );
      await app.stop();
      await writer.done;
      expect(writer.stats.stoppedBy).toMatch(/terminat|connection error|not permitted to log in/);
      expect(writer.stats.commits).toBeGreaterThanOrEqual(commitsAtCopy + 15);
      // During the copy the destination's role existed without LOGIN.
      expect(loginDuringCopy).toMatch(/is not permitted to log in/);

      // The window as the application saw it: refused on the cell left, then accepted on the cell moved to.
      const firstRefused = events.find((e) => e.kind === "refused")!;
      const firstAccepted = events.find((e) => e.kind === "accepted" && e.port === dstPort)!;
      expect(firstRefused.port).toBe(srcPort);
      expect(firstAccepted.at).toBeGreaterThan(firstRefused.at);
      // Seconds, not minutes (a generous bound for a loaded 2-core machine; the bench measures it).
      expect(firstAccepted.at - firstRefused.at).toBeLessThan(60_000);
      expect(s.runner.calls.filter((c) => c.at > firstRefused.at && c.at < firstAccepted.at)).toEqual([]);
      expect(s.runner.calls.map((c) => `${c.op} ${c.stack}${c.move ? ` from ${c.move.source} (${c.move.phase})` : ""}`)).toEqual([
        `up ${CELL_STACK}`, `up ${CELL2_STACK}`, `move ${CELL2_STACK} from ${CELL_STACK} (move copying)`, `up ${CELL_STACK}`, `up ${CELL2_STACK}`,
      ]);
      expect(s.runner.calls.filter((c) => c.at > firstAccepted.at).map((c) => `${c.op} ${c.stack}`)).toEqual([`up ${CELL_STACK}`, `up ${CELL2_STACK}`]);
      expect(s.runner.owners.get(`identity:${s.tenant}:prod`)).toBe(CELL2_STACK);
      expect(s.runner.dns.get(CELL2_STACK)?.get(s.tenant)).toBe("ingress.shared-prod-use1-02.tenancy.example.com");
      expect(s.runner.dns.get(CELL_STACK)?.has(s.tenant)).toBe(false);

      // Every write committed anywhere is in the cell moved to; the copy equals what the cell left holds.
      const c2 = await connect(cell2, { user: ident, password: TENANT_PASSWORD });
      const q = qi(ident);
      const emails = (await c2.query<{ email: string }>(`SELECT email FROM ${q}.customers WHERE email LIKE 'w11-%'`)).rows.map((r) => r.email);
      expect(new Set(emails)).toEqual(new Set(writer.stats.inserted));
      expect((await c2.query(`SELECT 1 FROM ${q}.customers WHERE id = ANY($1::bigint[])`, [writer.stats.deleted])).rowCount).toBe(0);
      const appRows = Number((await c2.query<{ n: string }>(`SELECT count(*)::text AS n FROM ${q}.events WHERE payload = 'app'`)).rows[0]!.n);
      expect(appRows).toBe(events.filter((e) => e.kind === "accepted").length);
      // The role reaches its own schema only: the neighbour's is refused.
      await expect(c2.query("SELECT * FROM tenant_neighbour.secrets")).rejects.toThrow(/permission denied for schema tenant_neighbour/);
      await c2.end();
      // The schema in the cell left is frozen at the switch: identical to the copy minus what the app wrote after it.
      const c1 = await connect(s.cell);
      await c1.query(`GRANT ${qi(ident)} TO CURRENT_USER`);
      const leftEvents = Number((await c1.query<{ n: string }>(`SELECT count(*)::text AS n FROM ${q}.events WHERE payload = 'app'`)).rows[0]!.n);
      await c1.query(`REVOKE ${qi(ident)} FROM CURRENT_USER`);
      await c1.end();
      expect(leftEvents).toBe(events.filter((e) => e.kind === "accepted" && e.port === srcPort).length);
      // One cell at a time: the cell left refuses the role, the cell moved to admits it.
      expect(await tenantLogin(s.cell, s.tenant)).toMatch(/is not permitted to log in/);
      expect(await tenantLogin(cell2, s.tenant)).toBe("ok");
      expect([await loginOf(s.cell, s.tenant), await loginOf(cell2, s.tenant), await loginOf(s.cell, s.bystander)]).toEqual([false, true, true]);
      expect(await slotsOn(s.cell)).toEqual([]);
      expect(JSON.parse(s.secrets.currentText(docName)!)).toMatchObject({ port: dstPort, database: cell2.database, user: ident });

      const fleet = requireFleet({ projectDir: s.root });
      const t = fleet.tenants.get(s.tenant)!.tenant;
      expect(t.deployment === "pooled" && [t.placement, t.move]).toEqual([
        { prod: "use1-02" },
        { phase: "cleanup", from: { prod: "use1-01" }, workflowId: wf.id, startedAt: "2026-03-02T09:00:00Z", retainUntil: "2026-03-09T09:00:00Z" },
      ]);
      expect(routeOf(fleet, t, "prod")).toMatchObject({ deployment: "pooled", stack: CELL2_STACK });

      // No move of a tenant already moving; the engine refuses any other workflow of it.
      await expect(s.service.requestMove(s.tenant, { env: "prod", to: "use1-01" })).rejects.toThrow(LifecycleRequestError);
      await expect(s.service.requestSuspend(s.tenant)).rejects.toThrow(/already has a workflow under way: move/);

      // Retention: nothing before it ends; then the final dump, the emptied schema, the cell lets go.
      s.clock.advanceDays(6);
      expect(await s.service.engine.runDue()).toEqual([]);
      expect(await schemaState(s.cell, s.tenant)).not.toBe("absent");
      s.clock.advanceDays(1);
      expect(await s.service.engine.runDue()).toEqual([{ id: wf.id, state: "succeeded", step: null }]);
      const backups = await s.service.engine.backups({ workflowId: wf.id });
      expect(backups.map((b) => [b.env, b.kind, (b.detail as { cell: string }).cell])).toEqual([["prod", "schema-dump", "use1-01"]]);
      expect(await schemaState(s.cell, s.tenant)).toBe("absent");
      expect(await loginOf(s.cell, s.tenant)).toBeUndefined();
      expect(await loginOf(s.cell, s.bystander)).toBe(true);
      const done = requireFleet({ projectDir: s.root }).tenants.get(s.tenant)!.tenant;
      expect(done.deployment === "pooled" && [done.placement, done.move, done.environments.prod?.movedAt]).toEqual([{ prod: "use1-02" }, undefined, "2026-03-02T09:00:00Z"]);

      // Every commit of the move passes validate --base against the one before it.
      const subjects = gitLog(s.root).slice(1);
      expect(subjects).toEqual([
        `tenants: move ${s.tenant} (prod) from use1-01 to use1-02: start (workflow ${wf.id})`,
        `tenants: move ${s.tenant} (prod) from use1-01 to use1-02: phase copying`,
        `tenants: move ${s.tenant} (prod) from use1-01 to use1-02: phase cutover`,
        `tenants: move ${s.tenant} (prod) from use1-01 to use1-02: phase cleanup`,
        `tenants: move ${s.tenant} (prod) from use1-01 to use1-02 done: it leaves shared-prod-use1-01`,
      ]);
      const shas = execFileSync("git", ["-C", s.root, "rev-list", "--reverse", "HEAD"], { encoding: "utf8" }).trim().split("\n");
      for (let i = 1; i < shas.length; i++) expect((await affectedStacks(s.root, shas[i - 1]!, shas[i])).placementChanges, subjects[i - 1]).toEqual([]);
      // Negative control: the same placement change without the workflow's move block.
      expect((await affectedStacks(s.root, shas[0]!, shas.at(-1))).placementChanges.map((p) => p.path)).toEqual(["placement.prod"]);
      expect(await s.service.engine.get(wf.id)).toMatchObject({ state: "succeeded", currentStep: null, attempts: 0 });
    } finally {
      await s.close();
    }
  }, 240_000);

  /** The end state of a move with names that differ between scenarios replaced. */
  async function endState(s: Scenario, workflowId: string): Promise<string> {
    const norm = (text: string) =>
      [[s.tenant, "<tenant>"], [pgTenantIdent(s.tenant), "<ident>"], [s.bystander, "<bystander>"], [workflowId, "<wf>"]].reduce((t, [a, b]) => t.split(a!).join(b), text);
    const files: Record<string, string> = {};
    for (const f of readdirSync(join(s.root, "tenants")).sort()) files[norm(f)] = norm(readFileSync(join(s.root, "tenants", f), "utf8"));
    return JSON.stringify({
      files,
      commits: gitLog(s.root).map(norm),
      left: norm(await schemaState(s.cell, s.tenant)),
      moved: norm(await schemaState(s.cell2!, s.tenant)),
      logins: [(await loginOf(s.cell, s.tenant)) ?? "no role", await loginOf(s.cell2!, s.tenant), await loginOf(s.cell, s.bystander)],
      owners: [...s.runner.owners].map(([k, v]) => norm(`${k}=${v}`)).sort(),
      dns: [...s.runner.dns].map(([stack, m]) => [stack, [...m].map(([k, v]) => norm(`${k}=${v}`)).sort()]),
      backups: (await s.service.engine.backups({ workflowId })).map((b) => [b.env, b.kind]),
      slots: await slotsOn(s.cell),
      steps: (await s.service.engine.steps(workflowId)).map((x) => x.step),
    }, null, 1);
  }

  async function crashRun(crashAt: "none" | "afterEffects" | "afterRecord"): Promise<{ state: string; crashes: number }> {
    const crashed = new Set<string>();
    let wrote = false;
    const box: { s?: Scenario } = {};
    const hooks: EngineHooks = {
      afterEffects: (_wf, step) => {
        if (crashAt === "afterEffects" && !crashed.has(step)) {
          crashed.add(step);
          throw new SimulatedCrash(`crash after the effects of ${step}`);
        }
      },
      afterRecord: async (_wf, step) => {
        if (step === "copy.data" && !wrote) {
          // Writes after the bulk copy: they travel by the stream, across the crashes that follow.
          wrote = true;
          const c = await connect(box.s!.cell, { user: pgTenantIdent(box.s!.tenant), password: TENANT_PASSWORD });
          const q = qi(pgTenantIdent(box.s!.tenant));
          await c.query(`INSERT INTO ${q}.customers (email, name, created_at) VALUES ('late@example.com', 'late', '2026-03-02T10:00:00Z')`);
          await c.query(`UPDATE ${q}.customers SET balance = 99.5 WHERE id = 7`);
          await c.query(`DELETE FROM ${q}.customers WHERE id = 8`);
          await c.end();
        }
        if (crashAt === "afterRecord" && !crashed.has(step)) {
          crashed.add(step);
          throw new SimulatedCrash(`crash after the record of ${step}`);
        }
      },
    };
    const s = await createScenario(bench, { prefix: "mvc" }, { hooks, secondCell: true });
    box.s = s;
    try {
      await createApplicationSchema(s.cell, pgTenantIdent(s.tenant), TENANT_PASSWORD, 40);
      const wf = await s.service.requestMove(s.tenant, { env: "prod", to: CELL2 });
      const crashes = await drive(s, wf.id);
      return { state: await endState(s, wf.id), crashes };
    } finally {
      await s.close();
    }
  }

  it("a crash after any step (before or after its record) resumes to the same end state", async () => {
    const [baseline, effects, records] = await Promise.all([crashRun("none"), crashRun("afterEffects"), crashRun("afterRecord")]);
    expect(baseline.crashes).toBe(0);
    const b = JSON.parse(baseline.state) as { left: string; moved: string; logins: unknown[]; steps: string[]; slots: string[] };
    expect(b).toMatchObject({ left: "absent", logins: ["no role", true, true], slots: [] });
    expect(b.moved).not.toBe("absent");
    // The move's 13 steps (cutover.window, waiting for no time here, is the 5th).
    expect(b.steps).toHaveLength(13);
    expect(effects.crashes).toBe(13);
    expect(effects.state).toBe(baseline.state);
    expect(records.crashes).toBe(13);
    expect(records.state).toBe(baseline.state);
  }, 300_000);

  it("refuses a move the fleet does not allow, naming why; nothing is recorded", async () => {
    const s = await createScenario(bench, { prefix: "mvn" }, { secondCell: true });
    try {
      await expect(s.service.requestMove(s.tenant, { env: "prod", to: "use1-01" })).rejects.toThrow(`move of ${s.tenant} to use1-01 refused: tenant ${s.tenant} is already in cell use1-01 in prod`);
      await expect(s.service.requestMove(s.tenant, { env: "prod", to: "euw1-01" })).rejects.toThrow(/cell euw1-01 has no stack file/);
      await expect(s.service.requestMove(s.tenant, { env: "staging", to: CELL2 })).rejects.toThrow(/has no environment staging/);
      expect(await s.service.engine.list(s.tenant)).toEqual([]);
      // Another workflow of the tenant under way: the engine refuses the move.
      await s.service.requestSuspend(s.tenant);
      await expect(s.service.requestMove(s.tenant, { env: "prod", to: CELL2 })).rejects.toThrow(/already has a workflow under way: suspend/);
    } finally {
      await s.close();
    }
  });
});
