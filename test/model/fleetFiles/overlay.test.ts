import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { MAX_FILE_BYTES } from "../../../infra/model/yamlFile.ts";
import { createAtomic, FileExistsError, fleetPath, validateWithChanges, writeAtomic } from "../../../infra/model/fleetFiles/index.ts";

const REPO = resolve(import.meta.dirname, "../../..");
const repo = { projectDir: REPO };
const freebie = readFileSync(join(REPO, "tenants/freebie-one.yaml"), "utf8");
const newco = freebie.replace("id: freebie-one", "id: newco").replace("Freebie One", "Newco");

describe("validateWithChanges: the fleet loader with changes laid over the files in memory", () => {
  it("sees an added tenant file without writing it", () => {
    const { fleet, problems } = validateWithChanges(repo, [{ "tenants/newco.yaml": newco }]);
    expect(problems).toEqual([]);
    expect([...fleet!.tenants.keys()]).toEqual([
      "acme", "bigcorp", "company-beta", "delta-health", "freebie-one", "freebie-two", "gamma-labs", "megacorp", "newco", "startup-alpha",
    ]);
    expect(fleet!.tenants.get("newco")!.tenant).toMatchObject({ deployment: "pooled", placement: { prod: "use1-01" } });
    expect(existsSync(join(REPO, "tenants/newco.yaml"))).toBe(false);
  });

  it("sees a deleted file as absent, and names files repository-relative", () => {
    const { fleet, problems } = validateWithChanges(repo, [{ "tenants/acme.yaml": null }]);
    expect(fleet).toBeUndefined();
    expect(problems).toEqual([
      "stacks/Pulumi.dedicated-acme-prod.yaml:2: (document): tenant acme has no file tenants/acme.yaml; remove this stack file (after destroying the stack) or fix the tenant",
    ]);
  });

  it("the tenant and its stack file deleted together validate (negative control of the line above)", () => {
    const { fleet, problems } = validateWithChanges(repo, [{ "tenants/acme.yaml": null, "stacks/Pulumi.dedicated-acme-prod.yaml": null }]);
    expect(problems).toEqual([]);
    expect(fleet!.tenants.has("acme")).toBe(false);
    expect(fleet!.stacks.has("dedicated-acme-prod")).toBe(false);
  });

  it("applies layers in order: a later layer wins", () => {
    const broken = newco.replace("tier: free", "tier: gold");
    expect(validateWithChanges(repo, [{ "tenants/newco.yaml": broken }, { "tenants/newco.yaml": newco }]).problems).toEqual([]);
    const [line] = validateWithChanges(repo, [{ "tenants/newco.yaml": newco }, { "tenants/newco.yaml": broken }]).problems;
    expect(line).toMatch(/^tenants\/newco\.yaml:4: tier: /);
  });

  it("refuses overlaid content over the file size limit, as it refuses such a file on disk", () => {
    const huge = `${newco}# ${"x".repeat(MAX_FILE_BYTES)}\n`;
    expect(validateWithChanges(repo, [{ "tenants/newco.yaml": huge }]).problems).toEqual([
      `tenants/newco.yaml:1: (document): file is larger than ${MAX_FILE_BYTES} bytes; tenant and stack files are a few hundred bytes: remove what does not belong in it`,
    ]);
  });

  it("ignores files outside tenants/ and stacks/ and below them (the archive)", () => {
    expect(validateWithChanges(repo, [{ ".github/CODEOWNERS": "garbage", "tenants/archive/acme.yaml": "not: [a tenant" }]).problems).toEqual([]);
  });

  it("with show: cwd names files as tenantctl prints them (relative to the working directory)", () => {
    const [line] = validateWithChanges(repo, [{ "tenants/acme.yaml": null }], { show: "cwd" }).problems;
    expect(line!.startsWith("stacks/Pulumi.dedicated-acme-prod.yaml:2: ")).toBe(process.cwd() === REPO);
    expect(line).toContain("Pulumi.dedicated-acme-prod.yaml:2: (document): tenant acme has no file tenants/acme.yaml");
  });

  it("maps tenants/ and stacks/ onto the fleet's own directories (tenantctl --tenants/--stacks)", () => {
    const dirs = { projectDir: "/p", tenantsDir: "/t", stacksDir: "/s" };
    expect([fleetPath(dirs, "tenants/a.yaml"), fleetPath(dirs, "stacks/Pulumi.x.yaml"), fleetPath(dirs, ".github/CODEOWNERS")]).toEqual([
      "/t/a.yaml", "/s/Pulumi.x.yaml", "/p/.github/CODEOWNERS",
    ]);
  });
});

describe("atomic writes", () => {
  let dir: string | undefined;
  afterEach(() => {
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it("writeAtomic creates directories, replaces, deletes on null, and leaves no temporary file", () => {
    dir = mkdtempSync(join(tmpdir(), "atomic-"));
    const file = join(dir, "stacks", "Pulumi.x.yaml");
    writeAtomic(file, "a\n");
    writeAtomic(file, "b\n");
    expect(readFileSync(file, "utf8")).toBe("b\n");
    expect(readdirSync(join(dir, "stacks"))).toEqual(["Pulumi.x.yaml"]);
    writeAtomic(file, null);
    writeAtomic(file, null);
    expect(readdirSync(join(dir, "stacks"))).toEqual([]);
  });

  it("createAtomic never overwrites: the second creator gets FileExistsError and the first content stays", () => {
    dir = mkdtempSync(join(tmpdir(), "atomic-"));
    const file = join(dir, "t.yaml");
    createAtomic(file, "first\n");
    expect(() => createAtomic(file, "second\n")).toThrow(FileExistsError);
    expect(readFileSync(file, "utf8")).toBe("first\n");
    expect(readdirSync(dir)).toEqual(["t.yaml"]);
  });
});
