/**
 * The real binary (`bin/tenantctl.mjs`, what `npx tenantctl` runs): it starts from a fresh node
 * process (the compiled dist/cli after `npm ci`, the sources through tsx when they changed since;
 * test/cli/startup.test.ts pins down which), and its exit codes and output reach the shell.
 * Everything else is tested in-process through main() for speed.
 */
import { spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { afterEach, beforeEach, expect, it } from "vitest";
import { FleetCopy, REPO } from "./fleetCopy.ts";

let fleet: FleetCopy;
beforeEach(() => {
  fleet = new FleetCopy();
});
afterEach(() => fleet.cleanup());

function tenantctl(...args: string[]) {
  const r = spawnSync(process.execPath, [join(REPO, "bin", "tenantctl.mjs"), ...args], {
    cwd: fleet.dir,
    encoding: "utf8",
    env: { ...process.env, TENANTCTL_DEBUG: "" },
    timeout: 60_000,
  });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

it("bin/tenantctl.mjs: exit 0 on the example fleet, 1 with one problem line on bad input, 2 on a usage error", () => {
  // From inside the fleet copy: the project is found from the working directory, paths print relative.
  expect(tenantctl("validate")).toEqual({ status: 0, stdout: "ok: 9 tenants, 10 stacks (4 cells)\n", stderr: "" });

  fleet.edit("tenants/freebie-one.yaml", "region: us-east-1", "region: ap-south-1");
  expect(tenantctl("validate")).toEqual({
    status: 1,
    stdout: "1 problem found\n",
    stderr: 'tenants/freebie-one.yaml:5: region: "ap-south-1" is not allowed; allowed regions: us-east-1, eu-west-1\n',
  });

  const usage = tenantctl("validate", "--no-such-flag");
  expect(usage.status).toBe(2);
  expect(usage.stderr).toMatch(/unknown option '--no-such-flag'/);
  expect(usage.stderr).not.toMatch(/\n\s+at /);
}, 180_000); // three cold node + tsx starts on a shared CI machine

it("plan renders in worker processes from a fleet outside the repository (no node_modules there)", () => {
  // The fleet copy lives in a temp dir: the workers must load tsx from this package, not from the cwd.
  const out = join(fleet.dir, "plan.json");
  const r = spawnSync(process.execPath, [join(REPO, "bin", "tenantctl.mjs"), "plan", "--stack", "shared-prod-use1-01", "--stack", "shared-prod-use1-02", "--json", out], {
    cwd: fleet.dir,
    encoding: "utf8",
    env: { ...process.env, TENANTCTL_DEBUG: "" },
    timeout: 120_000,
  });
  expect(r.stderr).not.toMatch(/renderer process exited/);
  expect(r.status).toBe(0);
  // The table row agrees with the plan document the same run wrote (the count itself is the
  // component tests' business: it moves with every resource a stack gains).
  const planned = (JSON.parse(readFileSync(out, "utf8")) as { stacks: { name: string; resources: unknown[] }[] }).stacks.find((s) => s.name === "shared-prod-use1-01");
  expect(planned?.resources.length).toBeGreaterThan(0);
  expect(r.stdout).toMatch(new RegExp(`^shared-prod-use1-01 +shared +2 +${planned!.resources.length} +0 +0$`, "m"));
  expect((JSON.parse(readFileSync(out, "utf8")) as { stacks: { name: string }[] }).stacks.map((s) => s.name)).toEqual(["shared-prod-use1-01", "shared-prod-use1-02"]);
}, 150_000);
