/**
 * The control plane's quick start, run exactly as docs/control-plane.md writes it (the first bash
 * block, read from the page, so this test breaks when the page changes): in a fresh clone of the
 * project with its packages installed, the commands before `npm run control-plane` run as one
 * bash script, then `npm run control-plane` starts the service with its defaults (embedded
 * PostgreSQL, its own working copy, the lifecycle worker on). It must answer /healthz, accept the
 * key the quick start made, leave the clone's branch alone, and stop on Ctrl-C (SIGINT to its
 * process group) in order, with nothing left running.
 *
 * Only PORT and TENANCY_METRICS_PORT are added, in the environment (which wins over the config
 * file): the documented 8080 and 9464 may be taken on a shared test machine.
 */
import { execFileSync, spawn } from "node:child_process";
import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { afterAll, describe, expect, it } from "vitest";
import { parse } from "yaml";
import { isProcessAlive } from "../../automation/processAlive.ts";
import { reachableTempDir, serverUser } from "../../automation/db/pgAccess.ts";
import { addKeyEntry, ApiKeyFileError } from "../../automation/http/apiKeys.ts";
import { listeningPortIn, PROJECT } from "./crash/controlPlaneProcess.ts";

const tmp = mkdtempSync(join(reachableTempDir(serverUser()), "tenancy-quickstart-"));
chmodSync(tmp, 0o755);
/** The embedded server the quick start started: stopped here if the control plane left it running (nothing may outlive the test). */
let leftServer = 0;
afterAll(async () => {
  if (leftServer && isProcessAlive(leftServer)) {
    process.kill(leftServer, "SIGINT");
    for (let i = 0; i < 100 && isProcessAlive(leftServer); i++) await sleep(100);
  }
  rmSync(tmp, { recursive: true, force: true });
});

/** The quick start: the first ```bash block of docs/control-plane.md, split at the command that starts the service. */
function quickStart(): { setup: string; start: string } {
  const page = readFileSync(join(PROJECT, "docs", "control-plane.md"), "utf8");
  const block = /```bash\n([\s\S]*?)```/.exec(page)?.[1];
  if (!block) throw new Error("docs/control-plane.md has no ```bash block");
  const lines = block.trimEnd().split("\n");
  const last = lines.at(-1)!;
  expect(last.replace(/\s+#.*$/, "")).toBe("npm run control-plane");
  return { setup: lines.slice(0, -1).join("\n"), start: last };
}

function groupAlive(pgid: number): boolean {
  try {
    process.kill(-pgid, 0);
    return true;
  } catch {
    return false;
  }
}

function childEnv(extra: Record<string, string>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (v === undefined || k === "DATABASE_URL" || k.startsWith("TENANCY_") || k === "PORT" || k === "LOG_LEVEL" || k.startsWith("npm_") || k.startsWith("VITEST")) continue;
    out[k] = v;
  }
  return { ...out, ...extra };
}

describe("the control plane's quick start", () => {
  it("runs as written in a fresh clone: healthy, the key works, the project's branch untouched, Ctrl-C stops it cleanly", async () => {
    const { setup, start } = quickStart();
    const clone = join(tmp, "saas-tenancy");
    execFileSync("git", ["clone", "--quiet", "--shared", PROJECT, clone]);
    // `npm ci` done: the packages of this checkout.
    symlinkSync(join(PROJECT, "node_modules"), join(clone, "node_modules"), "dir");
    const branchBefore = execFileSync("git", ["rev-parse", "HEAD"], { cwd: clone, encoding: "utf8" }).trim();

    // Ports the system chooses when the control plane binds them (its `listening` line names the
    // API's): a port chosen free here could be taken before the control plane binds it.
    const env = childEnv({ PORT: "0", TENANCY_METRICS_PORT: "0" });
    const printed = execFileSync("bash", ["-e", "-c", setup], { cwd: clone, env, encoding: "utf8" });
    const key = /\b(tcp_[0-9a-f]{12}_[\w-]+)/.exec(printed)?.[1];
    expect(key, printed).toBeDefined();
    const keys = parse(readFileSync(join(clone, "api-keys.yaml"), "utf8")) as { keys: { name: string; scopes: string[] }[] };
    expect(keys.keys.map((k) => [k.name, k.scopes])).toEqual([["ci", ["read", "runs"]]]);

    const child = spawn("bash", ["-c", start], { cwd: clone, env, detached: true, stdio: ["ignore", "pipe", "pipe"] });
    let out = "";
    child.stdout.on("data", (c: Buffer) => (out += c.toString()));
    child.stderr.on("data", (c: Buffer) => (out += c.toString()));
    // "close": every process holding its output pipes (npm, tsx, the control plane) is done writing.
    const exited = new Promise<number | null>((r) => child.once("close", (code) => r(code)));
    let gone = false;
    void exited.then(() => (gone = true));
    let port: number | undefined;
    try {
      const deadline = Date.now() + 170_000;
      let healthy = false;
      while (!healthy) {
        if (gone) throw new Error(`npm run control-plane exited:\n${out.slice(-4000)}`);
        if (Date.now() > deadline) throw new Error(`not healthy in time:\n${out.slice(-4000)}`);
        port ??= listeningPortIn(out);
        healthy = port !== undefined && (await fetch(`http://127.0.0.1:${port}/healthz`).then((r) => r.status === 200, () => false));
        if (!healthy) await sleep(250);
      }
      // The key the quick start made is accepted (404: an unknown run, past authentication); no key is refused.
      expect((await fetch(`http://127.0.0.1:${port}/api/runs/00000000-0000-4000-8000-000000000000`, { headers: { "x-api-key": key! } })).status).toBe(404);
      expect((await fetch(`http://127.0.0.1:${port}/api/runs/00000000-0000-4000-8000-000000000000`)).status).toBe(401);
      expect(out).toContain("lifecycle worker started");
      const pg = join(clone, ".control-plane", "postgres");
      const cluster = existsSync(join(pg, "location")) ? readFileSync(join(pg, "location"), "utf8").trim() : pg;
      leftServer = Number(readFileSync(join(cluster, "data", "postmaster.pid"), "utf8").split("\n")[0]);
      expect(out).toContain("cloned the project's committed branch as this control plane's own working copy");
    } finally {
      // Ctrl-C: SIGINT to the foreground process group (npm, tsx, the control plane).
      if (!gone) process.kill(-child.pid!, "SIGINT");
    }
    // npm itself dies of the SIGINT (as in a terminal); the control plane below it stops in order
    // and every process of the group ends within the bound.
    await exited;
    const deadline = Date.now() + 60_000;
    while (groupAlive(child.pid!) && Date.now() < deadline) await sleep(100);
    const left = groupAlive(child.pid!);
    if (left) process.kill(-child.pid!, "SIGKILL");
    expect(left, `processes left after Ctrl-C:\n${out.slice(-3000)}`).toBe(false);
    expect(out).not.toContain("shutdown failed");

    // Its own working copy, on the clone's branch; the clone itself untouched; the server stopped.
    const wc = join(clone, ".control-plane", "working-copy");
    expect(execFileSync("git", ["rev-parse", "HEAD"], { cwd: wc, encoding: "utf8" }).trim()).toBe(branchBefore);
    expect(execFileSync("git", ["remote"], { cwd: wc, encoding: "utf8" }).trim()).toBe("project");
    expect(execFileSync("git", ["rev-parse", "HEAD"], { cwd: clone, encoding: "utf8" }).trim()).toBe(branchBefore);
    const postgresPid = leftServer;
    expect(postgresPid).toBeGreaterThan(0);
    for (let i = 0; i < 100 && isProcessAlive(postgresPid); i++) await sleep(100);
    expect(isProcessAlive(postgresPid), `the embedded PostgreSQL server still runs:\n${out.slice(-3000)}`).toBe(false);
    expect(existsSync(join(clone, ".control-plane", "postgres", "data", "postmaster.pid")), "the server did not shut down cleanly").toBe(false);
  }, 240_000);

  it("hash-api-key --keys-file adds to a keys file, keeping what is there, and refuses a second key of one name", () => {
    const file = join(tmp, "keys.yaml");
    writeFileSync(file, "# who may call the API\nkeys:\n  - name: old\n    hash: sha256:00\n    scopes: [read]\n");
    addKeyEntry(file, { name: "ci", id: "0123456789ab", hash: "sha256:11", scopes: ["read", "runs"] });
    const text = readFileSync(file, "utf8");
    expect(text.startsWith("# who may call the API\n")).toBe(true);
    expect((parse(text) as { keys: unknown[] }).keys).toEqual([
      { name: "old", hash: "sha256:00", scopes: ["read"] },
      { name: "ci", id: "0123456789ab", hash: "sha256:11", scopes: ["read", "runs"] },
    ]);
    expect(() => addKeyEntry(file, { name: "ci", id: "ffffffffffff", hash: "sha256:22", scopes: ["read"] })).toThrow(
      new ApiKeyFileError(`${file}: already has a key named ci; choose another NAME or remove that entry first`),
    );
    expect(readFileSync(file, "utf8")).toBe(text);
    writeFileSync(file, "- not a keys file\n");
    expect(() => addKeyEntry(file, { name: "ci", id: "0123456789ab", hash: "sha256:11", scopes: ["read"] })).toThrow(
      new ApiKeyFileError(`${file}: expected a mapping with "keys:"`),
    );
  });
});
