/**
 * `plan --base` against a temporary git repository with real commits: each scenario changes the
 * working tree, is planned against HEAD, then committed. The plans are rendered in-process with
 * the fixture program of each revision (its EXTRA_TAGS line decides the variant), so the diffs
 * are exact; one end-to-end case runs the real `tenantctl plan --base` of the copied project.
 */
import { execFile } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { planAgainstBase, type FleetPlanner, type RevisionPlanner } from "../../cli/affected/planBase.ts";
import { REGION_PRICES } from "../../plan/cost/prices.ts";
import { renderMarkdown, type PlanReport } from "../../cli/plan/markdown.ts";
import { requireFleet, type Fleet } from "../../infra/model/fleet.ts";
import { renderStack } from "../../plan/render/render.ts";
import type { PlanDocument, PlannedStack } from "../../plan/types.ts";
import { extraTagsOf, makeDefineStack } from "./affected-fixture/program.ts";
import { createTempRepo, type TempRepo } from "./affected-fixture/repo.ts";
import { SCENARIOS } from "./affected-fixture/scenarios.ts";
import type { Problem } from "../../infra/model/problems.ts";

const US = REGION_PRICES["us-east-1"]!;

function planWith(projectDir: string): FleetPlanner {
  return async (fleet: Fleet, names: readonly string[]): Promise<PlanDocument> => {
    const program = makeDefineStack(extraTagsOf(readFileSync(join(projectDir, "infra", "program.ts"), "utf8")));
    const stacks: PlannedStack[] = [];
    for (const n of names) stacks.push({ ...(await renderStack(fleet, n, { program, fastPromises: true })), violations: [] });
    return { stacks };
  };
}

const planBase: RevisionPlanner = (dir, names) => planWith(dir)(requireFleet({ projectDir: dir }), names);

let repo: TempRepo;
const results = new Map<string, { report: PlanReport; head: PlanDocument; placementChanges: Problem[] }>();

beforeAll(async () => {
  repo = createTempRepo();
  for (const s of SCENARIOS) {
    s.apply(repo);
    results.set(s.name, await planAgainstBase({
      projectDir: repo.dir, headFleet: requireFleet({ projectDir: repo.dir }), baseRef: "HEAD", plan: planWith(repo.dir), planBase,
    }));
    repo.commit(s.name);
  }
}, 240_000);

afterAll(() => repo?.cleanup());

const report = (name: string) => results.get(name)!.report;
const stackOf = (name: string, stack: string) => report(name).stacks.find((s) => s.stack === stack)!;
const actions = (name: string, stack: string) => stackOf(name, stack).resources.map((r) => [r.action, r.name]);

describe("plan --base on a real repository (in-process renders)", () => {
  it("plans exactly the affected stacks of each scenario", () => {
    for (const s of SCENARIOS) expect(report(s.name).stacks.map((x) => x.stack), s.name).toEqual(s.affected);
  });

  it("reports the re-placement of an existing pooled tenant (the command refuses it after printing the plan), nothing else", () => {
    for (const s of SCENARIOS) {
      expect(results.get(s.name)!.placementChanges.map((p) => p.path), s.name).toEqual(s.name === "re-place a tenant" ? ["placement.prod"] : []);
    }
  });

  it("add a tenant: its role, schema, secret and DNS record are created in its cell, +1 secret a month", () => {
    const d = stackOf("add a tenant", "shared-prod-use1-02");
    expect(d.status).toBe("changed");
    expect(d.tenants.added).toEqual(["newco"]);
    expect(actions("add a tenant", "shared-prod-use1-02")).toEqual([
      ["create", "newco-dns"],
      ["create", "newco-api_key"],
      ["create", "newco-role"],
      ["create", "newco-schema"],
    ]);
    expect(d.counts).toMatchObject({ create: 4, update: 0, replace: 0, delete: 0 });
    expect(d.reasons).toEqual(["tenants/newco.yaml added"]);
    expect(d.cost!.after! - d.cost!.before!).toBeCloseTo(US.secretMonth.usd, 4);
  });

  it("change a tier: an enterprise tenant gets its own KMS key in each of its cells, +$1 each", () => {
    for (const stack of ["shared-prod-use1-01", "shared-staging-use1-01"]) {
      expect(actions("change a tier", stack)).toEqual([["create", "startup-alpha-key"]]);
      const c = stackOf("change a tier", stack).cost!;
      expect(c.after! - c.before!).toBeCloseTo(US.kmsKeyMonth.usd, 4);
    }
  });

  it("re-place a tenant: created in the new cell, deleted from the old one with a data-loss warning", () => {
    expect(actions("re-place a tenant", "shared-prod-use1-01")).toEqual([
      ["create", "gamma-labs-dns"],
      ["create", "gamma-labs-role"],
      ["create", "gamma-labs-schema"],
    ]);
    expect(stackOf("re-place a tenant", "shared-prod-use1-01").tenants.added).toEqual(["gamma-labs"]);
    const old = stackOf("re-place a tenant", "shared-prod-use1-02");
    expect(old.tenants.removed).toEqual(["gamma-labs"]);
    expect(old.resources.map((r) => [r.action, r.name, r.dataLoss])).toEqual([
      ["delete", "gamma-labs-dns", false],
      ["delete", "gamma-labs-role", false],
      ["delete", "gamma-labs-schema", true],
    ]);
    expect(old.resources[2]!.warnings[0]).toMatch(/^DATA LOSS: postgresql:index\/schema:Schema gamma-labs-schema is deleted/);
    expect(old.resources[1]!.warnings[0]).toMatch(/database login stops working/);
    // Its staging cell is planned (stacksOfTenant of both sides) and shows nothing to do.
    expect(stackOf("re-place a tenant", "shared-staging-use1-01").status).toBe("unchanged");
    const md = renderMarkdown(report("re-place a tenant"));
    expect(md).toContain("> [!CAUTION]");
    expect(md).toContain("> - `shared-prod-use1-02`: delete `postgresql:index/schema:Schema` `gamma-labs-schema`");
  });

  it("remove a tenant: its schema goes, loudly", () => {
    const d = stackOf("remove a tenant", "shared-prod-euw1-01");
    expect(d.tenants).toMatchObject({ removed: ["freebie-two"], added: [] });
    expect(d.resources.filter((r) => r.dataLoss).map((r) => r.name)).toEqual(["freebie-two-schema"]);
    expect(d.counts).toMatchObject({ create: 0, update: 0, replace: 0, delete: 3 });
  });

  it("edit infra: every stack, every tagged resource updated in place with the new tag, nothing replaced", () => {
    const { report: r, head } = results.get("edit infra")!;
    for (const s of r.stacks) {
      const after = head.stacks.find((x) => x.name === s.stack)!;
      const tagged = after.resources.filter((x) => x.custom && x.inputs.tags !== undefined).length;
      expect(tagged, s.stack).toBeGreaterThan(0);
      expect(s.counts, s.stack).toMatchObject({ create: 0, update: tagged, replace: 0, delete: 0 });
      for (const c of s.resources) expect(c.changes).toEqual([{ path: "tags.cost-center", before: "(unset)", after: '"platform"', effect: "update" }]);
      expect(s.cost!.after).toBe(s.cost!.before);
    }
  });

  it("remove a dedicated tenant and its stack file: the stack is removed, its data-bearing resources flagged", () => {
    const d = stackOf("remove a dedicated tenant and its stack file", "dedicated-acme-prod");
    expect(d.status).toBe("removed");
    expect(d.resources.every((r) => r.action === "delete")).toBe(true);
    expect(d.resources.filter((r) => r.dataLoss).map((r) => r.name).sort()).toEqual(
      ["acme-db", "acme-key", "acme-openai_api_key", "acme-slack_bot_token", "acme-zone"],
    );
    expect(d.resources.find((r) => r.name === "acme-db")!.warnings).toContain("protected: pulumi up refuses to delete acme-db until protect is removed in the program");
    expect(d.warnings[0]).toMatch(/does not destroy it/);
    expect(d.cost!.after).toBeUndefined();
    expect(d.cost!.before).toBeGreaterThan(0);
  });

  it("a stack file change that renders the same resources is planned and unchanged", () => {
    expect(stackOf("change a cell's stack file", "shared-prod-use1-02").status).toBe("unchanged");
    expect(report("change nothing the fleet uses").stacks).toEqual([]);
  });
});

// --- end to end: the copied project's own tenantctl, base in a git worktree ---------------------

function tenantctl(dir: string, args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((done) => {
    execFile(process.execPath, [join(dir, "bin", "tenantctl.mjs"), ...args], { cwd: dir, maxBuffer: 64 * 1024 * 1024 }, (err, stdout, stderr) => {
      done({ code: err ? Number((err as { code?: unknown }).code ?? 70) : 0, stdout, stderr });
    });
  });
}

describe("tenantctl plan --base end to end", () => {
  let e2e: TempRepo;
  beforeAll(() => {
    e2e = createTempRepo();
    SCENARIOS.find((s) => s.name === "re-place a tenant")!.apply(e2e);
    e2e.commit("re-place gamma-labs");
    SCENARIOS.find((s) => s.name === "edit infra")!.apply(e2e);
    e2e.commit("tag everything with a cost center");
  });
  afterAll(() => e2e?.cleanup());

  it("plans the base with that revision's own program, and writes the comment", async () => {
    const md = join(e2e.dir, "plan.md");
    const r = await tenantctl(e2e.dir, ["plan", "--base", "HEAD~1", "--stack", "dedicated-acme-prod", "--markdown", md, "--parallel", "1"]);
    expect([0, 1], r.stderr).toContain(r.code);
    expect(r.stderr).toContain("planning 1 stack at HEAD~1");
    expect(existsSync(md)).toBe(true);
    const text = readFileSync(md, "utf8");
    expect(text.startsWith("<!-- tenantctl-plan -->\n")).toBe(true);
    // Only the old program lacks the tag: had the base been rendered with this revision's code, nothing would change.
    expect(text).toContain("`tags.cost-center`: `(unset)` → `\"platform\"`");
    expect(text).not.toContain("rendered with this branch's program");
    expect(r.stdout).toMatch(/dedicated-acme-prod\s+changed\s+\+0 ~6 ±0 -0/);
    // The worktree is gone.
    expect(e2e.git("worktree", "list").trim().split("\n")).toHaveLength(1);
  }, 180_000);

  it("exits 2 on a bad ref, and on --markdown without --base", async () => {
    const bad = await tenantctl(e2e.dir, ["plan", "--base", "no-such-ref"]);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain('unknown git ref "no-such-ref"');
    const md = await tenantctl(e2e.dir, ["plan", "--markdown", "x.md", "--all"]);
    expect(md.code).toBe(2);
    expect(md.stderr).toContain("--markdown needs --base");
  }, 60_000);
});
