/**
 * The compiled tenantctl (bin/build-cli.mjs -> dist/cli, run by bin/tenantctl.mjs): built here
 * into a scratch package (bin/ copied, sources and node_modules linked) so the repository's own
 * dist/ is never rebuilt under other tests. Which modules a command loads is read from an import
 * trace (importTrace/register.mjs), never from timings.
 */
import { spawnSync } from "node:child_process";
import { cpSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { FleetCopy, REPO } from "./fleetCopy.ts";

const TRACER = join(REPO, "test", "cli", "importTrace", "register.mjs");
/** The SDKs and servers validate must not load (docs/architecture.md, compiled CLI). */
const HEAVY = /\/node_modules\/(@pulumi\/|@aws-sdk\/|pg\/|pg-boss\/|fastify\/|stripe\/)/;

let pkg: string;
let fleet: FleetCopy;

beforeAll(() => {
  pkg = mkdtempSync(join(tmpdir(), "tenantctl-build-"));
  cpSync(join(REPO, "bin"), join(pkg, "bin"), { recursive: true });
  cpSync(join(REPO, "package.json"), join(pkg, "package.json"));
  for (const d of ["cli", "plan", "infra", "policy", "automation", "node_modules"]) symlinkSync(join(REPO, d), join(pkg, d));
  const build = spawnSync(process.execPath, [join(pkg, "bin", "build-cli.mjs")], { encoding: "utf8", timeout: 120_000 });
  expect(build.stderr).toMatch(/^build-cli: dist\/cli built from \d+ source files in \d+ ms\n$/);
  expect(build.status).toBe(0);
}, 150_000);
afterAll(() => rmSync(pkg, { recursive: true, force: true }));
beforeEach(() => {
  fleet = new FleetCopy();
});
afterEach(() => fleet.cleanup());

/** Runs the scratch package's tenantctl in the fleet copy with the import tracer. */
function traced(args: string[], env: Record<string, string> = {}) {
  const trace = join(fleet.dir, "imports.txt");
  writeFileSync(trace, "");
  const r = spawnSync(process.execPath, ["--import", TRACER, join(pkg, "bin", "tenantctl.mjs"), ...args], {
    cwd: fleet.dir,
    encoding: "utf8",
    env: { ...process.env, TENANTCTL_DEBUG: "", TENANTCTL_FROM_SOURCE: "", IMPORT_TRACE_FILE: trace, ...env },
    timeout: 120_000,
  });
  const urls = readFileSync(trace, "utf8").split("\n").filter(Boolean);
  const packages = [...new Set(urls.flatMap((u) => /\/node_modules\/((?:@[^/]+\/)?[^/]+)\//.exec(u)?.[1] ?? []))].sort();
  return { status: r.status, stdout: r.stdout, stderr: r.stderr, urls, packages };
}

const OK = "ok: 9 tenants, 10 stacks (4 cells)\n";

describe("compiled tenantctl", () => {
  it("validate runs from dist/cli and loads no package at all (commander, yaml, zod are bundled)", () => {
    const r = traced(["validate"]);
    expect({ status: r.status, stdout: r.stdout, stderr: r.stderr }).toEqual({ status: 0, stdout: OK, stderr: "" });
    expect(r.urls).toContain(`file://${pkg}/dist/cli/main.mjs`);
    expect(r.urls.filter((u) => u.endsWith(".ts"))).toEqual([]);
    expect(r.packages).toEqual([]);
  }, 120_000);

  it("plan loads the Pulumi SDK (the tracer sees heavy modules) and renders in the compiled worker", () => {
    const out = join(fleet.dir, "plan.json");
    const r = traced(["plan", "--stack", "shared-prod-use1-01", "--json", out]);
    expect(r.stderr).not.toMatch(/renderer process exited/);
    expect(r.status).toBe(0);
    // The table row agrees with the plan document the same run wrote (the count itself is the
    // component tests' business: it moves with every resource a stack gains).
    const planned = (JSON.parse(readFileSync(out, "utf8")) as { stacks: { name: string; resources: unknown[] }[] }).stacks.find((s) => s.name === "shared-prod-use1-01");
    expect(planned?.resources.length).toBeGreaterThan(0);
    expect(r.stdout).toMatch(new RegExp(`^shared-prod-use1-01 +shared +2 +${planned!.resources.length} +0 +0$`, "m"));
    expect(r.packages).toContain("@pulumi/pulumi");
    expect(r.packages).not.toContain("tsx");
    expect(r.urls.filter((u) => u.endsWith(".ts"))).toEqual([]);
    expect((JSON.parse(readFileSync(out, "utf8")) as { stacks: { name: string }[] }).stacks.map((s) => s.name)).toEqual(["shared-prod-use1-01"]);
  }, 150_000);

  it("a source file newer than the build: the sources run through tsx, silently off a terminal, and still load no heavy SDK", () => {
    const manifest = join(pkg, "dist", "cli", "manifest.json");
    const saved = readFileSync(manifest, "utf8");
    try {
      writeFileSync(manifest, JSON.stringify({ ...(JSON.parse(saved) as object), builtAt: 0 }));
      const r = traced(["validate"]);
      expect({ status: r.status, stdout: r.stdout, stderr: r.stderr }).toEqual({ status: 0, stdout: OK, stderr: "" });
      expect(r.urls).toContain(`file://${REPO}/cli/main.ts`);
      expect(r.urls.filter((u) => u.includes("/dist/cli/"))).toEqual([]);
      expect(r.packages).toContain("tsx");
      expect(r.packages.filter((p) => HEAVY.test(`/node_modules/${p}/`))).toEqual([]);
    } finally {
      writeFileSync(manifest, saved);
    }
  }, 120_000);

  it("no build: says so on stderr and runs the sources; TENANTCTL_FROM_SOURCE forces the sources", () => {
    const manifest = join(pkg, "dist", "cli", "manifest.json");
    const saved = readFileSync(manifest, "utf8");
    try {
      rmSync(manifest);
      const r = traced(["validate"]);
      expect(r.status).toBe(0);
      expect(r.stdout).toBe(OK);
      expect(r.stderr).toBe("tenantctl: dist/cli is not built (npm ci --ignore-scripts?); running the TypeScript sources through tsx (slower start). `npm run build` compiles it.\n");
    } finally {
      writeFileSync(manifest, saved);
    }
    const forced = traced(["validate"], { TENANTCTL_FROM_SOURCE: "1" });
    expect({ status: forced.status, stdout: forced.stdout, stderr: forced.stderr }).toEqual({ status: 0, stdout: OK, stderr: "" });
    expect(forced.urls).toContain(`file://${REPO}/cli/main.ts`);
    // Negative control: the same build, current again, is used.
    expect(traced(["validate"]).urls).toContain(`file://${pkg}/dist/cli/main.mjs`);
  }, 150_000);
});
