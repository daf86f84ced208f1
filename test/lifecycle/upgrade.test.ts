/**
 * The pooled -> dedicated upgrade against two live PostgreSQL servers (see harness.ts for what
 * is real and what stands in): a concurrent writer through copy and cutover, retention and
 * cleanup, crash-and-resume at every step ending in the same state, rollback before cutover, and
 * no rollback after it.
 */
import { execFileSync } from "node:child_process";
import { createReadStream, existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { createGunzip, gunzipSync } from "node:zlib";
import { createHash } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { DirectoryBucketStore } from "../../automation/lifecycle/adapters/directoryBucket.ts";
import type { EngineHooks } from "../../automation/lifecycle/engine/engine.ts";
import { restoreDump } from "../../automation/lifecycle/pg/copy.ts";
import { readMarkers } from "../../automation/lifecycle/pg/marker.ts";
import { prepareSession } from "../../automation/lifecycle/pg/sql.ts";
import { LifecycleRequestError } from "../../automation/lifecycle/service.ts";
import { loadFleet, requireFleet } from "../../infra/model/fleet.ts";
import { pgTenantIdent } from "../../infra/model/naming.ts";
import { routeOf } from "../../infra/model/routes.ts";
import { CELL_STACK, createScenario, gitLog, loginOf, schemaState, SimulatedCrash, startBench, TENANT_PASSWORD, type Bench, type Scenario } from "./harness.ts";
import { connect, createApplicationSchema, qi, startWriter } from "./tenantDb.ts";
import { connectionDocName, startApplication } from "./probes.ts";

let bench: Bench;
beforeAll(async () => {
  bench = await startBench();
});
afterAll(async () => {
  await bench?.stop();
});

function tenantFile(s: Scenario, id = s.tenant): string {
  return readFileSync(join(s.root, "tenants", `${id}.yaml`), "utf8");
}

/** Runs the workflow to its end, advancing the clock over waits, re-running after simulated crashes. */
async function drive(s: Scenario, id: string, opts: { maxLoops?: number } = {}): Promise<{ crashes: number; waits: string[] }> {
  let crashes = 0;
  const waits: string[] = [];
  for (let i = 0; i < (opts.maxLoops ?? 100); i++) {
    try {
      const r = await s.service.engine.run(id, { force: true });
      if (r.state === "succeeded" || r.state === "failed" || r.state === "cancelled") {
        if (r.state !== "succeeded") throw new Error(`workflow ${r.state}: ${r.error}`);
        return { crashes, waits };
      }
      if (r.state === "waiting" && r.wakeAt) {
        waits.push(r.step ?? "");
        s.clock.advance(r.wakeAt.getTime() - s.clock.now().getTime());
      }
    } catch (err) {
      if (!(err instanceof SimulatedCrash)) throw err;
      crashes++;
    }
  }
  throw new Error("workflow did not finish");
}

/** Deterministic writes by the tenant's application during the copy phase (after the bulk copy). */
async function applicationWritesDuringCopy(s: Scenario): Promise<void> {
  const c = await connect(s.cell, { user: pgTenantIdent(s.tenant), password: TENANT_PASSWORD });
  const q = qi(pgTenantIdent(s.tenant));
  try {
    await c.query(`INSERT INTO ${q}.customers (email, name, created_at) VALUES ('late@example.com', 'late', '2026-03-02T10:00:00Z')`);
    await c.query(`UPDATE ${q}.customers SET balance = 99.5 WHERE id = 7`);
    await c.query(`DELETE FROM ${q}.customers WHERE id = 8`);
    await c.query(`INSERT INTO ${q}.orders (customer_id, amount, note) VALUES (7, 12.5, 'late order')`);
    await c.query(`INSERT INTO ${q}.events VALUES ('late', '2026-03-02T10:00:00Z', NULL)`);
  } finally {
    await c.end();
  }
}

describe("upgrade pooled -> dedicated", () => {
  // Two servers, a live writer, a retention dump and its restore: past the default 60 s on a loaded 2-core machine.
  it("copies with the application writing, cuts over without losing a committed write, and cleans up after retention", async () => {
    let afterCopy: () => Promise<void> = async () => undefined;
    const hooks: EngineHooks = { afterRecord: async (_wf, step) => void (step === "copy.data" && (await afterCopy())) };
    const s = await createScenario(bench, { prefix: "live" }, { hooks });
    try {
      await createApplicationSchema(s.cell, pgTenantIdent(s.tenant), TENANT_PASSWORD, 300);
      const original = tenantFile(s);
      const writer = startWriter(s.cell, pgTenantIdent(s.tenant), TENANT_PASSWORD, 7);
      await writer.waitForCommits(3);
      let commitsAtCopy = 0;
      // The application keeps writing after the bulk copy: these rows are the delta.
      afterCopy = async () => {
        commitsAtCopy = writer.stats.commits;
        await writer.waitForCommits(commitsAtCopy + 15);
      };
      const wf = await s.service.requestUpgrade(s.tenant);
      const first = await s.service.engine.run(wf.id);

      // Parked at the retention wait, cut over.
      expect(first).toMatchObject({ state: "waiting", step: "cleanup.wait" });
      expect(first.wakeAt?.toISOString()).toBe("2026-03-09T09:00:00.000Z");
      await writer.done;
      expect(writer.stats.stoppedBy).toMatch(/terminat|connection error|not permitted to log in/);
      expect(writer.stats.commits).toBeGreaterThanOrEqual(commitsAtCopy + 15);

      const fleet = requireFleet({ projectDir: s.root });
      const t = fleet.tenants.get(s.tenant)!.tenant;
      expect(t.deployment).toBe("dedicated");
      expect(t.tier).toBe("dedicated");
      expect(t.deployment === "dedicated" && t.migration).toEqual({
        phase: "cleanup", from: { prod: "use1-01" }, fromTier: "standard", startedAt: "2026-03-02T09:00:00Z", retainUntil: "2026-03-09T09:00:00Z",
      });
      expect(t.deployment === "dedicated" && t.dedicated).toEqual({ prod: { cidr: "10.64.0.0/16" } });
      // No peering: the copy reaches the dedicated database from the region's runner over the
      // Transit Gateway (the dedicated database admits the runner subnets; test/infra/dedicated.test.ts).
      expect(t.features.vpcPeering).toBe(false);
      expect(tenantFile(s)).toContain("# A comment a person wrote: edits keep it.");
      expect(existsSync(join(s.root, "stacks", `Pulumi.dedicated-${s.tenant}-prod.yaml`))).toBe(true);
      expect(routeOf(fleet, t, "prod")).toMatchObject({ deployment: "dedicated", stack: `dedicated-${s.tenant}-prod` });
      expect(gitLog(s.root).slice(1)).toEqual([
        `tenants: upgrade ${s.tenant} to dedicated: provision dedicated-${s.tenant}-prod`,
        `tenants: upgrade ${s.tenant} to dedicated: migration phase copying`,
        `tenants: upgrade ${s.tenant} to dedicated: migration phase cutover`,
        `tenants: upgrade ${s.tenant} to dedicated: migration phase cleanup`,
      ]);
      // Provisioning: the cell (identity kept on delete), then the dedicated stack; at cutover the
      // cell (LOGIN off), then the dedicated stack claiming the identity.
      const ded = `dedicated-${s.tenant}-prod`;
      expect(s.runner.ups()).toEqual([CELL_STACK, ded, CELL_STACK, ded]);
      // The identity changed hands once, by state move, while the file still said copying (before
      // the commit that makes the cell stop declaring it); no key moved (a standard tenant has none).
      const moves = s.runner.calls.filter((c) => c.op === "move");
      expect(moves.map((c) => [c.move!.source, c.stack, c.move!.phase, c.move!.urns.map((u) => u.slice(u.lastIndexOf("::") + 2))])).toEqual([
        [CELL_STACK, ded, "copying", ["-role", "-database", "-secrets", "-access", "-config"].map((x) => `tenant-${s.tenant}${x}`)],
      ]);
      expect(s.runner.owners.get(`identity:${s.tenant}:prod`)).toBe(ded);
      expect(s.runner.calls.findIndex((c) => c.op === "move")).toBeLessThan(s.runner.calls.findLastIndex((c) => c.op === "up" && c.stack === CELL_STACK));
      // The cell: the tenant's role has no LOGIN, its name points at the dedicated zone; the bystander is untouched.
      expect(await loginOf(s.cell, s.tenant)).toBe(false);
      expect(await loginOf(s.cell, s.bystander)).toBe(true);
      expect(s.runner.dns.get(CELL_STACK)?.get(s.tenant)).toBe(`${s.tenant}.dedicated.tenancy.example.com`);
      expect(s.runner.dns.get(CELL_STACK)?.get(s.bystander)).toBe("ingress.shared-prod-use1-01.tenancy.example.com");

      // Every write the application committed, before or after the bulk copy, is in the dedicated database.
      const app = await connect(s.ded, { user: pgTenantIdent(s.tenant), password: TENANT_PASSWORD });
      const q = qi(pgTenantIdent(s.tenant));
      const emails = (await app.query<{ email: string }>(`SELECT email FROM ${q}.customers WHERE email LIKE 'w7-%'`)).rows.map((r) => r.email);
      expect(new Set(emails)).toEqual(new Set(writer.stats.inserted));
      expect((await app.query(`SELECT 1 FROM ${q}.customers WHERE id = ANY($1::bigint[])`, [writer.stats.deleted])).rowCount).toBe(0);
      await app.end();
      expect(await schemaState(s.ded, s.tenant)).toBe(await schemaState(s.cell, s.tenant));
      const markers = await (async () => {
        const c = await connect(s.ded);
        try {
          return await readMarkers(c, s.tenant);
        } finally {
          await c.end();
        }
      })();
      expect(markers.map((m) => [m.workflowId, m.env])).toEqual([[wf.id, "prod"]]);

      // No rollback once cut over.
      await expect(s.service.requestRollback(s.tenant)).rejects.toThrow(LifecycleRequestError);
      await expect(s.service.requestRollback(s.tenant)).rejects.toThrow(/no longer possible: .* has reached step cleanup.wait \(allowed only before cutover.switch\)/);

      // Before the retention ends nothing happens; after it, the dump, then the cell lets go.
      s.clock.advanceDays(6);
      expect((await s.service.engine.runDue()).map((r) => r.state)).toEqual([]);
      const cellBefore = await schemaState(s.cell, s.tenant);
      s.clock.advanceDays(1);
      expect(await s.service.engine.runDue()).toEqual([{ id: wf.id, state: "succeeded", step: null }]);

      const backups = await s.service.engine.backups({ workflowId: wf.id });
      expect(backups.map((b) => [b.env, b.kind])).toEqual([["prod", "schema-dump"]]);
      const file = DirectoryBucketStore.fileOf(backups[0]!.location);
      expect(file).toContain(`/prod-use1-01/backups/tenants/${s.tenant}/${wf.id}/prod-${pgTenantIdent(s.tenant)}.sql.gz`);
      // The dump restores to exactly what the cell held when it was taken.
      const restoredDb = await bench.dedServer.createDatabase(`restore_${s.tenant.replace(/-/g, "_")}`, bench.dedAdmin);
      const r = await bench.dedServer.connect({ ...bench.dedAdmin, database: restoredDb });
      await prepareSession(r);
      await restoreDump(r, createReadStream(file).pipe(createGunzip()));
      await r.end();
      expect(await schemaState({ server: bench.dedServer, admin: bench.dedAdmin, database: restoredDb }, s.tenant)).toBe(cellBefore);

      expect(await schemaState(s.cell, s.tenant)).toBe("absent");
      expect(await loginOf(s.cell, s.tenant)).toBeUndefined();
      expect(await loginOf(s.cell, s.bystander)).toBe(true);
      const after = requireFleet({ projectDir: s.root }).tenants.get(s.tenant)!.tenant;
      expect(after.deployment === "dedicated" && after.migration).toBeUndefined();
      // The dedicated stack keeps taking the connection document's password (tenantDatabaseAccess.ts).
      expect(Object.values(after.environments).map((e) => e?.movedAt)).toEqual(Object.keys(after.environments).map(() => expect.stringMatching(/^\d{4}-\d\d-\d\dT/)));
      expect(s.runner.ups()).toEqual([CELL_STACK, `dedicated-${s.tenant}-prod`, CELL_STACK, `dedicated-${s.tenant}-prod`, CELL_STACK]);
      expect(s.runner.owners.get(`identity:${s.tenant}:prod`)).toBe(`dedicated-${s.tenant}-prod`);
      expect(s.runner.dns.get(CELL_STACK)?.has(s.tenant)).toBe(false);
      expect(original).not.toBe(tenantFile(s));
      expect(await s.service.engine.get(wf.id)).toMatchObject({ state: "succeeded", currentStep: null, attempts: 0 });
    } finally {
      await s.close();
    }
  }, 180_000);

  /**
   * The end state a scenario reaches, with the names that differ between scenarios (tenant id,
   * workflow id, temp dirs) replaced, so scenarios can be compared.
   */
  async function endState(s: Scenario, workflowId: string): Promise<string> {
    const norm = (text: string) =>
      [[s.tenant, "<tenant>"], [pgTenantIdent(s.tenant), "<ident>"], [s.bystander, "<bystander>"], [workflowId, "<wf>"]].reduce((t, [a, b]) => t.split(a!).join(b), text);
    const files: Record<string, string> = {};
    for (const dir of ["tenants", "stacks"]) {
      for (const f of readdirSync(join(s.root, dir)).sort()) files[norm(`${dir}/${f}`)] = norm(readFileSync(join(s.root, dir, f), "utf8"));
    }
    const backups = (await s.service.engine.backups({ workflowId })).map((b) => ({
      env: b.env, kind: b.kind, location: norm(b.location).replace(/^file:\/\/.*\/prod-use1-01\//, "bucket:"),
      // The dump's content with the scenario's names replaced (its bytes carry the tenant id).
      content: createHash("sha256").update(norm(gunzipSync(readFileSync(DirectoryBucketStore.fileOf(b.location))).toString("utf8")).replace(/--@[0-9a-f]{12}/g, "--@nonce")).digest("hex"),
    }));
    const steps = (await s.service.engine.steps(workflowId)).map((x) => x.step);
    return JSON.stringify({
      files,
      commits: gitLog(s.root).map(norm),
      cell: norm(await schemaState(s.cell, s.tenant)),
      dedicated: norm(await schemaState(s.ded, s.tenant)),
      cellLogin: (await loginOf(s.cell, s.tenant)) ?? "no role",
      dedicatedLogin: (await loginOf(s.ded, s.tenant)) ?? "no role",
      bystanderLogin: (await loginOf(s.cell, s.bystander)) ?? "no role",
      dns: [...(s.runner.dns.get(CELL_STACK) ?? new Map<string, string>())].map(([k, v]) => norm(`${k}=${v}`)).sort(),
      deployed: [...s.runner.deployed.keys()].map(norm).sort(),
      owners: [...s.runner.owners].map(([k, v]) => norm(`${k}=${v}`)).sort(),
      backups,
      steps,
      state: (await s.service.engine.get(workflowId))?.state,
    }, null, 1);
  }

  async function scenarioRun(crashAt: "none" | "afterEffects" | "afterRecord"): Promise<{ state: string; crashes: number; ups: number }> {
    const crashed = new Set<string>();
    let wrote = false;
    const hooks: EngineHooks = {
      afterEffects: (_wf, step) => {
        if (crashAt === "afterEffects" && !crashed.has(step)) {
          crashed.add(step);
          throw new SimulatedCrash(`crash after the effects of ${step}`);
        }
      },
      afterRecord: async (_wf, step) => {
        if (step === "copy.data" && !wrote) {
          wrote = true;
          await applicationWritesDuringCopy(s);
        }
        if (crashAt === "afterRecord" && !crashed.has(step)) {
          crashed.add(step);
          throw new SimulatedCrash(`crash after the record of ${step}`);
        }
      },
    };
    const s = await createScenario(bench, { prefix: "crash" }, { hooks });
    try {
      await createApplicationSchema(s.cell, pgTenantIdent(s.tenant), TENANT_PASSWORD, 40);
      const wf = await s.service.requestUpgrade(s.tenant);
      const { crashes } = await drive(s, wf.id);
      return { state: await endState(s, wf.id), crashes, ups: s.runner.ups().length };
    } finally {
      await s.close();
    }
  }

  it("a crash after any step (before or after its record) resumes to the same end state", async () => {
    // Three independent scenarios (own fleet, databases and tenant), run side by side.
    const [baseline, effects, records] = await Promise.all([scenarioRun("none"), scenarioRun("afterEffects"), scenarioRun("afterRecord")]);
    expect(baseline.crashes).toBe(0);
    expect(JSON.parse(baseline.state)).toMatchObject({ cell: "absent", cellLogin: "no role", dedicatedLogin: true, bystanderLogin: true, state: "succeeded" });
    const steps = JSON.parse(baseline.state).steps as string[];
    expect(steps).toHaveLength(14);

    // Crash after every step's effects, before its completion is recorded: each step runs twice.
    expect(effects.crashes).toBe(14);
    expect(effects.state).toBe(baseline.state);
    // Stack steps ran again after their crash: more `up`s, same result.
    expect(effects.ups).toBeGreaterThan(baseline.ups);

    // Crash right after each record: resumes at the next step.
    expect(records.crashes).toBe(14);
    expect(records.state).toBe(baseline.state);
    // Three upgrades with change capture side by side on a shared 2-core machine.
  }, 240_000);

  it("rolls back before cutover: pooled again, data untouched, the dedicated stack kept (not destroyed) and its copy removed", async () => {
    const s = await createScenario(bench, { prefix: "rb" });
    try {
      await createApplicationSchema(s.cell, pgTenantIdent(s.tenant), TENANT_PASSWORD, 50);
      const before = await schemaState(s.cell, s.tenant);
      const originalTenant = requireFleet({ projectDir: s.root }).tenants.get(s.tenant)!.tenant;
      // A maintenance window next week: the upgrade copies, then waits.
      const up = await s.service.requestUpgrade(s.tenant, { cutoverNotBefore: new Date("2026-03-09T22:00:00Z") });
      expect(await s.service.engine.run(up.id)).toMatchObject({ state: "waiting", step: "cutover.window" });
      expect(await schemaState(s.ded, s.tenant)).not.toBe("absent");

      const rb = await s.service.requestRollback(s.tenant, { requestedBy: "ops@example.com" });
      expect(await s.service.engine.get(up.id)).toMatchObject({ state: "cancelled", note: `superseded by rollback workflow ${rb.id}` });
      expect(await s.service.engine.run(rb.id)).toMatchObject({ state: "succeeded" });

      const fleet = loadFleet({ projectDir: s.root });
      expect(fleet.problems).toEqual([]);
      expect(fleet.fleet!.tenants.get(s.tenant)!.tenant).toEqual(originalTenant);
      expect(tenantFile(s)).toContain("# A comment a person wrote: edits keep it.");
      // The stack is not destroyed: its file is kept aside for whoever destroys it later.
      expect(s.runner.calls.filter((c) => c.op === "destroy")).toEqual([]);
      expect(s.runner.deployed.has(`dedicated-${s.tenant}-prod`)).toBe(true);
      expect(existsSync(join(s.root, "stacks", `Pulumi.dedicated-${s.tenant}-prod.yaml`))).toBe(false);
      expect(readFileSync(join(s.root, "stacks", "retired", `Pulumi.dedicated-${s.tenant}-prod.yaml`), "utf8")).toContain(`Retired by rollback workflow ${rb.id}`);
      // The copy is gone from the dedicated database; the cell holds exactly what it held, and serves.
      const dedicated = JSON.parse(await schemaState(s.ded, s.tenant)) as { sums: unknown[] };
      expect(dedicated.sums).toEqual([]);
      expect(await schemaState(s.cell, s.tenant)).toBe(before);
      expect(await loginOf(s.cell, s.tenant)).toBe(true);
      expect(s.runner.dns.get(CELL_STACK)?.get(s.tenant)).toBe("ingress.shared-prod-use1-01.tenancy.example.com");
      expect(gitLog(s.root).at(-1)).toBe(`tenants: roll back the upgrade of ${s.tenant}: pooled again in ${CELL_STACK}`);
    } finally {
      await s.close();
    }
  });

  it("a rollback asked to destroy a protected (prod) dedicated stack fails without lifting protection, and changes nothing else", async () => {
    const s = await createScenario(bench, { prefix: "rbp" }, { config: { maxAttempts: 1 } });
    try {
      await createApplicationSchema(s.cell, pgTenantIdent(s.tenant), TENANT_PASSWORD, 10);
      const up = await s.service.requestUpgrade(s.tenant, { cutoverNotBefore: new Date("2026-03-09T22:00:00Z") });
      await s.service.engine.run(up.id);
      const fileBefore = tenantFile(s);
      const rb = await s.service.requestRollback(s.tenant, { destroyDedicated: true });
      const r = await s.service.engine.run(rb.id);
      expect(r).toMatchObject({ state: "failed", step: "rollback.destroy" });
      expect(r.error).toMatch(/protected resources/);
      const destroys = s.runner.calls.filter((c) => c.op === "destroy");
      expect(destroys.map((c) => [c.stack, c.release])).toEqual([[`dedicated-${s.tenant}-prod`, undefined]]);
      expect(tenantFile(s)).toBe(fileBefore);
      expect(s.runner.deployed.has(`dedicated-${s.tenant}-prod`)).toBe(true);
    } finally {
      await s.close();
    }
  });

  it("moves an own key (enterprise) to the dedicated stack before the provisioning commit, and back on rollback", async () => {
    const s = await createScenario(bench, { prefix: "ent", tier: "enterprise" });
    try {
      const ded = `dedicated-${s.tenant}-prod`;
      expect(s.runner.owners.get(`key:${s.tenant}:prod`)).toBe(CELL_STACK);
      // The review rules list dedicated tenant files by name (infra/model/fleetFiles/codeowners.ts).
      mkdirSync(join(s.root, ".github"));
      writeFileSync(join(s.root, ".github", "CODEOWNERS"), "/stacks/Pulumi.dedicated-*  @org/platform-team\n/tenants/acme.yaml       @org/platform-team\n");
      execFileSync("git", ["-C", s.root, "add", ".github/CODEOWNERS"]);
      execFileSync("git", ["-C", s.root, "commit", "-q", "-m", "review rules"]);
      const up = await s.service.requestUpgrade(s.tenant, { cutoverNotBefore: new Date("2026-03-09T22:00:00Z") });
      expect(await s.service.engine.run(up.id)).toMatchObject({ state: "waiting", step: "cutover.window" });
      // The key moved while the file still said pooled; the provisioning ups then found it where the programs expect it.
      const keyMove = s.runner.calls.filter((c) => c.op === "move");
      expect(keyMove.map((c) => [c.move!.source, c.stack, c.move!.phase, c.move!.urns.map((u) => u.slice(u.lastIndexOf("::") + 2))])).toEqual([
        [CELL_STACK, ded, "pooled", [`tenant-${s.tenant}-key`]],
      ]);
      expect(s.runner.calls.findIndex((c) => c.op === "move")).toBeLessThan(s.runner.calls.findIndex((c) => c.op === "up"));
      expect(s.runner.owners.get(`key:${s.tenant}:prod`)).toBe(ded);
      expect(s.runner.owners.get(`identity:${s.tenant}:prod`)).toBe(CELL_STACK);
      const migration = requireFleet({ projectDir: s.root }).tenants.get(s.tenant)!.tenant;
      expect(migration.deployment === "dedicated" && migration.migration?.fromTier).toBe("enterprise");
      // The provisioning commit listed the tenant file for the platform team's review.
      expect(readFileSync(join(s.root, ".github", "CODEOWNERS"), "utf8")).toContain(`/tenants/${s.tenant}.yaml`);
      expect(execFileSync("git", ["-C", s.root, "show", "--name-only", "--format=", "HEAD~1"], { encoding: "utf8" }).split("\n")).toEqual(
        expect.arrayContaining([".github/CODEOWNERS", `tenants/${s.tenant}.yaml`]),
      );

      const rb = await s.service.requestRollback(s.tenant);
      expect(await s.service.engine.run(rb.id)).toMatchObject({ state: "succeeded" });
      const back = s.runner.calls.filter((c) => c.op === "move").slice(1);
      expect(back.map((c) => [c.move!.source, c.stack])).toEqual([[ded, CELL_STACK]]);
      expect(s.runner.owners.get(`key:${s.tenant}:prod`)).toBe(CELL_STACK);
      expect(await loginOf(s.cell, s.tenant)).toBe(true);
    } finally {
      await s.close();
    }
  });

  it("stops before cutover, changing nothing, when the identity to hand over is in neither stack", async () => {
    const s = await createScenario(bench, { prefix: "lost" }, { config: { maxAttempts: 1 } });
    try {
      await createApplicationSchema(s.cell, pgTenantIdent(s.tenant), TENANT_PASSWORD, 10);
      const up = await s.service.requestUpgrade(s.tenant, { cutoverNotBefore: new Date("2026-03-09T22:00:00Z") });
      expect(await s.service.engine.run(up.id)).toMatchObject({ state: "waiting", step: "cutover.window" });
      // An update outside the workflow dropped the identity from the cell's state (retainOnDelete).
      s.runner.owners.delete(`identity:${s.tenant}:prod`);
      s.clock.advanceDays(8);
      const r = await s.service.engine.run(up.id, { force: true });
      expect(r).toMatchObject({ state: "failed", step: "cutover.switch" });
      expect(r.error).toMatch(new RegExp(`tenant-${s.tenant}-role.* in neither stack ${CELL_STACK} nor dedicated-${s.tenant}-prod; .*pulumi import`));
      const t = requireFleet({ projectDir: s.root }).tenants.get(s.tenant)!.tenant;
      expect(t.deployment === "dedicated" && t.migration?.phase).toBe("copying");
      expect(await loginOf(s.cell, s.tenant)).toBe(true);
      expect(s.runner.ups().filter((x) => x === CELL_STACK)).toHaveLength(1);
    } finally {
      await s.close();
    }
  });

  it("the switch is data-plane only: no stack run between the first refused write and the first write the dedicated database accepts; the convergence up rewrites nothing", async () => {
    // The engine goes on after the switch only once the application has written to the dedicated
    // database (as an application reconnecting at once would, before the next step's first run):
    // a runner call inside the window can then only come from the switch itself.
    let switched: () => Promise<void> = async () => undefined;
    const hooks: EngineHooks = { afterRecord: async (_wf, step) => void (step === "cutover.switch" && (await switched())) };
    const s = await createScenario(bench, { prefix: "win" }, { hooks });
    try {
      const ident = pgTenantIdent(s.tenant);
      await createApplicationSchema(s.cell, ident, TENANT_PASSWORD, 50);
      const docName = connectionDocName(s);
      // The application: writes every 5 ms through the connection document it reads on each (re)connect.
      const app = startApplication(s, "window");
      const events = app.events;
      const cellPort = s.cell.server.port;
      const dedPort = s.ded.server.port;
      switched = async () => {
        for (let i = 0; i < 1000 && !events.some((e) => e.kind === "accepted" && e.port === dedPort); i++) await new Promise((r) => setTimeout(r, 10));
      };
      const wf = await s.service.requestUpgrade(s.tenant);
      expect(await s.service.engine.run(wf.id)).toMatchObject({ state: "waiting", step: "cleanup.wait" });
      await app.stop();
      const firstRefused = events.find((e) => e.kind === "refused")!;
      const firstAccepted = events.find((e) => e.kind === "accepted" && e.port === dedPort)!;
      expect(firstRefused.port).toBe(cellPort);
      expect(events.filter((e) => e.kind === "accepted" && e.at < firstRefused.at).every((e) => e.port === cellPort)).toBe(true);
      expect(firstAccepted.at).toBeGreaterThan(firstRefused.at);
      // Structural: zero runner calls inside the window; the convergence ups come after it.
      expect(s.runner.calls.filter((c) => c.at > firstRefused.at && c.at < firstAccepted.at)).toEqual([]);
      const ded = `dedicated-${s.tenant}-prod`;
      expect(s.runner.calls.filter((c) => c.at > firstAccepted.at).map((c) => `${c.op} ${c.stack}`)).toEqual([`up ${CELL_STACK}`, `up ${ded}`]);
      expect(s.runner.calls.filter((c) => c.at < firstRefused.at).map((c) => `${c.op} ${c.stack}`)).toEqual([`up ${CELL_STACK}`, `up ${ded}`, `move ${ded}`]);
      // The document: created by the cell's setup up, then one version by the switch (pending, then
      // promoted); the dedicated stack's convergence up rendered the same text and wrote nothing.
      expect(s.secrets.versions.get(docName)!.map((v) => [v.versionId, v.stages])).toEqual([[`up-${CELL_STACK}`, ["AWSPREVIOUS"]], [`${wf.id}-prod`, ["AWSCURRENT"]]]);
      expect(s.secrets.versionCalls.filter((c) => c.includes(docName))).toEqual([`current ${docName}`, `putPending ${docName} ${wf.id}-prod`, `promote ${docName} ${wf.id}-prod`]);
      expect(JSON.parse(s.secrets.currentText(docName)!)).toMatchObject({ port: dedPort, database: s.ded.database, user: ident });
      const after = s.secrets.rendered.filter((r) => r.name === docName && r.at > firstAccepted.at);
      expect(after.map((r) => r.by)).toEqual([`up ${ded}`]);
      expect(JSON.parse(after[0]!.value)).toEqual(JSON.parse(s.secrets.currentText(docName)!));
      expect(await loginOf(s.cell, s.tenant)).toBe(false);
    } finally {
      await s.close();
    }
  });

  it("refuses what the tenant's state makes impossible", async () => {
    const s = await createScenario(bench, { prefix: "no" });
    try {
      await expect(s.service.requestRollback(s.tenant)).rejects.toThrow(/no upgrade under way/);
      const up = await s.service.requestUpgrade(s.tenant, { cutoverNotBefore: new Date("2026-03-09T22:00:00Z") });
      await expect(s.service.requestUpgrade(s.tenant)).rejects.toThrow(/already has a workflow under way: upgrade/);
      await expect(s.service.requestSuspend(s.tenant)).rejects.toThrow(/already has a workflow under way: upgrade/);
      expect((await s.service.engine.list(s.tenant)).map((w) => w.id)).toEqual([up.id]);
    } finally {
      await s.close();
    }
  });
});
