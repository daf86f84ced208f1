/**
 * Schema migrations and the workflows that move a tenant's schema keep out of each other's way,
 * on a live PostgreSQL (the control plane's tables): the upgrade and the cell move are refused
 * while the tenant's schema is mid-migration (naming the workflow, the migration and how to finish
 * or abort it) and allowed once it is done; a fleet migration does not claim the schemas of a
 * tenant whose upgrade (or its rollback) or move is open, nor of one whose file says it is being
 * upgraded or moved, and claims them once it has ended. The port is a recording double: what is
 * tested here is who is claimed when, not the SQL of a migration (schemaMigrations.fleet.test.ts).
 */
import type pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createPool } from "../../automation/db/database.ts";
import { migrate } from "../../automation/db/migrate.ts";
import { DEFAULT_LIFECYCLE_CONFIG } from "../../automation/lifecycle/config.ts";
import { WorkflowConflictError, WorkflowEngine } from "../../automation/lifecycle/engine/engine.ts";
import { requestOnlyPorts } from "../../automation/lifecycle/requestPorts.ts";
import { LIFECYCLE_WORKFLOWS } from "../../automation/lifecycle/workflows/registry.ts";
import { DbMigrationEngine, type SchemaRunPort, type SchemaUnit, type SchemaWave } from "../../automation/schemaMigrations/fleetEngine.ts";
import { FleetCache } from "../../automation/git/fleetCache.ts";
import { tenantsInMotion } from "../../automation/schemaMigrations/service.ts";
import { requireFleet } from "../../infra/model/fleet.ts";
import { moveStartEdit } from "../../infra/model/fleetFiles/index.ts";
import { FleetCopy } from "../cli/fleetCopy.ts";
import { startPostgres, type PgServer } from "../support/postgres.ts";

let server: PgServer;
let pool: pg.Pool;
let workflows: WorkflowEngine;

/** A port that succeeds except for `failing` tenants, and records every claimed unit. */
function recordingPort(failing: ReadonlySet<string> = new Set()): SchemaRunPort & { claimed: string[] } {
  const claimed: string[] = [];
  return {
    claimed,
    async run(units: readonly SchemaUnit[], _action, to) {
      claimed.push(...units.map((u) => u.tenant));
      return units.map((u) =>
        failing.has(u.tenant)
          ? { tenant: u.tenant, stack: u.stack, ok: false as const, error: `tenant_${u.tenant}: 0002_x.up.sql failed: boom` }
          : { tenant: u.tenant, stack: u.stack, ok: true as const, value: { schema: `tenant_${u.tenant}`, from: 0, to, versions: [to] } },
      );
    },
  };
}

const wave = (tenants: string[], budget = 0): SchemaWave[] => [
  { index: 0, ring: "canary", parallelism: 8, bakeMs: 0, failureBudgetPercent: budget, stacks: ["shared-prod-use1-01"], schemas: tenants.map((tenant) => ({ stack: "shared-prod-use1-01", tenant })) },
];

async function refusalOf(tenant: string): Promise<string | undefined> {
  try {
    const wf = await workflows.create("upgrade", tenant, {});
    // Allowed: the test removes it again so the next case starts clean.
    await pool.query("UPDATE lifecycle_workflows SET state = 'cancelled', finished_at = now() WHERE id = $1", [wf.id]);
    return undefined;
  } catch (err) {
    expect(err).toBeInstanceOf(WorkflowConflictError);
    return (err as Error).message;
  }
}

beforeAll(async () => {
  server = await startPostgres();
  const admin = await server.createRdsLikeAdmin();
  const database = await server.createDatabase("control", admin);
  pool = createPool({ host: server.host, port: server.port, user: admin.user, password: admin.password, database }, 4);
  await migrate(pool);
  workflows = new WorkflowEngine(pool, requestOnlyPorts(), LIFECYCLE_WORKFLOWS, DEFAULT_LIFECYCLE_CONFIG);
});

afterAll(async () => {
  await pool?.end();
  await server?.stop();
});

describe("the upgrade refuses a tenant whose schema is mid-migration", () => {
  it("while its schema is pending in a running migration: names the migration and how to finish or abort it; allowed once it is done", async () => {
    const engine = new DbMigrationEngine(pool, recordingPort());
    const m = await engine.start({ action: "migrate", to: 4, waves: wave(["alpha", "beta"]) });
    expect(await refusalOf("alpha")).toBe(
      `the upgrade of tenant alpha refused: its schema is mid-migration in schema migration ${m.id} (migrate to version 4, running, wave 1 of 1): ` +
        `shared-prod-use1-01 (pending); wait for it to finish (tenantctl db show ${m.id}) or abort it (tenantctl db abort ${m.id}), then ask again`,
    );
    // Negative control: a tenant the migration does not hold.
    expect(await refusalOf("gamma")).toBeUndefined();
    await engine.tick();
    expect((await engine.get(m.id))!.state).toBe("succeeded");
    expect(await refusalOf("alpha")).toBeUndefined();
  });

  it("while its schema failed in a halted migration: says to resume after the fix or abort; allowed after the abort", async () => {
    const engine = new DbMigrationEngine(pool, recordingPort(new Set(["alpha"])));
    const m = await engine.start({ action: "migrate", to: 5, waves: wave(["alpha", "beta"]) });
    await engine.tick();
    expect((await engine.get(m.id))!.state).toBe("halted");
    expect(await refusalOf("alpha")).toBe(
      `the upgrade of tenant alpha refused: its schema is mid-migration in schema migration ${m.id} (migrate to version 5, halted, wave 1 of 1): ` +
        `shared-prod-use1-01 (failed: tenant_alpha: 0002_x.up.sql failed: boom); fix the cause and resume it (tenantctl db resume ${m.id}) or abort it (tenantctl db abort ${m.id}), then ask again`,
    );
    // beta's schema is done in that migration: nothing holds its upgrade.
    expect(await refusalOf("beta")).toBeUndefined();
    await engine.abort(m.id);
    expect(await refusalOf("alpha")).toBeUndefined();
  });

  it("workflows that leave the schema where it is are not refused (a suspension)", async () => {
    const engine = new DbMigrationEngine(pool, recordingPort());
    const m = await engine.start({ action: "migrate", to: 6, waves: wave(["delta"]) });
    const wf = await workflows.create("suspend", "delta", {});
    expect(wf.kind).toBe("suspend");
    await pool.query("UPDATE lifecycle_workflows SET state = 'cancelled', finished_at = now() WHERE id = $1", [wf.id]);
    await engine.abort(m.id);
  });
});

describe("a fleet migration waits for a tenant whose schema a workflow is moving", () => {
  it("does not claim the schemas of a tenant with an open upgrade or rollback, and claims them once it ended", async () => {
    const upgrade = await workflows.create("upgrade", "moving", {});
    const port = recordingPort();
    const engine = new DbMigrationEngine(pool, port, { inMotionKinds: LIFECYCLE_WORKFLOWS.filter((d) => d.schema !== undefined).map((d) => d.kind) });
    expect(LIFECYCLE_WORKFLOWS.filter((d) => d.schema !== undefined).map((d) => [d.kind, d.schema])).toEqual([
      ["upgrade", "moves"],
      ["rollback", "restores"],
      ["move", "moves"],
      ["move-rollback", "restores"],
    ]);
    const m = await engine.start({ action: "migrate", to: 7, waves: wave(["moving", "staying"]) });
    await engine.tick();
    expect(port.claimed).toEqual(["staying"]);
    expect((await engine.schemas(m.id)).map((s) => [s.tenant, s.state])).toEqual([
      ["moving", "pending"],
      ["staying", "succeeded"],
    ]);
    expect((await engine.get(m.id))!.state).toBe("running");
    // The upgrade is rolled back: the rollback supersedes it and is open in its turn.
    await pool.query("UPDATE lifecycle_workflows SET state = 'cancelled', finished_at = now() WHERE id = $1", [upgrade.id]);
    const rollback = await workflows.create("rollback", "moving", {});
    await engine.tick();
    expect(port.claimed).toEqual(["staying"]);
    await pool.query("UPDATE lifecycle_workflows SET state = 'succeeded', finished_at = now() WHERE id = $1", [rollback.id]);
    await engine.tick();
    expect(port.claimed).toEqual(["staying", "moving"]);
    expect((await engine.get(m.id))!.state).toBe("succeeded");

    // Without the kinds (negative control) an open upgrade does not hold a schema back.
    const again = await workflows.create("upgrade", "moving2", {});
    const plain = recordingPort();
    const free = new DbMigrationEngine(pool, plain);
    const m2 = await free.start({ action: "migrate", to: 8, waves: wave(["moving2"]) });
    await free.tick();
    expect(plain.claimed).toEqual(["moving2"]);
    expect((await free.get(m2.id))!.state).toBe("succeeded");
    await pool.query("UPDATE lifecycle_workflows SET state = 'cancelled', finished_at = now() WHERE id = $1", [again.id]);
  });
});

describe("a cell move and a fleet migration keep out of each other's way, like the upgrade", () => {
  const move = (tenant: string) => workflows.create("move", tenant, { env: "prod", from: "use1-01", to: "use1-02" });

  it("the move is refused while the schema is mid-migration, naming the move and the migration; allowed once it is done", async () => {
    const engine = new DbMigrationEngine(pool, recordingPort());
    const m = await engine.start({ action: "migrate", to: 7, waves: wave(["epsilon"]) });
    await expect(move("epsilon")).rejects.toThrow(
      new WorkflowConflictError(
        `the move of tenant epsilon refused: its schema is mid-migration in schema migration ${m.id} (migrate to version 7, running, wave 1 of 1): shared-prod-use1-01 (pending); ` +
          `wait for it to finish (tenantctl db show ${m.id}) or abort it (tenantctl db abort ${m.id}), then ask again`,
      ),
    );
    await engine.tick();
    const wf = await move("epsilon");
    expect(wf.kind).toBe("move");
    await pool.query("UPDATE lifecycle_workflows SET state = 'cancelled', finished_at = now() WHERE id = $1", [wf.id]);
  });

  it("no migration starts on the schema of a tenant whose move is open; it runs once the move ended", async () => {
    const wf = await move("zeta");
    const port = recordingPort();
    const engine = new DbMigrationEngine(pool, port, { inMotionKinds: LIFECYCLE_WORKFLOWS.filter((d) => d.schema !== undefined).map((d) => d.kind) });
    const m = await engine.start({ action: "migrate", to: 9, waves: wave(["zeta", "eta"]) });
    await engine.tick();
    expect(port.claimed).toEqual(["eta"]);
    expect((await engine.schemas(m.id)).map((s) => [s.tenant, s.state])).toEqual([
      ["eta", "succeeded"],
      ["zeta", "pending"],
    ]);
    // The move waits in its turn: its schema is pending in this migration.
    await pool.query("UPDATE lifecycle_workflows SET state = 'succeeded', finished_at = now() WHERE id = $1", [wf.id]);
    await expect(move("zeta")).rejects.toThrow(`the move of tenant zeta refused: its schema is mid-migration in schema migration ${m.id}`);
    await engine.tick();
    expect(port.claimed).toEqual(["eta", "zeta"]);
    expect((await engine.get(m.id))!.state).toBe("succeeded");
  });
});

describe("the tenants a workflow is moving, as the fleet's files say (tenantsInMotion)", () => {
  it("names a pooled tenant from its move's first commit on, as it names an upgrading one", async () => {
    const copy = new FleetCopy();
    try {
      const busy = tenantsInMotion(new FleetCache(copy.dir));
      expect([...(await busy())]).toEqual([]);
      const fleet = requireFleet({ projectDir: copy.dir });
      const t = fleet.tenants.get("freebie-one")!.tenant;
      const files = moveStartEdit(fleet, copy.read("tenants/freebie-one.yaml"), t, "prod", "use1-02", "0b5a4a4e-6a8e-4c31-9d1e-3f1f6a3c2b10", new Date("2026-12-06T10:00:00Z"));
      for (const [path, text] of Object.entries(files)) copy.write(path, text!);
      expect([...(await busy())]).toEqual(["freebie-one"]);
    } finally {
      copy.cleanup();
    }
  });
});
