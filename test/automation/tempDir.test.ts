/**
 * The control plane process's own temporary directory under `<dataDir>/work` (automation/tempDir.ts):
 * those of processes that are gone are removed at start-up, those of running ones kept.
 */
import { spawn, spawnSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { claimTempDir, WORK_DIR } from "../../automation/tempDir.ts";

let dataDir: string;
beforeEach(() => {
  dataDir = mkdtempSync(join(tmpdir(), "tenancy-tempdir-"));
});
afterEach(() => {
  rmSync(dataDir, { recursive: true, force: true });
});

/** The id of a process that has exited (not reused this soon: ids are handed out in turn). */
function deadPid(): number {
  const r = spawnSync(process.execPath, ["-e", "process.stdout.write(String(process.pid))"], { encoding: "utf8" });
  return Number(r.stdout);
}

describe("claimTempDir", () => {
  it("creates p<pid>-<random> under <dataDir>/work, private, and removes it on dispose", () => {
    const t = claimTempDir(dataDir);
    expect(t.dir).toMatch(new RegExp(`^${join(dataDir, WORK_DIR)}/p${process.pid}-[0-9a-f]{8}$`));
    expect(t.removed).toEqual([]);
    writeFileSync(join(t.dir, "eventlog.txt"), "x");
    t.dispose();
    expect(existsSync(t.dir)).toBe(false);
  });

  it("removes the directories of gone processes and of an earlier process with its own id; keeps a running process's and foreign entries", async () => {
    const work = join(dataDir, WORK_DIR);
    const gone = join(work, `p${deadPid()}-0123abcd`);
    const samePid = join(work, `p4242-89abcdef`);
    const live = spawn(process.execPath, ["-e", "setTimeout(() => {}, 60000)"], { stdio: "ignore" });
    try {
      const running = join(work, `p${live.pid}-deadbeef`);
      const foreign = join(work, "notes");
      for (const d of [gone, samePid, running, foreign]) mkdirSync(join(d, "automation-logs-up-x1y2z3"), { recursive: true });
      const t = claimTempDir(dataDir, 4242);
      expect(t.removed.sort()).toEqual([gone, samePid].sort());
      expect(readdirSync(work).sort()).toEqual([`p${live.pid}-deadbeef`, "notes", t.dir.slice(work.length + 1)].sort());
      t.dispose();
    } finally {
      live.kill("SIGKILL");
      await new Promise((r) => live.once("exit", r));
    }
  });
});
