/**
 * A stopped control plane lets its process exit on its own: stop() closes every pool, socket,
 * timer and listener it opened (a bench run that never exited after writing its results found
 * connections left open).
 */
import { spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { makeFixtureRepo, type FixtureRepo } from "./support/repo.ts";
import { startTestPostgres, type TestPostgres } from "./support/postgres.ts";

let pgs: TestPostgres;
let repo: FixtureRepo;
let tmp: string;
beforeAll(async () => {
  pgs = await startTestPostgres();
  repo = makeFixtureRepo();
  tmp = mkdtempSync(join(tmpdir(), "tenancy-stop-"));
});
afterAll(async () => {
  await pgs?.stop();
  if (repo) rmSync(repo.dir, { recursive: true, force: true });
  if (tmp) rmSync(tmp, { recursive: true, force: true });
});

describe("shutdown", () => {
  it("after stop() the process exits by itself, with code 0", async () => {
    const input = { databaseUrl: await pgs.newDatabase(), repoDir: repo.dir, dataDir: join(tmp, "data"), stateDir: join(tmp, "state") };
    const child = spawn(process.execPath, ["--import", "tsx", resolve(import.meta.dirname, "support/stopChild.ts")], {
      env: { ...process.env, CHILD_INPUT: JSON.stringify(input) },
      stdio: ["ignore", "pipe", "inherit"],
    });
    let out = "";
    child.stdout.on("data", (c: Buffer) => (out += c.toString()));
    const exited = new Promise<number | null>((r) => child.once("exit", (code) => r(code)));
    // Bounded: a handle left open keeps the child alive and the test fails here, not by hanging.
    const timedOut = new Promise<"alive">((r) => setTimeout(() => r("alive"), 60_000).unref());
    const result = await Promise.race([exited, timedOut]);
    if (result === "alive") child.kill("SIGKILL");
    expect(out).toBe("stopped\n");
    expect(result).toBe(0);
  }, 90_000);
});
