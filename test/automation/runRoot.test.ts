/**
 * Where runs' working directories go (automation/git/runRoot.ts): TENANCY_RUN_DIR as given, else
 * the first memory file system (systemd's RUNTIME_DIRECTORY, /dev/shm) with room, in a private
 * directory of this user's, else the data directory; never a directory another user could plant.
 */
import { chmodSync, lstatSync, mkdirSync, mkdtempSync, rmSync, symlinkSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { chooseRunRoot, MIN_FREE_BYTES, TMPFS_MAGIC, type RunRootProbe } from "../../automation/git/runRoot.ts";

const EXT4_MAGIC = 0xef53;
let base: string;
let dataDir: string;

beforeEach(() => {
  base = mkdtempSync(join(tmpdir(), "tenancy-run-root-"));
  dataDir = join(base, "data");
});
afterEach(() => rmSync(base, { recursive: true, force: true }));

/** Candidates a and b under base, with the statfs answers given per candidate. */
function probe(fs: Record<"a" | "b", { type: number; free: number } | "missing">): RunRootProbe {
  for (const k of ["a", "b"] as const) if (fs[k] !== "missing") mkdirSync(join(base, k), { recursive: true });
  return {
    candidates: [{ dir: join(base, "a"), source: "RUNTIME_DIRECTORY" }, { dir: join(base, "b"), source: "/dev/shm" }],
    statfs: (path) => {
      const k = path === join(base, "a") ? "a" : "b";
      const v = fs[k];
      if (v === "missing") throw Object.assign(new Error(`ENOENT: ${path}`), { code: "ENOENT" });
      return v;
    },
  };
}
const tmpfs = { type: TMPFS_MAGIC, free: 1 << 30 };

describe("chooseRunRoot", () => {
  it("takes TENANCY_RUN_DIR as given, resolved", () => {
    expect(chooseRunRoot(dataDir, "relative/runs", probe({ a: tmpfs, b: tmpfs }))).toEqual({ dir: join(process.cwd(), "relative/runs"), source: "TENANCY_RUN_DIR", memory: true });
  });

  it("takes the first tmpfs with room, in a private directory named by user and data directory", () => {
    const root = chooseRunRoot(dataDir, undefined, probe({ a: tmpfs, b: tmpfs }));
    expect(root.source).toBe("RUNTIME_DIRECTORY");
    expect(root.dir).toMatch(new RegExp(`^${join(base, "a")}/tenancy-runs-${process.getuid!()}-[0-9a-f]{12}$`));
    expect(lstatSync(root.dir).mode & 0o777).toBe(0o700);
    // The same data directory gets the same directory again; another data directory another one.
    expect(chooseRunRoot(dataDir, undefined, probe({ a: tmpfs, b: tmpfs })).dir).toBe(root.dir);
    expect(chooseRunRoot(join(base, "other"), undefined, probe({ a: tmpfs, b: tmpfs })).dir).not.toBe(root.dir);
  });

  it("passes over a candidate that is no tmpfs, has too little room or does not exist", () => {
    expect(chooseRunRoot(dataDir, undefined, probe({ a: { type: EXT4_MAGIC, free: 1 << 30 }, b: tmpfs })).source).toBe("/dev/shm");
    expect(chooseRunRoot(dataDir, undefined, probe({ a: { type: TMPFS_MAGIC, free: MIN_FREE_BYTES - 1 }, b: tmpfs })).source).toBe("/dev/shm");
    expect(chooseRunRoot(dataDir, undefined, probe({ a: "missing", b: tmpfs })).source).toBe("/dev/shm");
    expect(chooseRunRoot(dataDir, undefined, probe({ a: "missing", b: { type: EXT4_MAGIC, free: 1 << 30 } }))).toEqual({ dir: join(dataDir, "trees"), source: "data directory", memory: false });
  });

  it("says whether the root is on a memory file system (its overlays are then removed with synchronous calls): a tmpfs candidate is; TENANCY_RUN_DIR and the data directory by their own file system", () => {
    expect(chooseRunRoot(dataDir, undefined, probe({ a: tmpfs, b: tmpfs })).memory).toBe(true);
    const ext4 = { type: EXT4_MAGIC, free: 1 << 30 };
    expect(chooseRunRoot(dataDir, join(base, "b", "runs"), probe({ a: ext4, b: ext4 })).memory).toBe(false);
    expect(chooseRunRoot(dataDir, join(base, "b", "runs"), probe({ a: ext4, b: tmpfs })).memory).toBe(true);
    // No candidate: the data directory, on a tmpfs (statfs answers for its path) or not.
    expect(chooseRunRoot(dataDir, undefined, { candidates: [], statfs: () => tmpfs })).toMatchObject({ source: "data directory", memory: true });
    expect(chooseRunRoot(dataDir, undefined, { candidates: [], statfs: () => ext4 })).toMatchObject({ source: "data directory", memory: false });
    // A directory not made yet: its nearest existing parent's file system.
    const seen: string[] = [];
    const parentOnly = (path: string) => {
      seen.push(path);
      if (path !== base) throw Object.assign(new Error(`ENOENT: ${path}`), { code: "ENOENT" });
      return tmpfs;
    };
    expect(chooseRunRoot(dataDir, join(base, "not", "yet"), { candidates: [], statfs: parentOnly }).memory).toBe(true);
    expect(seen).toEqual([join(base, "not", "yet"), join(base, "not"), base]);
    // A root whose file system cannot be read (not only absent) is not taken for memory.
    expect(chooseRunRoot(dataDir, join(base, "b"), { candidates: [], statfs: () => { throw Object.assign(new Error("EACCES"), { code: "EACCES" }); } }).memory).toBe(false);
  });

  it("never uses a directory others can write or a link planted in its place (negative controls: the data directory instead)", () => {
    const p = probe({ a: tmpfs, b: "missing" });
    const first = chooseRunRoot(dataDir, undefined, p);
    chmodSync(first.dir, 0o777);
    expect(chooseRunRoot(dataDir, undefined, p).source).toBe("data directory");
    rmSync(first.dir, { recursive: true });
    symlinkSync(join(base, "elsewhere"), first.dir);
    mkdirSync(join(base, "elsewhere"), { mode: 0o700 });
    expect(chooseRunRoot(dataDir, undefined, p).source).toBe("data directory");
    rmSync(first.dir);
    expect(chooseRunRoot(dataDir, undefined, p)).toEqual(first);
  });

  it("uses the first entry of a RUNTIME_DIRECTORY list, before /dev/shm", () => {
    mkdirSync(join(base, "r1"));
    const root = chooseRunRoot(dataDir, undefined, {
      env: { RUNTIME_DIRECTORY: `${join(base, "r1")}:${join(base, "r2")}` },
      statfs: (path) => (path === join(base, "r1") ? tmpfs : { type: EXT4_MAGIC, free: 1 << 30 }),
    });
    expect(root.source).toBe("RUNTIME_DIRECTORY");
    expect(root.dir.startsWith(`${join(base, "r1")}/tenancy-runs-`)).toBe(true);
  });
});
