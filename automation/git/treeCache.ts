/**
 * One export of a commit's tree per control-plane process, shared by every run at that commit.
 *
 * A rollout wave's runs all apply one composed commit (GitWriter.composeRun); exporting the whole
 * tree for each of them was the biggest per-run cost of a rollout (docs/rollouts.md, "Pace"). The
 * cache exports a tree once, keyed by its git tree id (content-addressed: two commits with the same
 * tree share one export), and hands each run a lease on it:
 *
 *  - The export is written into a temporary directory and renamed into place when complete, so a
 *    half-written export (the process was killed, git failed) is never used; a failed export is
 *    removed and the next run at that commit exports again.
 *  - Each run works in an overlay of its own: a directory whose entries are symlinks into the
 *    shared export, except the files the Pulumi CLI may write, which are copies. The overlay
 *    `<runs>/<name>` holds one absolute link `x` to the export and the run's project directory
 *    `p`, whose links are relative through `x` (`p/infra` -> `../x/infra`): short targets, kept in
 *    the inode itself on a tmpfs (under 128 bytes) and on ext4 (under 60), where an absolute path
 *    into the export took a page or a block per link. Overlays are made under the run root
 *    (runRoot.ts: a memory file system when there is one), exports under `root`. The CLI writes the
 *    selected stack's config file (`<stackConfigDir>/Pulumi.<stack>.yaml`: `pulumi stack init`
 *    stores the passphrase salt or the KMS key there, `pulumi config set` its values; see
 *    https://www.pulumi.com/docs/iac/concepts/secrets/#configuring-secrets-encryption), so the
 *    run's stacks' config files are copied into a real directory of the overlay; a write there never
 *    reaches the shared export or another run. The program reads the fleet from its working
 *    directory (infra/index.ts), i.e. through the overlay's links.
 *  - Leases are counted; an export nobody holds stays for the next run at that commit, up to
 *    `maxIdle` of them (least recently used removed first). An export in use is never removed.
 *  - Each process keeps its exports under `<root>/<pid>-<id>` and its overlays under
 *    `<runsRoot>/<pid>-<id>/runs`; at start, directories of processes that no longer run (whatever
 *    they were writing) are removed from both, and the process never reuses them. Directories of
 *    live processes (another control plane on the same data directory) are left alone.
 */
import { randomUUID } from "node:crypto";
import { copyFileSync, mkdirSync, readdirSync, rmdirSync, rmSync, symlinkSync } from "node:fs";
import { access, copyFile, mkdir, readdir, readFile, rename, rm, symlink } from "node:fs/promises";
import { dirname, join, normalize } from "node:path";
import { parse } from "yaml";
import { isProcessAlive } from "../processAlive.ts";

/** Exports kept when no run holds them (the next wave's runs at the same commit reuse them). */
export const DEFAULT_MAX_IDLE_TREES = 4;

/**
 * An overlay of at most this many entries (directories, links, copies) is made with synchronous
 * calls: each costs the event loop some microseconds, where an asynchronous one is a hop through
 * libuv's 4-thread pool (about a millisecond on a loaded host, queued behind every other run's),
 * and the run waits for its overlay. A larger one (a fleet of hundreds of stacks) is made
 * asynchronously, all of a level at once, so the loop is never held for long. A small overlay on a
 * memory file system (`removeSync`) is removed with one synchronous call in a later turn of the
 * event loop: 32 of them took 4 ms of the loop where fs.promises.rm, which walks the tree in
 * JavaScript with a callback per entry, took 15 to 25 (on an idle machine). Any other overlay is
 * removed asynchronously: on a disk, a synchronous removal held the loop (rmSync: 20 ms a run at
 * load 12, 4 s of a 200-run sample of the run-overhead bench, in which 32 workers' claims and
 * finishes waited; BENCHMARKS.md section 10). Nothing waits for a removal.
 */
export const SYNC_OVERLAY_ENTRIES = 64;

/** An overlay's project directory (the run's working directory) and its link to the export. */
const PROJECT = "p";
const EXPORT_LINK = "x";

export interface TreeCacheOptions {
  /** Directory holding every process's exports (`<dataDir>/trees`). */
  root: string;
  /** Writes the files of `commit` into `dir` (GitRepo.exportTree). */
  exportTree: (commit: string, dir: string) => Promise<void>;
  /** The tree id of `commit` (`git rev-parse <commit>^{tree}`). */
  treeOf: (commit: string) => Promise<string>;
  /** Symlinks added to every export: path inside the tree -> absolute target (the project's node_modules). Only where the parent exists. */
  links?: readonly { path: string; target: string }[];
  /** Directory holding every process's overlays (runRoot.ts chooseRunRoot); default `root`. */
  runsRoot?: string;
  /** Remove runsRoot at close when no other process has a directory there (one chosen by runRoot.ts, not a person's). */
  removeRunsRoot?: boolean;
  /** Exports kept while unused (default DEFAULT_MAX_IDLE_TREES). */
  maxIdle?: number;
  /** runsRoot is a memory file system: small overlays are removed with a synchronous call, in a later turn of the event loop (SYNC_OVERLAY_ENTRIES). */
  removeSync?: boolean;
}

export interface TreeLease {
  /** The run's project directory (`p` of its overlay of the shared export): its working directory. */
  dir: string;
  commit: string;
  tree: string;
  /** Removes the overlay and gives the export back; idempotent. */
  release(): Promise<void>;
}

interface Entry {
  tree: string;
  dir: string;
  refs: number;
  lastUsed: number;
  ready: Promise<Exported>;
  /** Entries of the export's directories, read once per export and shared by every overlay of it. */
  listings: Map<string, Promise<string[]>>;
}

interface Exported {
  top: string[];
  stackConfigDir: string;
}

export class TreeCache {
  private readonly own: string;
  private readonly entries = new Map<string, Entry>();
  private readonly trees = new Map<string, Promise<string>>();
  private started = false;
  /** Exports done by this process (tests and the bench count them). */
  exports = 0;
  /** What the overlays were made of, and the export listings read for them (tests and the bench count them). */
  readonly overlayStats = { dirs: 0, links: 0, copies: 0, listings: 0, sync: 0, async: 0 };
  /** How overlays were removed (removeSync; tests count them). */
  readonly removals = { sync: 0, async: 0 };

  /** This process's overlays: `<runsRoot>/<pid>-<id>/runs`. */
  private readonly runs: string;

  constructor(private readonly opts: TreeCacheOptions) {
    const name = `${process.pid}-${randomUUID().slice(0, 8)}`;
    this.own = join(opts.root, name);
    this.runs = join(opts.runsRoot ?? opts.root, name, "runs");
  }

  /** This process's directory under the root. */
  get dir(): string {
    return this.own;
  }

  /** The directory holding this process's overlays (one `<name>` each, its project directory `p`). */
  get runsDir(): string {
    return this.runs;
  }

  /** Removes what processes that no longer run left under the roots (once, before the first export). */
  private start(): void {
    if (this.started) return;
    this.started = true;
    for (const root of new Set([this.opts.root, this.opts.runsRoot ?? this.opts.root])) {
      mkdirSync(root, { recursive: true });
      for (const name of readdirSync(root)) {
        const pid = Number(/^(\d+)-/.exec(name)?.[1]);
        if (!Number.isInteger(pid) || pid === process.pid || isProcessAlive(pid)) continue;
        rmSync(join(root, name), { recursive: true, force: true });
      }
    }
    mkdirSync(this.runs, { recursive: true });
  }

  private treeOf(commit: string): Promise<string> {
    let tree = this.trees.get(commit);
    if (!tree) {
      tree = this.opts.treeOf(commit);
      tree.catch(() => this.trees.delete(commit));
      this.trees.set(commit, tree);
      if (this.trees.size > 256) this.trees.delete(this.trees.keys().next().value!);
    }
    return tree;
  }

  /**
   * Exports into a temporary directory, renamed to `<own>/<tree>` only when complete. Every file
   * operation is asynchronous: a wave's first runs wait on this export, and the others' claims and
   * finishes on the event loop.
   */
  private async exportOnce(tree: string, commit: string): Promise<Exported> {
    const tmp = join(this.own, `.tmp-${randomUUID()}`);
    const dir = join(this.own, tree);
    try {
      await this.opts.exportTree(commit, tmp);
      for (const { path, target } of this.opts.links ?? []) {
        const dst = join(tmp, path);
        if ((await exists(target)) && (await exists(dirname(dst))) && !(await exists(dst))) await symlink(target, dst, "dir");
      }
      await rm(dir, { recursive: true, force: true });
      await rename(tmp, dir);
    } catch (err) {
      await rm(tmp, { recursive: true, force: true });
      throw err;
    }
    this.exports++;
    return { top: await readdir(dir), stackConfigDir: await stackConfigDirOf(dir) };
  }

  /** The entries of `rel` in the export (read once per export; none when it has no such directory). */
  private listing(entry: Entry, rel: string): Promise<string[]> {
    let l = entry.listings.get(rel);
    if (!l) {
      this.overlayStats.listings++;
      l = readdir(join(entry.dir, rel)).catch((err: NodeJS.ErrnoException) => {
        if (err.code === "ENOENT" || err.code === "ENOTDIR") return [];
        entry.listings.delete(rel);
        throw err;
      });
      entry.listings.set(rel, l);
    }
    return l;
  }

  /**
   * A lease on the export of `commit` in a directory named `name` (unique per run attempt). The
   * config files of `stacks` are the overlay's own copies (the CLI may write them).
   */
  async acquire(name: string, commit: string, stacks: readonly string[] = []): Promise<TreeLease> {
    this.start();
    const tree = await this.treeOf(commit);
    let entry = this.entries.get(tree);
    if (!entry) {
      const created: Entry = { tree, dir: join(this.own, tree), refs: 0, lastUsed: Date.now(), ready: this.exportOnce(tree, commit), listings: new Map() };
      // A failed export is forgotten: the next run at this tree exports again.
      created.ready.catch(() => {
        if (this.entries.get(tree) === created) this.entries.delete(tree);
      });
      this.entries.set(tree, created);
      entry = created;
    }
    entry.refs++;
    const held = entry;
    let overlay: string | undefined;
    let made: "exists" | "sync" | "async";
    try {
      const { stackConfigDir } = await held.ready;
      // A large overlay is made asynchronously: a wave's runs make and remove their overlays at once,
      // and synchronous calls for a thousand entries each stalled the event loop every other run
      // waits on (docs/rollouts.md, "Pace"). A small one synchronously (SYNC_OVERLAY_ENTRIES).
      overlay = join(this.runs, name);
      const own = stacks.map((stack) => normalize(join(stackConfigDir, `Pulumi.${stack}.yaml`)).split("/").filter((p) => p !== "" && p !== "."));
      const at = overlay;
      made = await this.build(held, at, own);
      if (made === "exists") {
        // A directory of this name left by a release that failed: made afresh.
        await rm(at, { recursive: true, force: true });
        made = await this.build(held, at, own);
        if (made === "exists") throw new Error(`overlay ${at} exists again after it was removed`);
      }
      this.overlayStats[made]++;
    } catch (err) {
      if (overlay) await rm(overlay, { recursive: true, force: true }).catch(() => undefined);
      await this.giveBack(held);
      throw err;
    }
    const dir = overlay;
    const removeSync = this.opts.removeSync === true && made === "sync";
    let released = false;
    return {
      dir: join(dir, PROJECT),
      commit,
      tree,
      release: async () => {
        if (released) return;
        released = true;
        try {
          if (removeSync) {
            // After the turn in which the run ended: its finish and the next claims go first.
            await new Promise<void>((r) => setImmediate(r));
            this.removals.sync++;
            rmSync(dir, { recursive: true, force: true });
          } else {
            this.removals.async++;
            await rm(dir, { recursive: true, force: true });
          }
        } finally {
          await this.giveBack(held);
        }
      },
    };
  }

  /**
   * Makes the overlay: the link `x` to the export, and the project directory `p` with a link to
   * the export's entry (through `x`, relative) for every entry, except the directories on the way
   * to an own file (`own`: path parts), which are real directories filled the same way, and the
   * own files, which are copies (when the export has them; otherwise the CLI creates them there).
   * Only the directories on the way are listed, from the export's listings read once (listing()).
   * "exists", having made nothing, when the overlay's directory exists already; otherwise how it
   * was made (SYNC_OVERLAY_ENTRIES).
   * Two steps, each all at once: the real directories (mkdir -p), then every link and copy; each
   * step of asynchronous file operations is a hop through libuv's thread pool, which on a loaded
   * host costs about a millisecond whatever it holds.
   */
  private async build(entry: Entry, overlay: string, own: readonly (readonly string[])[]): Promise<"exists" | "sync" | "async"> {
    const dirs = new Set<string>([""]);
    const files = new Set<string>();
    for (const parts of own) {
      for (let i = 1; i < parts.length; i++) dirs.add(parts.slice(0, i).join("/"));
      files.add(parts.join("/"));
    }
    const leaves = [...dirs].filter((d) => ![...dirs].some((o) => o !== d && (d === "" ? o !== "" : o.startsWith(`${d}/`))));
    const entries: { rel: string; copy: boolean }[] = [];
    for (const d of dirs) {
      const here = d === "" ? (await entry.ready).top : await this.listing(entry, d);
      for (const name of here) {
        const rel = d === "" ? name : `${d}/${name}`;
        if (!dirs.has(rel)) entries.push({ rel, copy: files.has(rel) });
      }
    }
    const project = join(overlay, PROJECT);
    const small = leaves.length + entries.length <= SYNC_OVERLAY_ENTRIES;
    // The overlay's own directory first, alone: it exists already when a release failed.
    try {
      if (small) mkdirSync(overlay);
      else await mkdir(overlay);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === "EEXIST") return "exists";
      throw err;
    }
    // The overlay itself, `p` and the directories on the way; the link `x` and the entries.
    this.overlayStats.dirs += 1 + dirs.size;
    this.overlayStats.links++;
    for (const e of entries) this.overlayStats[e.copy ? "copies" : "links"]++;
    // A link's target, relative to its own directory, through `x`: `p/a/b` -> `../../x/a/b`.
    const target = (rel: string) => `${"../".repeat(rel.split("/").length)}${EXPORT_LINK}/${rel}`;
    if (small) {
      symlinkSync(entry.dir, join(overlay, EXPORT_LINK));
      for (const d of leaves) mkdirSync(join(project, d), { recursive: true });
      for (const e of entries) {
        if (e.copy) copyFileSync(join(entry.dir, e.rel), join(project, e.rel));
        else symlinkSync(target(e.rel), join(project, e.rel));
      }
      return "sync";
    }
    await Promise.all([symlink(entry.dir, join(overlay, EXPORT_LINK)), ...leaves.map((d) => mkdir(join(project, d), { recursive: true }))]);
    const made = entries.map((e) => (e.copy ? copyFile(join(entry.dir, e.rel), join(project, e.rel)) : symlink(target(e.rel), join(project, e.rel))));
    // Every operation settled before a failure is reported: the caller may remove the overlay and retry.
    const failed = (await Promise.allSettled(made)).find((r) => r.status === "rejected");
    if (failed) throw failed.reason;
    return "async";
  }

  private async giveBack(entry: Entry): Promise<void> {
    entry.refs--;
    entry.lastUsed = Date.now();
    await this.evict();
  }

  /** Removes unused exports beyond maxIdle, least recently used first (asynchronously: a tree can hold thousands of files). */
  private async evict(): Promise<void> {
    const idle = [...this.entries.values()].filter((e) => e.refs === 0).sort((a, b) => a.lastUsed - b.lastUsed);
    const excess = idle.length - (this.opts.maxIdle ?? DEFAULT_MAX_IDLE_TREES);
    const removals: Promise<void>[] = [];
    for (const e of idle.slice(0, Math.max(0, excess))) {
      this.entries.delete(e.tree);
      // Removed once its export settled (an idle entry's always has: it was leased and released).
      removals.push(e.ready.then(
        () => rm(e.dir, { recursive: true, force: true }),
        () => undefined,
      ));
    }
    await Promise.all(removals);
  }

  /** Exports this process holds (in use or idle). */
  get size(): number {
    return this.entries.size;
  }

  /** Removes this process's directories (shutdown). Leases still held lose their files. */
  close(): void {
    this.entries.clear();
    rmSync(this.own, { recursive: true, force: true });
    rmSync(dirname(this.runs), { recursive: true, force: true });
    if (this.opts.removeRunsRoot && this.opts.runsRoot) {
      try {
        rmdirSync(this.opts.runsRoot);
      } catch {
        // Another process's overlays are there (ENOTEMPTY), or it is gone already.
      }
    }
  }
}

const exists = (path: string) => access(path).then(() => true, () => false);

/** Pulumi.yaml's stackConfigDir (where the stacks' config files live), default the project directory. */
async function stackConfigDirOf(dir: string): Promise<string> {
  const text = await readFile(join(dir, "Pulumi.yaml"), "utf8").catch((err: NodeJS.ErrnoException) => {
    if (err.code === "ENOENT") return undefined;
    throw err;
  });
  if (text === undefined) return ".";
  const doc: unknown = parse(text);
  const v = typeof doc === "object" && doc !== null ? (doc as Record<string, unknown>).stackConfigDir : undefined;
  return typeof v === "string" && v !== "" ? v : ".";
}
