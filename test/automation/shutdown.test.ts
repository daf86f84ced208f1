/**
 * A stopped control plane lets its process exit on its own: stop() closes every pool, socket,
 * timer and listener it opened (a bench run that never exited after writing its results found
 * connections left open).
 */
import { spawn } from "node:child_process";
import { chmodSync, existsSync, mkdtempSync, rmSync } from "node:fs";
import { join, resolve } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { reachableTempDir, serverUser } from "../../automation/db/pgAccess.ts";
import { makeFixtureRepo, type FixtureRepo } from "./support/repo.ts";
import { startTestPostgres, type TestPostgres } from "./support/postgres.ts";
import { childBundle } from "../support/childBundle.ts";

let pgs: TestPostgres;
let repo: FixtureRepo;
let tmp: string;
beforeAll(async () => {
  pgs = await startTestPostgres();
  repo = makeFixtureRepo();
  // The embedded server (run as the postgres user when root) must reach its data directory.
  tmp = mkdtempSync(join(reachableTempDir(serverUser()), "tenancy-stop-"));
  chmodSync(tmp, 0o755);
});
afterAll(async () => {
  await pgs?.stop();
  if (repo) rmSync(repo.dir, { recursive: true, force: true });
  if (tmp) rmSync(tmp, { recursive: true, force: true });
});

/** Runs support/stopChild.ts; resolves to its stdout and exit code, or "alive" when it did not exit in time. */
async function stopInChild(input: Record<string, unknown>): Promise<{ out: string; result: number | null | "alive" }> {
  const child = spawn(process.execPath, [await childBundle(resolve(import.meta.dirname, "support/stopChild.ts"))], {
    env: { ...process.env, CHILD_INPUT: JSON.stringify(input) },
    stdio: ["ignore", "pipe", "inherit"],
  });
  let out = "";
  child.stdout.on("data", (c: Buffer) => (out += c.toString()));
  const exited = new Promise<number | null>((r) => child.once("exit", (code) => r(code)));
  // Bounded (start-up included): a handle left open keeps the child alive and the test fails here, not by hanging.
  const timedOut = new Promise<"alive">((r) => setTimeout(() => r("alive"), 150_000).unref());
  const result = await Promise.race([exited, timedOut]);
  if (result === "alive") child.kill("SIGKILL");
  return { out, result };
}

describe("shutdown", () => {
  it("after stop() the process exits by itself, with code 0", async () => {
    const { out, result } = await stopInChild({ databaseUrl: await pgs.newDatabase(), repoDir: repo.dir, dataDir: join(tmp, "data"), stateDir: join(tmp, "state") });
    expect(out).toBe("stopped\n");
    expect(result).toBe(0);
  }, 180_000);

  it("with the embedded PostgreSQL and the lifecycle worker (the quick start's defaults) too, and the server is gone", async () => {
    const dataDir = join(tmp, "embedded");
    const { out, result } = await stopInChild({ repoDir: repo.dir, dataDir, stateDir: join(tmp, "state2"), lifecycle: true });
    expect(out).toBe("stopped\n");
    expect(result).toBe(0);
    // The server stopped with the process (its lock file goes at a clean shutdown).
    expect(existsSync(join(dataDir, "postgres", "data", "postmaster.pid"))).toBe(false);
    expect(existsSync(join(dataDir, "postgres", "data", "PG_VERSION"))).toBe(true);
  }, 200_000);
});
