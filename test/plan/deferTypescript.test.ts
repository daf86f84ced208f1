/**
 * plan/render/deferTypescript.ts: the Pulumi SDK's TypeScript compiler is not loaded by the
 * processes that render plans (the tenantctl process and its renderer workers), and still loads
 * when something serializes a function. Each case runs in a fresh process: this test process may
 * have loaded the SDK already.
 */
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { REPO } from "../cli/fleetCopy.ts";
import { DEFERRED_MARK } from "../../plan/render/deferTypescript.ts";

interface Probe { deferred: boolean; afterSdk: boolean; afterSerialize: boolean; text: string }

/** Loads the SDK in a fresh process, with or without deferTypescript() first, then serializes a function. */
function probe(defer: boolean): Probe {
  const script = `
    import { deferTypescript, typescriptLoaded } from ${JSON.stringify(join(REPO, "plan/render/deferTypescript.ts"))};
    const deferred = ${defer} ? deferTypescript() : false;
    const pulumi = await import("@pulumi/pulumi");
    const afterSdk = typescriptLoaded();
    const fn = await pulumi.runtime.serializeFunction(function answer() { return 41 + 1; });
    console.log(JSON.stringify({ deferred, afterSdk, afterSerialize: typescriptLoaded(), text: fn.text }));
  `;
  // Under `node -e` every built-in module is a getter on `global`, and the SDK's closure
  // serialization walks `global` (closure/createClosure.js, addGlobalInfoAsync): reading `sys` and
  // `wasi` there warns. Those two warnings are silenced; any other still fails the check below.
  const quiet = ["--disable-warning=DEP0025", "--disable-warning=ExperimentalWarning"];
  const r = spawnSync(process.execPath, [...quiet, "--import", "tsx", "--input-type=module", "-e", script], { cwd: REPO, encoding: "utf8", timeout: 60_000 });
  expect({ status: r.status, stderr: r.stderr }).toEqual({ status: 0, stderr: "" });
  return JSON.parse(r.stdout) as Probe;
}

describe("deferTypescript", () => {
  it("without it, loading the SDK loads the TypeScript compiler (the premise; negative control)", () => {
    const p = probe(false);
    expect({ deferred: p.deferred, afterSdk: p.afterSdk }).toEqual({ deferred: false, afterSdk: true });
  }, 60_000);

  it("with it, the SDK loads without the compiler, and serializing a function loads it and works", () => {
    const p = probe(true);
    expect({ deferred: p.deferred, afterSdk: p.afterSdk, afterSerialize: p.afterSerialize }).toEqual({ deferred: true, afterSdk: false, afterSerialize: true });
    // The serialized function is parsed by the compiler (closure/parseFunction.js): its body is there.
    expect(p.text).toContain("return 41 + 1;");
  }, 60_000);

  it("tenantctl plan --all: neither the command's process nor any renderer worker loads the compiler", () => {
    const dir = mkdtempSync(join(tmpdir(), "tenantctl-defer-ts-"));
    try {
      // A preload in every node process (NODE_OPTIONS reaches the workers) records at exit whether
      // the SDK's shim is in the module cache, and whether it is still the placeholder.
      const report = join(dir, "report.txt");
      const preload = join(dir, "report.cjs");
      writeFileSync(report, "");
      writeFileSync(preload, `
        const shim = require.resolve("@pulumi/pulumi/typescript-shim.js", { paths: [${JSON.stringify(REPO)}] });
        process.on("exit", () => {
          const m = require.cache[shim];
          const state = !m ? "absent" : m[Symbol.for(${JSON.stringify(DEFERRED_MARK.description)})] ? "deferred" : "loaded";
          require("node:fs").appendFileSync(${JSON.stringify(report)}, state + "\\n");
        });
      `);
      const out = join(dir, "plan.json");
      const r = spawnSync(process.execPath, [join(REPO, "bin/tenantctl.mjs"), "plan", "--all", "--parallel", "2", "--json", out], {
        cwd: REPO,
        encoding: "utf8",
        env: { ...process.env, NODE_OPTIONS: `--require ${preload}`, TENANTCTL_DEBUG: "" },
        timeout: 180_000,
      });
      expect(r.status, r.stderr).toBe(0);
      const planned = (JSON.parse(readFileSync(out, "utf8")) as { stacks: { resources: unknown[] }[] }).stacks;
      expect(planned.length).toBeGreaterThan(1);
      const states = readFileSync(report, "utf8").split("\n").filter(Boolean);
      // The command's process and its two workers; the workers render, so they hold the SDK.
      expect(states.length).toBeGreaterThanOrEqual(3);
      expect(states.filter((s) => s === "deferred").length).toBeGreaterThanOrEqual(2);
      expect(states.filter((s) => s === "loaded")).toEqual([]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }, 240_000);
});
