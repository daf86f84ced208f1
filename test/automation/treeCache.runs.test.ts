/**
 * Runs through the control plane share one export of their commit (automation/git/treeCache.ts):
 * every run of the stacks at one head exports the tree once; a new commit exports again. Live
 * PostgreSQL, real run workers, the Pulumi CLI test double.
 */
import { readdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { commandLog } from "./support/fakePulumiCli.ts";
import { startHarness, type Harness } from "./support/harness.ts";
import { startTestPostgres, type TestPostgres } from "./support/postgres.ts";

let pg: TestPostgres;
let h: Harness;

beforeAll(async () => {
  pg = await startTestPostgres();
  h = await startHarness({ pg, config: { maxParallelRuns: 4 }, start: { runs: true } });
});
afterAll(async () => {
  await h?.close();
  await pg?.stop();
});

const STACKS = ["platform-us-east-1", "shared-prod-use1-01", "shared-prod-use1-02", "shared-staging-use1-01", "dedicated-acme-prod"];

async function runAll(stacks: readonly string[]): Promise<void> {
  const queued = await h.cp.runs.enqueueAll(stacks, { reason: "tree cache test" });
  for (const r of queued) {
    const done = await h.cp.runs.waitFor(r.runId, { timeoutMs: 120_000, pollMs: 100 });
    expect(done.error).toBeNull();
    expect(done.state).toBe("succeeded");
  }
}

describe("runs at one commit", () => {
  it("export the commit's tree once; a run at a new commit exports again; every CLI command ran in a run's own overlay", async () => {
    const trees = h.cp.writer.trees;
    await runAll(STACKS);
    expect(trees.exports).toBe(1);
    const cwds = new Set(commandLog(h.stateDir).map((c) => c.cwd));
    expect(cwds.size).toBe(STACKS.length);
    for (const cwd of cwds) expect(cwd).toMatch(new RegExp(`^${trees.runsDir}/run-[^/]+/p$`));
    // Released: no overlay remains, the export stays for the next runs at the commit. The worker
    // removes its overlay after the finish is recorded (what the test waited for): wait for it.
    await expect.poll(() => readdirSync(trees.runsDir)).toEqual([]);
    expect(trees.size).toBe(1);

    await runAll(STACKS.slice(0, 2));
    expect(trees.exports).toBe(1);

    // Negative control: a new head is a new tree.
    writeFileSync(join(h.repo.dir, "README.txt"), "a change of the program's tree\n");
    h.repo.git("add", "README.txt");
    h.repo.git("commit", "--quiet", "-m", "new tree");
    await runAll(STACKS.slice(0, 2));
    expect(trees.exports).toBe(2);
  });
});
