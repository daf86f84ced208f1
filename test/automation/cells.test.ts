/**
 * The control plane's create path opens cells at the reserve (docs/cells.md): on live PostgreSQL,
 * a throwaway git repository and the CLI test double. The example's staging cell use1-01
 * (capacity 20) starts with 16 residents, so the 17th tenant crosses the 20% reserve.
 */
import { existsSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startHarness, waitFor, type Harness } from "./support/harness.ts";
import { startTestPostgres, type TestPostgres } from "./support/postgres.ts";
import { makeFixtureRepo } from "./support/repo.ts";

let pg: TestPostgres;
let h: Harness;
let gate: string;
const CELL = "shared-staging-use1-02";

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
  h = await startHarness({ pg, repo, fake: { holdUntil: { [CELL]: gate }, failures: { "shared-dev-euw1-01": "cell boom: RDS said no" } } });
}, 120_000);
afterAll(async () => {
  if (gate && !existsSync(gate)) writeFileSync(gate, ""); // release a held run so shutdown does not wait on it
  await h?.close();
  await pg?.stop();
  const { rmSync } = await import("node:fs");
  if (gate) rmSync(gate, { force: true });
});

const staging = (id: string) => ({ id, displayName: id, tier: "free", region: "us-east-1", environments: { staging: {} } });
const placementOf = (id: string) => /placement:\n\s+staging: (\S+)/.exec(h.repo.show("main", `tenants/${id}.yaml`) ?? "")?.[1];
const filesOf = (sha: string) => h.repo.git("show", "--name-only", "--format=", sha).trim().split("\n");

describe("POST /api/tenants at the reserve", () => {
  it("two creations at once at the threshold open exactly one cell, committed on its own, and place both in the open cell", async () => {
    const [a, b] = await Promise.all([h.api("POST", "/api/tenants", staging("cc-a")), h.api("POST", "/api/tenants", staging("cc-b"))]);
    expect([a.status, b.status]).toEqual([201, 201]);
    expect([placementOf("cc-a"), placementOf("cc-b")]).toEqual(["use1-01", "use1-01"]);
    const opened = h.repo.log().filter((c) => c.subject.startsWith("tenants: open cell "));
    expect(opened.map((c) => c.subject)).toEqual([
      `tenants: open cell ${CELL} (10.3.0.0/16, us-east-1a, us-east-1b): staging/us-east-1 would fall below its 20% reserve`,
    ]);
    expect(filesOf(opened[0]!.sha)).toEqual([`stacks/Pulumi.${CELL}.yaml`]);
    expect(h.repo.show("main", `stacks/Pulumi.${CELL}.yaml`)).toContain("    opening: true\n");
    // Its first run is queued (held by the test double until the gate opens).
    const runs = await h.cp.runs.list({ stacks: [CELL] });
    expect(runs.map((r) => r.operation)).toEqual(["up"]);
  });

  it("a tenant that finds no open cell with room waits for the new cell's first successful run, then is placed in it", async () => {
    // use1-01 is filled to 20 of 20; the opening cell counts as capacity, so no second cell opens.
    for (const id of ["cc-c", "cc-d"]) expect((await h.api("POST", "/api/tenants", staging(id))).status).toBe(201);
    expect([placementOf("cc-c"), placementOf("cc-d")]).toEqual(["use1-01", "use1-01"]);
    let answered = false;
    const pending = h.api("POST", "/api/tenants", staging("cc-e")).then((r) => {
      answered = true;
      return r;
    });
    await waitFor("the cell's run to be running", async () => (await h.cp.runs.list({ stacks: [CELL] }))[0]?.state === "running");
    await new Promise((r) => setTimeout(r, 1500));
    expect(answered).toBe(false);
    expect(h.repo.show("main", "tenants/cc-e.yaml")).toBeUndefined();

    writeFileSync(gate, "");
    const res = await pending;
    expect(res.status).toBe(201);
    expect(placementOf("cc-e")).toBe("use1-02");
    // The cell's first run (the oldest; the tenant's own run of the stack is queued after it).
    const runs = await h.cp.runs.list({ stacks: [CELL] });
    const run = runs.at(-1);
    expect(runs).toHaveLength(2);
    expect(run!.state).toBe("succeeded");
    const subjects = h.repo.log().map((c) => c.subject);
    expect(subjects.slice(0, 2)).toEqual([
      "tenants: create cc-e (free, pooled in shared-staging-use1-02) via the API",
      `tenants: open cell ${CELL} for placement: its first up succeeded (run ${run!.id})`,
    ]);
    expect(h.repo.show("main", `stacks/Pulumi.${CELL}.yaml`)).not.toMatch(/opening/);
    expect(h.repo.log().filter((c) => c.subject.startsWith("tenants: open cell ") && c.subject.includes("reserve"))).toHaveLength(1);
  });

  it("when the new cell's first run fails the tenant is not created (503 naming the run), and the cell stays opening", async () => {
    const res = await h.api("POST", "/api/tenants", { id: "dev-co", displayName: "dev-co", tier: "free", region: "eu-west-1", environments: { dev: {} } });
    expect(res.status).toBe(503);
    const [run] = await h.cp.runs.list({ stacks: ["shared-dev-euw1-01"] });
    expect(run!.state).toBe("failed");
    expect((res.json.error as { message: string }).message).toBe(
      `tenant dev-co not created; nothing of it was written: cell shared-dev-euw1-01 is opening but its first run ${run!.id} failed (` +
        `${(run!.error ?? "").split("\n")[0]}); fix the cause and repeat the request (it queues a new run of shared-dev-euw1-01)`,
    );
    expect(h.repo.show("main", "tenants/dev-co.yaml")).toBeUndefined();
    expect(h.repo.show("main", "stacks/Pulumi.shared-dev-euw1-01.yaml")).toContain("    opening: true\n");
  });
});
