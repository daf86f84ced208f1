/**
 * `plan --base` renders the base (an in-memory fleet: the working tree's plus the files git says
 * differ) in a worker process beside the head's render in this process (cli/commands/plan.ts,
 * basePlanner; cli/affected/planBase.ts, concurrentBase). The result must be what the sequential,
 * in-process path gives: the report, the head's plan document, the placement problems, the text
 * and the pull-request comment, compared exactly. The real planner and policy pack run on the
 * example fleet in a temporary git repository.
 */
import { execFileSync } from "node:child_process";
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { planAgainstBase, renderText, type FleetPlanner } from "../../cli/affected/planBase.ts";
import { basePlanner, concurrentBaseWanted } from "../../cli/commands/plan.ts";
import { renderMarkdown } from "../../cli/plan/markdown.ts";
import { parsedFiles, requireFleet } from "../../infra/model/fleet.ts";
import { NEWCO } from "./affected-fixture/scenarios.ts";
import { PROJECT } from "./affected-fixture/repo.ts";

let dir: string;
const git = (...args: string[]) =>
  execFileSync("git", ["-c", "user.name=Test", "-c", "user.email=test@example.com", "-c", "commit.gpgsign=false", ...args], { cwd: dir, encoding: "utf8" });

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), "tenantctl-concurrent-"));
  for (const p of ["Pulumi.yaml", "tenants", "stacks"]) cpSync(join(PROJECT, p), join(dir, p), { recursive: true });
  git("init", "--quiet", "-b", "main");
  git("add", "-A");
  git("commit", "--quiet", "-m", "fleet");
  // A tenant joins a cell, another is renamed (in its cell and its other stacks): both sides render.
  writeFileSync(join(dir, "tenants", "newco.yaml"), NEWCO);
  const bigcorp = readFileSync(join(dir, "tenants", "bigcorp.yaml"), "utf8");
  writeFileSync(join(dir, "tenants", "bigcorp.yaml"), bigcorp.replace(/^displayName: .*$/m, "displayName: Bigcorp Renamed"));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

async function planned(concurrentBase: boolean, plan: FleetPlanner) {
  const cache = parsedFiles();
  const head = requireFleet({ projectDir: dir }, cache);
  const r = await planAgainstBase({ projectDir: dir, headFleet: head, baseRef: "HEAD", plan, cache, concurrentBase });
  return { ...r, text: renderText(r.report), markdown: renderMarkdown(r.report) };
}

describe("plan --base: the base rendered in a worker beside the head", () => {
  let sequential: Awaited<ReturnType<typeof planned>>;
  let concurrent: Awaited<ReturnType<typeof planned>>;
  const beside: boolean[] = [];
  beforeAll(async () => {
    sequential = await planned(false, basePlanner());
    const real = basePlanner();
    concurrent = await planned(true, (f, names, o) => {
      beside.push(o?.beside === true);
      return real(f, names, o);
    });
  }, 300_000);

  it("gives exactly the sequential in-process result", () => {
    expect(beside).toEqual([true, false]);
    expect(concurrent.report).toEqual(sequential.report);
    expect(concurrent.head).toEqual(sequential.head);
    expect(concurrent.placementChanges).toEqual(sequential.placementChanges);
    expect(concurrent.text).toBe(sequential.text);
    expect(concurrent.markdown).toBe(sequential.markdown);
  });

  it("the comparison sees what the change does: newco created in its cell, bigcorp's cell unchanged", () => {
    const cell = sequential.report.stacks.find((s) => s.stack === "shared-prod-use1-02")!;
    expect(cell.tenants.added).toEqual(["newco"]);
    // The rename changes no resource of bigcorp's cell: both sides of that stack render the same.
    expect(sequential.report.stacks.map((s) => [s.stack, s.status, s.counts])).toEqual([
      ["shared-prod-euw1-01", "unchanged", { create: 0, update: 0, replace: 0, delete: 0, same: 82 }],
      ["shared-prod-use1-02", "changed", { create: 12, update: 1, replace: 0, delete: 0, same: 86 }],
    ]);
  });

  it("negative control: a base rendered from a different fleet changes the result", async () => {
    const real = basePlanner();
    const wrong = await planned(true, (f, names, o) => (o?.beside ? real({ ...f, tenants: new Map([...f.tenants].filter(([id]) => id !== "bigcorp")) }, names, o) : real(f, names, o)));
    expect(wrong.text).not.toBe(sequential.text);
    expect(wrong.report.stacks.find((s) => s.stack === "shared-prod-euw1-01")!.tenants.added).toEqual(["bigcorp"]);
  }, 300_000);
});

describe("when plan --base renders the base beside the head", () => {
  it("only when TENANTCTL_PLAN_BASE_CONCURRENT is set, on two cores or more", () => {
    expect(concurrentBaseWanted({}, 4)).toBe(false);
    expect(concurrentBaseWanted({ TENANTCTL_PLAN_BASE_CONCURRENT: "1" }, 2)).toBe(true);
    expect(concurrentBaseWanted({ TENANTCTL_PLAN_BASE_CONCURRENT: "1" }, 1)).toBe(false);
  });
});
