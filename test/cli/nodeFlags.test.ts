/**
 * The V8 flags of plan-rendering processes (plan/nodeFlags.ts) are the tenantctl binary's own: its
 * shebang carries them (what `npx tenantctl` runs through the bin link), the npm scripts that run
 * it with `node` pass them, and the shebang works as written (`env -S` splits it).
 */
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { expect, it } from "vitest";
import { PLAN_NODE_FLAGS } from "../../plan/nodeFlags.ts";
import { REPO } from "./fleetCopy.ts";

const BIN = join(REPO, "bin", "tenantctl.mjs");

it("bin/tenantctl.mjs's shebang runs node with PLAN_NODE_FLAGS, and so does every npm script that runs it with node", () => {
  expect(readFileSync(BIN, "utf8").split("\n")[0]).toBe(`#!/usr/bin/env -S node ${PLAN_NODE_FLAGS.join(" ")}`);
  const scripts = (JSON.parse(readFileSync(join(REPO, "package.json"), "utf8")) as { scripts: Record<string, string> }).scripts;
  const running = Object.entries(scripts).filter(([, cmd]) => /\bnode\b[^&|;]*bin\/tenantctl\.mjs/.test(cmd));
  expect(running.length).toBeGreaterThan(0);
  for (const [name, cmd] of running) expect({ name, cmd }).toEqual({ name, cmd: expect.stringContaining(`node ${PLAN_NODE_FLAGS.join(" ")} bin/tenantctl.mjs`) });
});

it("the binary started as a program (its shebang, as the bin link runs it) runs with the flags: env splits them and node takes them", () => {
  const dir = mkdtempSync(join(tmpdir(), "tenantctl-flags-"));
  try {
    // A preload (NODE_OPTIONS) writes the process's own node flags where the test reads them.
    const preload = join(dir, "execArgv.cjs");
    const seen = join(dir, "execArgv.json");
    writeFileSync(preload, `require("node:fs").writeFileSync(${JSON.stringify(seen)}, JSON.stringify(process.execArgv));\n`);
    const r = spawnSync(BIN, ["validate"], {
      cwd: REPO,
      encoding: "utf8",
      // The node of this test first on PATH: the shebang's `env` finds it.
      env: { ...process.env, PATH: `${join(process.execPath, "..")}:${process.env.PATH ?? ""}`, NODE_OPTIONS: `--require ${preload}`, TENANTCTL_DEBUG: "" },
      timeout: 60_000,
    });
    expect({ status: r.status, stdout: r.stdout }).toEqual({ status: 0, stdout: expect.stringMatching(/^ok: \d+ tenants, /) });
    expect(JSON.parse(readFileSync(seen, "utf8"))).toEqual(expect.arrayContaining([...PLAN_NODE_FLAGS]));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
