/**
 * The switch's write window when it fails (automation/lifecycle/workflows/switchWindow.ts), for the
 * upgrade and the cell move, on live PostgreSQL (harness.ts says what is real and what stands in):
 *
 * - a drain that cannot finish (the apply on the target held by a lock a test session keeps): the
 *   window is undone (LOGIN back on the cell left, the identity's state back, phase copying
 *   re-committed), the tenant logs in and writes again, and the retry completes with every row;
 *   the state inside the window, sampled before the failure, is what the old code left behind for
 *   good (the negative control: the assertions after the failure would fail on it);
 * - a process killed at every point inside the window and inside its undo converges on retry to
 *   the same end as a run without a kill, losing no write accepted between the attempts.
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { EngineHooks } from "../../automation/lifecycle/engine/engine.ts";
import { windowRecord } from "../../automation/lifecycle/workflows/switchWindow.ts";
import { pgTenantIdent } from "../../infra/model/naming.ts";
import { CELL2, CELL2_STACK, CELL_STACK, createScenario, gitLog, loginOf, schemaState, SimulatedCrash, startBench, TENANT_PASSWORD, type Bench, type Scenario } from "./harness.ts";
import { connect, createApplicationSchema, qi, startWriter, type DbRef } from "./tenantDb.ts";
import { docOf, phaseOf, slotsOn, tenantLogin } from "./probes.ts";

let bench: Bench;
beforeAll(async () => {
  bench = await startBench();
});
afterAll(async () => {
  await bench?.stop();
});

type Kind = "upgrade" | "move";

/** The target of the switch: the dedicated database (upgrade) or the cell moved to (move). */
const targetOf = (s: Scenario, kind: Kind): DbRef => (kind === "move" ? s.cell2! : s.ded);
const targetStack = (s: Scenario, kind: Kind): string => (kind === "move" ? CELL2_STACK : `dedicated-${s.tenant}-prod`);

async function request(s: Scenario, kind: Kind): Promise<string> {
  return (kind === "move" ? await s.service.requestMove(s.tenant, { env: "prod", to: CELL2 }) : await s.service.requestUpgrade(s.tenant)).id;
}

async function windowRowOn(db: DbRef, workflowId: string): Promise<boolean> {
  const c = await connect(db);
  try {
    return (await windowRecord(c, workflowId, "prod")) !== undefined;
  } finally {
    await c.end();
  }
}

describe.each(["move", "upgrade"] as const)("the %s's switch window fails", (kind) => {
  it("a drain that cannot finish: the window is undone, the tenant writes again, and the retry completes with every row", async () => {
    const inWindow: Record<string, unknown> = {};
    let sampled = false;
    const box: { s?: Scenario } = {};
    const hooks: EngineHooks = {
      atPoint: async (_wf, _step, point) => {
        // Inside the window, once: what the tenant sees there (and what the old code left for good).
        if (point !== "window.sessionsEnded" || sampled) return;
        sampled = true;
        const s = box.s!;
        inWindow.login = await tenantLogin(s.cell, s.tenant);
        inWindow.phase = phaseOf(s);
        inWindow.owner = s.runner.owners.get(`identity:${s.tenant}:prod`);
        inWindow.held = [...s.runner.holds.keys()].sort();
      },
    };
    const s = await createScenario(bench, { prefix: kind === "move" ? "wfm" : "wfu" }, { hooks, secondCell: kind === "move", config: { cutoverTimeoutMs: 6_000 } });
    box.s = s;
    const ident = pgTenantIdent(s.tenant);
    const q = qi(ident);
    let locker: pg.Client | undefined;
    try {
      await createApplicationSchema(s.cell, ident, TENANT_PASSWORD, 60);
      const target = targetOf(s, kind);
      // The hold: once the identity has changed hands (right before the window), a session on the
      // target takes an exclusive lock on a table the writer writes to: the drain cannot apply.
      const handOver = s.runner.moveState.bind(s.runner);
      let held = false;
      s.runner.moveState = async (move, ctx) => {
        const r = await handOver(move, ctx);
        if (!held && move.dest === targetStack(s, kind)) {
          held = true;
          locker = await connect(target);
          await locker.query(`GRANT ${qi(ident)} TO CURRENT_USER`);
          await locker.query("BEGIN");
          await locker.query(`LOCK TABLE ${q}.events IN ACCESS EXCLUSIVE MODE`);
        }
        return r;
      };
      const writer = startWriter(s.cell, ident, TENANT_PASSWORD, 21);
      await writer.waitForCommits(5);
      const id = await request(s, kind);

      const failed = await s.service.engine.run(id);
      expect(failed).toMatchObject({ state: "running", step: "cutover.switch" });
      expect(failed.error).toMatch(/^the switch's write window for prod failed before its marker: /);
      expect(failed.error).toMatch(/did not reach its fence within 6000 ms|statement timeout/);
      expect(failed.error).toContain("Undone: LOGIN given back on cell use1-01 (prod), the identity's state moved back and phase copying re-committed; ");
      expect(failed.error).toContain("The retry catches up and opens a new window");
      expect(s.logs.some((l) => l.message === failed.error && l.fields.step === "cutover.switch")).toBe(true);
      await writer.done;
      expect(writer.stats.stoppedBy).toMatch(/terminat|connection error|not permitted to log in/);

      // Negative control: inside the window the tenant was refused, the file said cutover and the
      // identity was in the target's stack; the old code left exactly that until the retry.
      // The tenant's stacks are held (no stack run inside the window), and released once it is undone.
      const holds = [CELL_STACK, targetStack(s, kind)].sort();
      expect(inWindow).toEqual({ login: expect.stringMatching(/is not permitted to log in/), phase: "cutover", owner: targetStack(s, kind), held: holds });
      expect(s.runner.holds.size).toBe(0);
      // After the failed window: LOGIN back, phase copying, identity back, the document unchanged, the slot kept, the row gone.
      expect(await tenantLogin(s.cell, s.tenant)).toBe("ok");
      expect(phaseOf(s)).toBe("copying");
      expect(s.runner.owners.get(`identity:${s.tenant}:prod`)).toBe(CELL_STACK);
      expect(docOf(s)).toMatchObject({ port: s.cell.server.port, database: s.cell.database });
      expect(await slotsOn(s.cell)).toHaveLength(1);
      expect(await windowRowOn(s.cell, id)).toBe(false);
      const moves = s.runner.calls.filter((c) => c.op === "move").map((c) => `${c.move!.source} -> ${c.stack}`);
      expect(moves).toEqual([`${CELL_STACK} -> ${targetStack(s, kind)}`, `${targetStack(s, kind)} -> ${CELL_STACK}`]);

      // The tenant writes to its cell again; then the hold ends and the retry switches.
      const writer2 = startWriter(s.cell, ident, TENANT_PASSWORD, 22);
      await writer2.waitForCommits(10);
      await writer2.stop();
      expect(writer2.stats.stoppedBy).toBeUndefined();
      await locker!.query("COMMIT");
      await locker!.end();
      locker = undefined;
      // The retry switches. On a loaded machine its drain may miss the window's 6 s too: that attempt
      // is undone the same way (the behaviour under test), and the next one switches.
      let retried = await s.service.engine.run(id, { force: true });
      let extra = 0;
      for (; retried.error && extra < 4; extra++) {
        expect(retried.error).toMatch(/^the switch's write window for prod failed before its marker: .*The retry catches up and opens a new window$/);
        expect(await tenantLogin(s.cell, s.tenant)).toBe("ok");
        retried = await s.service.engine.run(id, { force: true });
      }
      expect(retried.error ?? null).toBeNull();
      expect(retried).toMatchObject({ state: "waiting", step: "cleanup.wait" });

      // Every committed write of both writers is on the target; deletes stayed deleted.
      const c = await connect(target, { user: ident, password: TENANT_PASSWORD });
      try {
        const emails = (await c.query<{ email: string }>(`SELECT email FROM ${q}.customers WHERE email LIKE 'w2_-%'`)).rows.map((r) => r.email);
        expect(new Set(emails)).toEqual(new Set([...writer.stats.inserted, ...writer2.stats.inserted]));
        expect((await c.query(`SELECT 1 FROM ${q}.customers WHERE id = ANY($1::bigint[])`, [[...writer.stats.deleted, ...writer2.stats.deleted]])).rowCount).toBe(0);
        const events = Number((await c.query<{ n: string }>(`SELECT count(*)::text AS n FROM ${q}.events WHERE payload = 'writer'`)).rows[0]!.n);
        expect(events).toBe(writer.stats.events + writer2.stats.events);
      } finally {
        await c.end();
      }
      expect(await schemaState(target, s.tenant)).toBe(await schemaState(s.cell, s.tenant));
      expect(await loginOf(s.cell, s.tenant)).toBe(false);
      expect(await tenantLogin(s.cell, s.tenant)).toMatch(/is not permitted to log in/);
      expect(docOf(s)).toMatchObject({ port: target.server.port, database: target.database });
      expect(await slotsOn(s.cell)).toEqual([]);
      expect(s.runner.owners.get(`identity:${s.tenant}:prod`)).toBe(targetStack(s, kind));
      // In the order the switch names them: the cell left first.
      const order = [CELL_STACK, targetStack(s, kind)];
      const cycle = [...order.map((x) => `hold ${x}`), ...order.map((x) => `release ${x}`)];
      expect(s.runner.holdLog.map((x) => x.what)).toEqual(Array.from({ length: 2 + extra }, () => cycle).flat());
      const subject = kind === "move" ? `move ${s.tenant} (prod) from use1-01 to use1-02: phase` : `upgrade ${s.tenant} to dedicated: migration phase`;
      const undone = Array.from({ length: extra }, () => ["copying", "cutover"]).flat();
      expect(gitLog(s.root).filter((x) => x.includes(subject))).toEqual(["copying", "cutover", "copying", ...undone, "cutover", "cleanup"].map((p) => `tenants: ${subject} ${p}`));
      expect(readFileSync(join(s.root, "tenants", `${s.tenant}.yaml`), "utf8")).toContain("phase: cleanup");
    } finally {
      if (locker) await locker.end().catch(() => undefined);
      await s.close();
    }
  }, 240_000);
});

/** Points of the window and of its undo, in the order a run reaches them. */
const WINDOW_POINTS = ["window.opened", "window.sessionsEnded", "window.drained", "window.undo.login", "window.undo.handedBack", "window.undo.recommitted", "window.marked", "window.pointed"];

describe("a process killed inside the move's window", () => {
  /** Runs a move to the retention wait, killing the process the first time it reaches each of `points`; writes as the tenant between attempts when it can. */
  async function run(points: readonly string[]): Promise<{ end: string; kills: string[]; written: string[]; arrived: string[] }> {
    const kills: string[] = [];
    const box: { s?: Scenario } = {};
    const hooks: EngineHooks = {
      atPoint: (_wf, _step, point) => {
        if (!points.includes(point) || kills.includes(point)) return;
        kills.push(point);
        throw new SimulatedCrash(`kill -9 at ${point}`);
      },
    };
    const s = await createScenario(bench, { prefix: "wfk" }, { hooks, secondCell: true });
    box.s = s;
    const ident = pgTenantIdent(s.tenant);
    const q = qi(ident);
    try {
      await createApplicationSchema(s.cell, ident, TENANT_PASSWORD, 40);
      const id = await request(s, "move");
      const written: string[] = [];
      for (let i = 0; i < 40; i++) {
        try {
          const r = await s.service.engine.run(id, { force: true });
          if (r.state === "waiting" && r.step === "cleanup.wait") break;
          if (r.state !== "running" && r.state !== "waiting") throw new Error(`move ${r.state}: ${r.error}`);
          if (r.error) throw new Error(`an attempt failed: ${r.error}`);
        } catch (err) {
          if (!(err instanceof SimulatedCrash)) throw err;
          // Between the kill and the retry: a write when the cell left still admits the tenant.
          if ((await tenantLogin(s.cell, s.tenant)) === "ok") {
            const c = await connect(s.cell, { user: ident, password: TENANT_PASSWORD });
            const email = `after-${err.message.replace(/\W+/g, "-")}@example.com`;
            await c.query(`INSERT INTO ${q}.customers (email, name, mood) VALUES ($1, 'between', 'ok')`, [email]);
            await c.end();
            written.push(email);
          }
        }
      }
      const c = await connect(s.cell2!, { user: ident, password: TENANT_PASSWORD });
      const arrived = (await c.query<{ email: string }>(`SELECT email FROM ${q}.customers WHERE name = 'between' ORDER BY email`)).rows.map((r) => r.email);
      await c.end();
      const end = JSON.stringify({
        phase: phaseOf(s),
        same: (await schemaState(s.cell2!, s.tenant)) === (await schemaState(s.cell, s.tenant)),
        logins: [await loginOf(s.cell, s.tenant), await loginOf(s.cell2!, s.tenant)],
        owner: s.runner.owners.get(`identity:${s.tenant}:prod`),
        doc: docOf(s).database === s.cell2!.database,
        slots: await slotsOn(s.cell),
        windowRow: await windowRowOn(s.cell, id),
        steps: (await s.service.engine.steps(id)).map((x) => x.step),
      });
      return { end, kills, written: written.sort(), arrived };
    } finally {
      await s.close();
    }
  }

  it("at every point of the window and of its undo, the retry converges on the same end and loses no write", async () => {
    // Two runs: a kill at window.marked resumes past window.pointed, so that point gets a run of its own.
    const [baseline, all, pointed] = await Promise.all([run([]), run(WINDOW_POINTS.filter((p) => p !== "window.pointed")), run(["window.pointed"])]);
    expect(baseline.kills).toEqual([]);
    expect(JSON.parse(baseline.end)).toMatchObject({ phase: "cleanup", same: true, logins: [false, true], owner: CELL2_STACK, doc: true, slots: [], windowRow: false });
    expect(all.kills).toEqual(["window.opened", "window.undo.login", "window.undo.handedBack", "window.undo.recommitted", "window.sessionsEnded", "window.drained", "window.marked"]);
    expect(all.end).toBe(baseline.end);
    expect(pointed.kills).toEqual(["window.pointed"]);
    expect(pointed.end).toBe(baseline.end);
    // After a kill inside the window the tenant stays refused until the next attempt undoes it; after
    // a kill inside the undo (LOGIN already back) it writes, and each of those writes arrived.
    expect(all.written).toEqual(["handedBack", "login", "recommitted"].map((p) => `after-kill-9-at-window-undo-${p}@example.com`));
    expect(all.arrived).toEqual(all.written);
    expect(pointed.arrived).toEqual(pointed.written);
  }, 300_000);
});
