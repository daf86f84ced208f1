/**
 * The run tree cache (automation/git/treeCache.ts): one export per tree shared by concurrent runs,
 * a run's stack config file its own, a failed or crashed export never reused, different trees
 * never shared, unused exports bounded.
 */
import { spawnSync } from "node:child_process";
import { existsSync, lstatSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, realpathSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { basename, join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { GitRepo } from "../../automation/git/repo.ts";
import { SYNC_OVERLAY_ENTRIES, TreeCache, type TreeCacheOptions } from "../../automation/git/treeCache.ts";
import { makeFixtureRepo, type FixtureRepo } from "./support/repo.ts";

const STACK = "shared-prod-use1-01";
const STACK_FILE = `stacks/Pulumi.${STACK}.yaml`;

let repo: FixtureRepo;
let git: GitRepo;
let root: string;
let exported: string[];

function cache(over: Partial<TreeCacheOptions> = {}): TreeCache {
  return new TreeCache({
    root,
    exportTree: async (commit, dir) => {
      exported.push(commit);
      await git.exportTree(commit, dir);
    },
    treeOf: (commit) => git.treeOf(commit),
    ...over,
  });
}

beforeEach(() => {
  repo = makeFixtureRepo();
  git = new GitRepo(repo.dir, { name: "t", email: "t@test.invalid" });
  root = mkdtempSync(join(tmpdir(), "tenancy-trees-"));
  exported = [];
});

afterEach(() => {
  rmSync(repo.dir, { recursive: true, force: true });
  rmSync(root, { recursive: true, force: true });
});

const head = () => repo.git("rev-parse", "HEAD").trim();
/** Exports (not overlays, not temporaries) in the cache's own directory. */
const exportsIn = (c: TreeCache) => readdirSync(c.dir).filter((n) => n !== "runs" && !n.startsWith(".")).sort();

// Each test runs git (commits, exports): under a loaded machine that takes longer than the default 5 s.
describe("TreeCache", { timeout: 60_000 }, () => {
  it("exports a commit once for N concurrent runs; each run gets its own directory with its stack file a copy of its own", async () => {
    const c = cache();
    const commit = head();
    const leases = await Promise.all(Array.from({ length: 8 }, (_, i) => c.acquire(`run-${i}`, commit, [STACK])));
    expect(exported).toEqual([commit]);
    expect(c.exports).toBe(1);
    expect(new Set(leases.map((l) => l.dir)).size).toBe(8);
    expect(exportsIn(c)).toEqual([await git.treeOf(commit)]);
    const original = readFileSync(join(repo.dir, STACK_FILE), "utf8");
    for (const l of leases) {
      expect(readFileSync(join(l.dir, "Pulumi.yaml"), "utf8")).toBe(readFileSync(join(repo.dir, "Pulumi.yaml"), "utf8"));
      expect(readFileSync(join(l.dir, STACK_FILE), "utf8")).toBe(original);
      // The run's own stack file is a real file; the other stacks' files are links into the export.
      expect(lstatSync(join(l.dir, STACK_FILE)).isSymbolicLink()).toBe(false);
      expect(lstatSync(join(l.dir, "stacks/Pulumi.platform-us-east-1.yaml")).isSymbolicLink()).toBe(true);
      expect(lstatSync(join(l.dir, "tenants")).isSymbolicLink()).toBe(true);
    }
    // What the CLI writes into the run's stack config (pulumi stack init's salt) stays the run's.
    writeFileSync(join(leases[0]!.dir, STACK_FILE), `${original}encryptionsalt: v1:run0\n`);
    expect(readFileSync(join(leases[1]!.dir, STACK_FILE), "utf8")).toBe(original);
    expect(readFileSync(join(c.dir, await git.treeOf(commit), STACK_FILE), "utf8")).toBe(original);
    // Negative control: without naming the stack, its config file is the shared export's (a link).
    const shared = await c.acquire("run-shared", commit);
    expect(lstatSync(join(shared.dir, "stacks")).isSymbolicLink()).toBe(true);
    expect(realpathSync(join(shared.dir, STACK_FILE))).toBe(realpathSync(join(c.dir, await git.treeOf(commit), STACK_FILE)));
    for (const l of [...leases, shared]) await l.release();
    expect(exported).toHaveLength(1);
    expect(readdirSync(join(c.dir, "runs"))).toEqual([]);
    // Released twice: nothing more happens.
    await leases[0]!.release();
    // The next run at the commit (the next wave) reuses the kept export.
    const again = await c.acquire("run-next", commit, [STACK]);
    expect(exported).toHaveLength(1);
    await again.release();
    c.close();
    expect(existsSync(c.dir)).toBe(false);
  });

  it("makes each overlay of one real directory per level on the way to the run's file, a link per other entry and one copy; the export's stacks/ is listed once", async () => {
    const c = cache();
    const commit = head();
    const top = readdirSync(join(repo.dir)).filter((n) => n !== ".git").length;
    const stackFiles = readdirSync(join(repo.dir, "stacks")).length;
    expect(stackFiles).toBeGreaterThan(1);
    const a = await c.acquire("run-a", commit, [STACK]);
    const b = await c.acquire("run-b", commit, ["platform-us-east-1"]);
    // Per overlay: the overlay, its project directory p and p/stacks (3 directories), the link x to
    // the export, every other top entry and every other stack file a link, the run's stack file a
    // copy; stacks/ listed for the first overlay only.
    expect(c.overlayStats).toEqual({ dirs: 6, links: 2 * (1 + top - 1 + stackFiles - 1), copies: 2, listings: 1, sync: 2, async: 0 });
    // The links are short and relative, through x (one absolute link to the export per overlay).
    const overlay = join(c.runsDir, "run-a");
    expect(readlinkSync(join(overlay, "x"))).toBe(join(c.dir, await git.treeOf(commit)));
    expect(a.dir).toBe(join(overlay, "p"));
    expect(readlinkSync(join(a.dir, "tenants"))).toBe("../x/tenants");
    expect(readlinkSync(join(a.dir, "stacks/Pulumi.platform-us-east-1.yaml"))).toBe("../../x/stacks/Pulumi.platform-us-east-1.yaml");
    expect(realpathSync(join(a.dir, "stacks/Pulumi.platform-us-east-1.yaml"))).toBe(realpathSync(join(c.dir, await git.treeOf(commit), "stacks/Pulumi.platform-us-east-1.yaml")));
    expect(readdirSync(join(a.dir, "stacks")).sort()).toEqual(readdirSync(join(repo.dir, "stacks")).sort());
    expect(lstatSync(join(b.dir, "stacks/Pulumi.platform-us-east-1.yaml")).isSymbolicLink()).toBe(false);
    expect(lstatSync(join(b.dir, STACK_FILE)).isSymbolicLink()).toBe(true);
    // Negative control: a run naming no stack gets links only (no directory of its own but the overlay).
    const plain = await c.acquire("run-plain", commit);
    expect(c.overlayStats).toEqual({ dirs: 8, links: 2 * (1 + top - 1 + stackFiles - 1) + 1 + top, copies: 2, listings: 1, sync: 3, async: 0 });
    // A directory of the same name left behind (a release that failed) is made afresh.
    mkdirSync(join(c.runsDir, "run-left", "p", "stacks"), { recursive: true });
    writeFileSync(join(c.runsDir, "run-left", "p", "stacks", "stray.txt"), "left\n");
    const left = await c.acquire("run-left", commit, [STACK]);
    expect(existsSync(join(left.dir, "stacks", "stray.txt"))).toBe(false);
    expect(readFileSync(join(left.dir, STACK_FILE), "utf8")).toBe(readFileSync(join(repo.dir, STACK_FILE), "utf8"));
    for (const l of [a, b, plain, left]) await l.release();
    expect(readdirSync(join(c.dir, "runs"))).toEqual([]);
    c.close();
  });

  it("makes an overlay of more than SYNC_OVERLAY_ENTRIES entries asynchronously, the same overlay", async () => {
    const extra = SYNC_OVERLAY_ENTRIES + 1;
    for (let i = 0; i < extra; i++) writeFileSync(join(repo.dir, "stacks", `Pulumi.zz-${String(i).padStart(3, "0")}.yaml`), `config: {}\n`);
    repo.git("add", "--all");
    repo.git("commit", "--quiet", "-m", "a larger fleet");
    const c = cache();
    const big = await c.acquire("run-big", head(), [STACK]);
    expect(c.overlayStats).toMatchObject({ copies: 1, listings: 1, sync: 0, async: 1 });
    const names = readdirSync(join(big.dir, "stacks"));
    expect(names.sort()).toEqual(readdirSync(join(repo.dir, "stacks")).sort());
    expect(names.filter((n) => lstatSync(join(big.dir, "stacks", n)).isSymbolicLink())).toHaveLength(names.length - 1);
    expect(lstatSync(join(big.dir, STACK_FILE)).isSymbolicLink()).toBe(false);
    await big.release();
    expect(readdirSync(join(c.dir, "runs"))).toEqual([]);
    c.close();
  });

  it("removes a small overlay with one synchronous call when the runs root is a memory file system (removeSync), a large one and any other asynchronously; each is gone when its release resolves", async () => {
    const onMemory = cache({ removeSync: true });
    const small = await onMemory.acquire("run-small", head(), [STACK]);
    const overlays = onMemory.runsDir;
    expect(readdirSync(overlays)).toEqual(["run-small"]);
    await small.release();
    expect(readdirSync(overlays)).toEqual([]);
    expect(onMemory.removals).toEqual({ sync: 1, async: 0 });
    // Negative control: without removeSync, the same overlay is removed asynchronously.
    const onDisk = cache();
    const other = await onDisk.acquire("run-other", head(), [STACK]);
    await other.release();
    expect(readdirSync(onDisk.runsDir)).toEqual([]);
    expect(onDisk.removals).toEqual({ sync: 0, async: 1 });
    // An overlay of more than SYNC_OVERLAY_ENTRIES entries is removed asynchronously even on memory.
    for (let i = 0; i < SYNC_OVERLAY_ENTRIES + 1; i++) writeFileSync(join(repo.dir, "stacks", `Pulumi.zz-${String(i).padStart(3, "0")}.yaml`), `config: {}\n`);
    repo.git("add", "--all");
    repo.git("commit", "--quiet", "-m", "a larger fleet");
    const big = await onMemory.acquire("run-big", head(), [STACK]);
    await big.release();
    expect(readdirSync(overlays)).toEqual([]);
    expect(onMemory.removals).toEqual({ sync: 1, async: 1 });
    onMemory.close();
    onDisk.close();
  });

  it("links node_modules into the export so the program resolves its packages", async () => {
    const modules = join(root, "project-node_modules");
    mkdirSync(join(modules, "pkg"), { recursive: true });
    const c = cache({ links: [{ path: "node_modules", target: modules }, { path: "policy/node_modules", target: modules }, { path: "absent/node_modules", target: modules }] });
    const l = await c.acquire("run-1", head());
    expect(realpathSync(join(l.dir, "node_modules"))).toBe(realpathSync(modules));
    expect(realpathSync(join(l.dir, "policy", "node_modules"))).toBe(realpathSync(modules));
    expect(existsSync(join(l.dir, "absent"))).toBe(false);
    await l.release();
    c.close();
  });

  it("does not share between commits with different trees, and shares between commits with the same tree", async () => {
    const first = head();
    writeFileSync(join(repo.dir, "tenants", "zz-extra.txt"), "not a tenant\n");
    repo.git("add", "--all");
    repo.git("commit", "--quiet", "-m", "second tree");
    const second = head();
    repo.git("commit", "--quiet", "--allow-empty", "-m", "same tree as second");
    const third = head();
    const c = cache();
    const [a, b, d] = await Promise.all([c.acquire("a", first), c.acquire("b", second), c.acquire("d", third)]);
    // One export per tree: the first commit's, and one of the two commits sharing the second tree
    // (whichever of the concurrent acquires resolved its tree first).
    expect(exported).toHaveLength(2);
    expect(exported).toContain(first);
    expect([second, third]).toContain(exported.find((commit) => commit !== first));
    expect(existsSync(join(a.dir, "tenants", "zz-extra.txt"))).toBe(false);
    expect(readFileSync(join(b.dir, "tenants", "zz-extra.txt"), "utf8")).toBe("not a tenant\n");
    expect(realpathSync(join(d.dir, "tenants"))).toBe(realpathSync(join(b.dir, "tenants")));
    expect(d.tree).toBe(b.tree);
    expect(a.tree).not.toBe(b.tree);
    for (const l of [a, b, d]) await l.release();
    c.close();
  });

  it("never uses a failed export: the half-written directory is removed and the next run exports again", async () => {
    const commit = head();
    let fail = true;
    const c = cache({
      exportTree: async (sha, dir) => {
        exported.push(sha);
        await git.exportTree(sha, dir);
        if (fail) {
          fail = false;
          throw new Error("export killed half-way");
        }
      },
    });
    const failed = await Promise.allSettled([c.acquire("r1", commit), c.acquire("r2", commit)]);
    expect(failed.map((f) => f.status)).toEqual(["rejected", "rejected"]);
    expect((failed[0] as PromiseRejectedResult).reason).toEqual(new Error("export killed half-way"));
    expect(readdirSync(c.dir).filter((n) => n !== "runs")).toEqual([]);
    expect(readdirSync(join(c.dir, "runs"))).toEqual([]);
    expect(c.size).toBe(0);
    const ok = await c.acquire("r3", commit, [STACK]);
    expect(exported).toEqual([commit, commit]);
    expect(readFileSync(join(ok.dir, STACK_FILE), "utf8")).toBe(readFileSync(join(repo.dir, STACK_FILE), "utf8"));
    await ok.release();
    c.close();
  });

  it("at start removes what a dead process left (a half-written export, a complete one, overlays) and never reuses it; a live process's directory stays", async () => {
    const commit = head();
    const tree = await git.treeOf(commit);
    const dead = spawnSync(process.execPath, ["-e", ""]).pid;
    const deadDir = join(root, `${dead}-deadbeef`);
    mkdirSync(join(deadDir, `.tmp-1`, "tenants"), { recursive: true });
    writeFileSync(join(deadDir, ".tmp-1", "Pulumi.yaml"), "half");
    mkdirSync(join(deadDir, tree), { recursive: true });
    writeFileSync(join(deadDir, tree, "Pulumi.yaml"), "name: left-by-a-dead-process\n");
    mkdirSync(join(deadDir, "runs", "run-x"), { recursive: true });
    // Negative control: the directory of a process that runs (this test's parent) is not touched.
    const liveDir = join(root, `${process.ppid}-cafebabe`);
    mkdirSync(join(liveDir, tree), { recursive: true });
    const c = cache();
    const l = await c.acquire("run-1", commit);
    expect(exported).toEqual([commit]);
    expect(readFileSync(join(l.dir, "Pulumi.yaml"), "utf8")).toBe(readFileSync(join(repo.dir, "Pulumi.yaml"), "utf8"));
    expect(existsSync(deadDir)).toBe(false);
    expect(existsSync(join(liveDir, tree))).toBe(true);
    await l.release();
    c.close();
  });

  it("makes overlays under a runs root of their own: a dead process's overlays there removed at start, a live one's kept, the root removed at close when asked and empty", async () => {
    const runsRoot = join(root, "runs-root");
    const dead = spawnSync(process.execPath, ["-e", ""]).pid;
    mkdirSync(join(runsRoot, `${dead}-deadbeef`, "runs", "run-x", "p"), { recursive: true });
    const liveDir = join(runsRoot, `${process.ppid}-cafebabe`);
    mkdirSync(join(liveDir, "runs"), { recursive: true });
    const c = cache({ runsRoot, removeRunsRoot: true });
    const l = await c.acquire("run-1", head(), [STACK]);
    expect(l.dir.startsWith(`${runsRoot}/${basename(c.dir)}/runs/run-1/`)).toBe(true);
    expect(readFileSync(join(l.dir, STACK_FILE), "utf8")).toBe(readFileSync(join(repo.dir, STACK_FILE), "utf8"));
    // The export stays under root; nothing of the overlays is there.
    expect(readdirSync(c.dir)).toEqual([l.tree]);
    expect(existsSync(join(runsRoot, `${dead}-deadbeef`))).toBe(false);
    expect(existsSync(liveDir)).toBe(true);
    await l.release();
    c.close();
    // Another process's directory is still there: the root stays (negative control), then goes.
    expect(readdirSync(runsRoot)).toEqual([basename(liveDir)]);
    rmSync(liveDir, { recursive: true });
    const d = cache({ runsRoot, removeRunsRoot: true });
    await (await d.acquire("run-2", head())).release();
    d.close();
    expect(existsSync(runsRoot)).toBe(false);
  });

  it("keeps at most maxIdle unused exports, least recently used removed first, and never removes one in use", async () => {
    const commits = [head()];
    for (let i = 0; i < 3; i++) {
      writeFileSync(join(repo.dir, "tenants", `zz-${i}.txt`), `${i}\n`);
      repo.git("add", "--all");
      repo.git("commit", "--quiet", "-m", `tree ${i}`);
      commits.push(head());
    }
    const trees = await Promise.all(commits.map((x) => git.treeOf(x)));
    const c = cache({ maxIdle: 1 });
    const held = await c.acquire("held", commits[0]!);
    for (const [i, x] of commits.slice(1).entries()) {
      const l = await c.acquire(`r${i}`, x);
      await l.release();
    }
    // Settle the removals queued behind the exports' promises.
    await new Promise((r) => setImmediate(r));
    expect(exportsIn(c)).toEqual([trees[0]!, trees[3]!].sort());
    expect(readFileSync(join(held.dir, "tenants", "acme.yaml"), "utf8")).toContain("acme");
    await held.release();
    await new Promise((r) => setImmediate(r));
    // Released last, the held export is the one kept; the older idle one goes.
    expect(exportsIn(c)).toEqual([trees[0]!]);
    expect(c.size).toBe(1);
    c.close();
  });
});
