/**
 * Credential rotation (automation/lifecycle/workflows/rotate.ts) against live PostgreSQL with
 * SCRAM authentication: the role's password really changes, old and new passwords are tried by
 * real logins. Secrets Manager is the harness's FakeSecrets, which models the staging labels
 * (AWSCURRENT / AWSPENDING / AWSPREVIOUS); no AWS call happens.
 */
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { LifecycleRequestError } from "../../automation/lifecycle/service.ts";
import { scramVerifier } from "../../automation/lifecycle/pg/scram.ts";
import { loadPlatform } from "../../infra/model/platform.ts";
import { databaseSecretName, pgTenantIdent } from "../../infra/model/naming.ts";
import { requireFleet } from "../../infra/model/fleet.ts";
import { CELL_STACK, createScenario, gitLog, SimulatedCrash, startBench, TENANT_PASSWORD, type Bench, type Scenario } from "./harness.ts";
import { connect } from "./tenantDb.ts";

let bench: Bench;
beforeAll(async () => {
  bench = await startBench({ single: true });
});
afterAll(async () => {
  await bench?.stop();
});

const STEPS = ["rotate.pending", "rotate.set", "rotate.verify", "rotate.promote", "rotate.record", "rotate.sync", "rotate.expire"];

function secretOf(s: Scenario): string {
  return databaseSecretName(loadPlatform(s.root).appName, "prod", s.tenant);
}

/** The connection document the cell stack's ConnectionSecret wrote when it created the tenant. */
function seedDocument(s: Scenario): void {
  const ident = pgTenantIdent(s.tenant);
  s.secrets.seed(
    secretOf(s),
    "us-east-1",
    "pulumi-version-1",
    JSON.stringify({ host: s.cell.server.host, port: s.cell.server.port, database: s.cell.database, user: ident, password: TENANT_PASSWORD, schema: ident, sslmode: "verify-full" }),
  );
}

function versions(s: Scenario): { versionId: string; stages: string[]; password: string }[] {
  return (s.secrets.versions.get(secretOf(s)) ?? []).map((v) => ({ versionId: v.versionId, stages: [...v.stages].sort(), password: (JSON.parse(v.secretString) as { password: string }).password }));
}

async function login(s: Scenario, password: string): Promise<pg.Client> {
  return connect(s.cell, { user: pgTenantIdent(s.tenant), password });
}

async function loginError(s: Scenario, password: string): Promise<string> {
  try {
    const c = await login(s, password);
    await c.end();
    return "logged in";
  } catch (err) {
    return (err as { code?: string }).code ?? String(err);
  }
}

async function alive(c: pg.Client): Promise<boolean> {
  try {
    await c.query("SELECT 1");
    return true;
  } catch {
    return false;
  }
}

describe("tenantctl rotate: the workflow", () => {
  it("pending -> set -> verify -> promote, then the overlap: open sessions live on, new logins need the new password, the old sessions end after it", async () => {
    const s = await createScenario(bench, { prefix: "rot" });
    const clients: pg.Client[] = [];
    try {
      seedDocument(s);
      const before = await login(s, TENANT_PASSWORD);
      before.on("error", () => undefined);
      clients.push(before);
      const wf = await s.service.requestRotate(s.tenant);
      expect(wf.params).toEqual({ envs: ["prod"] });

      expect(await s.service.engine.run(wf.id)).toMatchObject({ state: "waiting", step: "rotate.expire" });
      const vs = versions(s);
      expect(vs.map((v) => [v.versionId, v.stages])).toEqual([["pulumi-version-1", ["AWSPREVIOUS"]], [wf.id, ["AWSCURRENT"]]]);
      const fresh = vs[1]!.password;
      expect(fresh).toMatch(/^[A-Za-z0-9]{32}$/);
      expect(fresh).not.toBe(TENANT_PASSWORD);
      // The document is the old one with a new password.
      const doc = JSON.parse(s.secrets.versions.get(secretOf(s))![1]!.secretString) as Record<string, unknown>;
      expect(doc).toMatchObject({ user: pgTenantIdent(s.tenant), database: s.cell.database, sslmode: "verify-full", sslrootcertUrl: "https://truststore.pki.rds.amazonaws.com/global/global-bundle.pem" });

      // Through the overlap: the session opened with the old password works; new logins need the new one.
      expect(await alive(before)).toBe(true);
      expect(await loginError(s, TENANT_PASSWORD)).toBe("28P01");
      const after = await login(s, fresh);
      after.on("error", () => undefined);
      clients.push(after);
      expect((await after.query<{ u: string }>("SELECT current_user AS u")).rows[0]!.u).toBe(pgTenantIdent(s.tenant));

      // Recorded in the tenant file (the stacks read the rotated password from then on), and the
      // cell stack brought up once with it.
      expect(requireFleet({ projectDir: s.root }).tenants.get(s.tenant)!.tenant.environments.prod!.credentialsRotatedAt).toBe("2026-03-02T09:00:00Z");
      expect(gitLog(s.root).at(-1)).toBe(`tenants: record the credential rotation of ${s.tenant} (prod)`);
      expect(s.runner.ups()).toEqual([CELL_STACK]);

      // Before the overlap is over nothing more happens.
      s.clock.advance(59 * 60_000);
      expect(await s.service.engine.run(wf.id)).toMatchObject({ state: "waiting", step: "rotate.expire" });
      expect(await alive(before)).toBe(true);
      s.clock.advance(60_000);
      expect(await s.service.engine.run(wf.id)).toMatchObject({ state: "succeeded" });
      expect(await alive(before)).toBe(false);
      expect(await alive(after)).toBe(true);
      const steps = await s.service.engine.steps(wf.id);
      expect(steps.map((x) => x.step)).toEqual(STEPS);
      expect(steps.at(-1)!.output).toEqual({ endedSessions: { prod: 1 } });

      // The password is in no record, log line or step output of the control plane.
      const records = JSON.stringify({ steps, logs: s.logs, wf: await s.service.engine.get(wf.id) });
      expect(records).not.toContain(fresh);
      expect(s.logs.map((l) => l.message)).toContain("password of the tenant's role changed (SCRAM verifier)");
    } finally {
      for (const c of clients) await c.end().catch(() => undefined);
      await s.close();
    }
  });

  it("a crash after every step, before or after its record, resumes: one new version, one password, and it works", async () => {
    let crashAt: { step: string; when: "afterEffects" | "afterRecord" } | undefined;
    const crash = (when: "afterEffects" | "afterRecord") => async (_wf: unknown, step: string) => {
      if (crashAt?.step === step && crashAt.when === when) {
        crashAt = undefined;
        throw new SimulatedCrash(`${when} ${step}`);
      }
    };
    const s = await createScenario(bench, { prefix: "rcr" }, { config: { rotationOverlapMinutes: 0 }, hooks: { afterEffects: crash("afterEffects"), afterRecord: crash("afterRecord") } });
    try {
      seedDocument(s);
      let password = TENANT_PASSWORD;
      for (const when of ["afterEffects", "afterRecord"] as const) {
        const wf = await s.service.requestRotate(s.tenant, { envs: ["prod"] });
        for (const step of STEPS) {
          crashAt = { step, when };
          await expect(s.service.engine.run(wf.id)).rejects.toThrow(SimulatedCrash);
          expect((await s.service.engine.get(wf.id))!.state).toBe("running");
        }
        expect(await s.service.engine.run(wf.id)).toMatchObject({ state: "succeeded" });
        const vs = versions(s);
        const current = vs.filter((v) => v.stages.includes("AWSCURRENT"));
        expect(current.map((v) => v.versionId)).toEqual([wf.id]);
        expect(vs.filter((v) => v.versionId === wf.id)).toHaveLength(1);
        expect(vs.find((v) => v.stages.includes("AWSPREVIOUS"))!.password).toBe(password);
        expect(s.secrets.versionCalls.filter((c) => c.startsWith("putPending"))).toHaveLength(when === "afterEffects" ? 1 : 2);
        expect(await loginError(s, password)).toBe("28P01");
        password = current[0]!.password;
        expect(await loginError(s, password)).toBe("logged in");
      }
    } finally {
      await s.close();
    }
  });

  it("refuses a suspended tenant, an environment it does not have, and a second workflow of the tenant", async () => {
    const s = await createScenario(bench, { prefix: "rrf" });
    try {
      seedDocument(s);
      await expect(s.service.requestRotate(s.tenant, { envs: ["staging"] })).rejects.toThrow(`tenant ${s.tenant} has no environment staging (it has prod)`);
      const suspend = await s.service.requestSuspend(s.tenant);
      await expect(s.service.requestRotate(s.tenant)).rejects.toThrow(LifecycleRequestError);
      await expect(s.service.requestRotate(s.tenant)).rejects.toThrow(`already has a workflow under way: suspend ${suspend.id}`);
      expect(await s.service.engine.run(suspend.id)).toMatchObject({ state: "succeeded" });
      await expect(s.service.requestRotate(s.tenant)).rejects.toThrow(`tenant ${s.tenant} is suspended: its role has no LOGIN, so a new password could not be verified; resume it first`);
      expect(s.secrets.versionCalls).toEqual([]);
    } finally {
      await s.close();
    }
  });

  it("refuses a document that is not the tenant's before changing anything", async () => {
    const s = await createScenario(bench, { prefix: "rdoc" });
    try {
      s.secrets.seed(secretOf(s), "us-east-1", "v1", JSON.stringify({ host: "h", port: 5432, database: "cell", user: "tenant_someone_else", password: "x" }));
      const wf = await s.service.requestRotate(s.tenant);
      expect(await s.service.engine.run(wf.id)).toMatchObject({
        state: "failed",
        step: "rotate.pending",
        error: `secret ${secretOf(s)} names user tenant_someone_else, not ${pgTenantIdent(s.tenant)}; it is not this tenant's connection document, nothing was rotated`,
      });
      expect(await loginError(s, TENANT_PASSWORD)).toBe("logged in");
      expect(versions(s).map((v) => v.versionId)).toEqual(["v1"]);
    } finally {
      await s.close();
    }
  });
});

describe("scramVerifier", () => {
  it("is PostgreSQL's format: the server stores it as given and the password logs in (negative control: another password does not)", async () => {
    const s = await createScenario(bench, { prefix: "scr" });
    try {
      const salt = Buffer.alloc(16, 7);
      expect(scramVerifier("abc", salt)).toMatch(/^SCRAM-SHA-256\$4096:BwcHBwcHBwcHBwcHBwcHBw==\$[A-Za-z0-9+/]{43}=:[A-Za-z0-9+/]{43}=$/);
      const c = await connect(s.cell);
      await c.query(`ALTER ROLE "${pgTenantIdent(s.tenant)}" WITH PASSWORD '${scramVerifier("Verifier1pass")}'`);
      await c.end();
      expect(await loginError(s, "Verifier1pass")).toBe("logged in");
      expect(await loginError(s, "Verifier2pass")).toBe("28P01");
      expect(() => scramVerifier("with space")).toThrow("printable ASCII");
    } finally {
      await s.close();
    }
  });
});
