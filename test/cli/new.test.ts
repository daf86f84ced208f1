/** `tenantctl new` and `tenantctl routes` on a copy of the example fleet. */
import { existsSync } from "node:fs";
import { parse } from "yaml";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import type { Route } from "../../infra/model/routes.ts";
import { FleetCopy } from "./fleetCopy.ts";

let fleet: FleetCopy;
beforeEach(() => {
  fleet = new FleetCopy();
});
afterEach(() => fleet.cleanup());

async function routes(): Promise<Route[]> {
  const r = await fleet.run(["routes", "--json"]);
  expect(r.code).toBe(0);
  return JSON.parse(r.stdout.join("\n")) as Route[];
}

const SCHEMA_LINE = "# yaml-language-server: $schema=./tenant.schema.json";

describe("tenantctl new: pooled", () => {
  it("writes a tenant file in the least-loaded cell, which validates and is routed", async () => {
    const r = await fleet.run(["new", "newco", "--tier", "standard", "--name", "NewCo Ltd"]);
    expect(r).toEqual({ code: 0, stdout: [`wrote ${fleet.shown("tenants/newco.yaml")}`], stderr: [] });
    // use1-01 and use1-02 (prod, us-east-1) hold 2 tenants each, capacity 50: the tie goes to the lowest id.
    expect(fleet.read("tenants/newco.yaml")).toBe(
      [
        SCHEMA_LINE,
        "id: newco",
        "displayName: NewCo Ltd",
        "tier: standard",
        "region: us-east-1",
        "environments:",
        "  prod: {}",
        "placement:",
        "  prod: use1-01",
        "",
      ].join("\n"),
    );
    expect(await fleet.run(["validate"])).toEqual({ code: 0, stdout: ["ok: 10 tenants, 10 stacks (4 cells)"], stderr: [] });
    expect((await routes()).filter((x) => x.tenant === "newco")).toEqual([
      {
        tenant: "newco", env: "prod", url: "https://newco.tenancy.example.com", deployment: "pooled", stack: "shared-prod-use1-01",
        region: "us-east-1", lifecycle: "active", databaseSecretName: "tenancy/prod/tenants/newco/database",
      },
    ]);
  });

  it("places into the less loaded cell and in each environment separately", async () => {
    fleet.edit("stacks/Pulumi.shared-prod-use1-01.yaml", "capacity: 50", "capacity: 4"); // 2 of 4 used: 0.5 > 2/50
    await fleet.run(["new", "newco", "--tier", "free", "--env", "prod", "--env", "staging"]);
    expect(parse(fleet.read("tenants/newco.yaml"))).toMatchObject({ placement: { prod: "use1-02", staging: "use1-01" } });
    expect((await fleet.run(["validate"])).code).toBe(0);
  });

  it("places in the tenant's region", async () => {
    await fleet.run(["new", "eu-co", "--tier", "enterprise", "--region", "eu-west-1"]);
    expect(parse(fleet.read("tenants/eu-co.yaml"))).toMatchObject({ tier: "enterprise", region: "eu-west-1", placement: { prod: "euw1-01" } });
    expect((await routes()).find((x) => x.tenant === "eu-co")).toMatchObject({ stack: "shared-prod-euw1-01", deployment: "pooled" });
  });

  it("a full cell is never chosen; when every cell is full it opens a cell (docs/cells.md) and writes no tenant", async () => {
    fleet.edit("stacks/Pulumi.shared-prod-use1-01.yaml", "capacity: 50", "capacity: 2");
    fleet.edit("stacks/Pulumi.shared-prod-use1-02.yaml", "capacity: 50", "capacity: 2");
    const before = fleet.snapshot();
    const r = await fleet.run(["new", "newco", "--tier", "free"]);
    const cellFile = fleet.shown("stacks/Pulumi.shared-prod-use1-03.yaml");
    expect(r).toEqual({
      code: 1,
      stdout: [
        `opened cell use1-03 (prod/us-east-1, 10.3.0.0/16, us-east-1a, us-east-1b): wrote ${cellFile} with opening: true; ` +
          "commit it on its own and run its first pulumi up; once that succeeded remove opening: true, and tenants are placed there (docs/cells.md)",
      ],
      stderr: [
        `${fleet.shown("tenants/newco.yaml")}: placement: no open cell with room in prod/us-east-1: cell use1-03 is opening; place the tenant after the first successful ` +
          `\`pulumi up\` of shared-prod-use1-03 (then remove opening: true from ${cellFile}); nothing written for the tenant: run tenantctl new again then`,
      ],
    });
    const after = fleet.snapshot();
    after.delete("stacks/Pulumi.shared-prod-use1-03.yaml");
    expect(after).toEqual(before); // only the cell's stack file was written
  });
});

describe("tenantctl new: dedicated", () => {
  it("writes the tenant file with a free /16 per env and its stack files; validates; routed to its own stacks", async () => {
    const r = await fleet.run(["new", "bigco", "--tier", "dedicated", "--env", "prod", "--env", "staging"]);
    expect(r.code).toBe(0);
    expect(r.stdout).toEqual([
      `wrote ${fleet.shown("tenants/bigco.yaml")}`,
      `wrote ${fleet.shown("stacks/Pulumi.dedicated-bigco-prod.yaml")}`,
      `wrote ${fleet.shown("stacks/Pulumi.dedicated-bigco-staging.yaml")}`,
    ]);
    // 10.64-10.67 are taken by megacorp, acme and delta-health: the next free /16s follow.
    expect(parse(fleet.read("tenants/bigco.yaml"))).toEqual({
      id: "bigco", displayName: "bigco", tier: "dedicated", region: "us-east-1",
      environments: { prod: {}, staging: {} },
      dedicated: { prod: { cidr: "10.68.0.0/16" }, staging: { cidr: "10.69.0.0/16" } },
    });
    expect(fleet.read("tenants/bigco.yaml").split("\n")[0]).toBe(SCHEMA_LINE);
    expect(fleet.read("stacks/Pulumi.dedicated-bigco-prod.yaml")).toBe(
      "# Dedicated stack of tenant bigco (prod). Network and sizing are in tenants/bigco.yaml.\nconfig:\n  aws:region: us-east-1\n",
    );
    expect(parse(fleet.read("stacks/Pulumi.dedicated-bigco-staging.yaml"))).toEqual({ config: { "aws:region": "us-east-1" } });
    expect(await fleet.run(["validate"])).toEqual({ code: 0, stdout: ["ok: 10 tenants, 12 stacks (4 cells)"], stderr: [] });
    const mine = (await routes()).filter((x) => x.tenant === "bigco");
    expect(mine.map((x) => [x.env, x.url, x.deployment, x.stack])).toEqual([
      ["prod", "https://bigco.dedicated.tenancy.example.com", "dedicated", "dedicated-bigco-prod"],
      ["staging", "https://bigco.dedicated.staging.tenancy.example.com", "dedicated", "dedicated-bigco-staging"],
    ]);
  });

  it("an enterprise tenant may choose a dedicated deployment; the file says so explicitly", async () => {
    const r = await fleet.run(["new", "ent-co", "--tier", "enterprise", "--deployment", "dedicated", "--region", "eu-west-1"]);
    expect(r.code).toBe(0);
    expect(parse(fleet.read("tenants/ent-co.yaml"))).toMatchObject({ tier: "enterprise", deployment: "dedicated", region: "eu-west-1" });
    expect(parse(fleet.read("stacks/Pulumi.dedicated-ent-co-prod.yaml"))).toEqual({ config: { "aws:region": "eu-west-1" } });
    expect((await fleet.run(["validate"])).code).toBe(0);
  });

  it("--dry-run prints the files and writes nothing", async () => {
    const before = fleet.snapshot();
    const r = await fleet.run(["new", "bigco", "--tier", "dedicated", "--dry-run"]);
    expect(r.code).toBe(0);
    expect(r.stdout.join("\n")).toContain("cidr: 10.68.0.0/16");
    expect(r.stdout.join("\n")).toContain(`--- ${fleet.shown("stacks/Pulumi.dedicated-bigco-prod.yaml")}`);
    expect(fleet.snapshot()).toEqual(before);
  });

  it("fails with one line and writes nothing when the supernet is exhausted", async () => {
    fleet.edit("Pulumi.yaml", "dedicatedSupernet: 10.64.0.0/10", "dedicatedSupernet: 10.64.0.0/14"); // exactly the 4 /16s in use
    const before = fleet.snapshot();
    const r = await fleet.run(["new", "bigco", "--tier", "dedicated"]);
    expect(r).toEqual({
      code: 1,
      stdout: [],
      stderr: [`${fleet.shown("tenants/bigco.yaml")}: dedicated: the dedicated supernet 10.64.0.0/14 has no free /16 left`],
    });
    expect(fleet.snapshot()).toEqual(before);
  });
});

describe("tenantctl new: refusals", () => {
  it("refuses an existing id with exit 2 and writes nothing", async () => {
    const before = fleet.snapshot();
    const r = await fleet.run(["new", "acme", "--tier", "standard"]);
    expect(r).toEqual({
      code: 2,
      stdout: [],
      stderr: [`tenantctl: tenant acme already exists (${fleet.shown("tenants/acme.yaml")}); choose another id or edit the file`],
    });
    expect(fleet.snapshot()).toEqual(before);
  });

  it("refuses an id that exists as a .yml file", async () => {
    fleet.write("tenants/solo.yml", fleet.read("tenants/freebie-one.yaml").replace("id: freebie-one", "id: solo"));
    fleet.remove("tenants/freebie-one.yaml");
    expect((await fleet.run(["new", "solo", "--tier", "free"])).code).toBe(2);
    expect(existsSync(fleet.path("tenants/solo.yaml"))).toBe(false);
  });

  it("refuses when a dedicated tenant's stack file already exists", async () => {
    fleet.write("stacks/Pulumi.dedicated-bigco-prod.yaml", "config:\n  aws:region: us-east-1\n");
    const r = await fleet.run(["new", "bigco", "--tier", "dedicated"]);
    // The stray stack file already makes the fleet invalid (a stack file without its tenant).
    expect(r.code).toBe(1);
    expect(r.stderr).toEqual([
      `${fleet.shown("stacks/Pulumi.dedicated-bigco-prod.yaml")}:1: (document): tenant bigco has no file tenants/bigco.yaml; remove this stack file (after destroying the stack) or fix the tenant`,
    ]);
    expect(existsSync(fleet.path("tenants/bigco.yaml"))).toBe(false);
  });

  it.each([
    ["not a DNS label", "New_Co", /^tenantctl: tenant id "New_Co" is not a DNS label: use lower-case letters, digits and dashes, starting with a letter/],
    ["reserved", "admin", /^tenantctl: tenant id "admin" is reserved \(it collides with a platform host name or word\); choose another id$/],
    ["a path", "../evil", /^tenantctl: tenant id "\.\.\/evil" is not a DNS label: /],
  ])("refuses an id that is %s with exit 2 and writes nothing", async (_what, id, message) => {
    const before = fleet.snapshot();
    const r = await fleet.run(["new", id, "--tier", "free"]);
    expect(r.code).toBe(2);
    expect(r.stdout).toEqual([]);
    expect(r.stderr).toHaveLength(1);
    expect(r.stderr[0]).toMatch(message);
    expect(fleet.snapshot()).toEqual(before);
  });

  it.each([
    [["--tier", "gold"], /--tier/],
    [["--tier", "free", "--region", "ap-south-1"], /^tenantctl: --region ap-south-1: allowed regions are us-east-1, eu-west-1$/],
    [["--tier", "free", "--env", "qa"], /^tenantctl: --env qa: declared environments are prod, staging, dev$/],
    [["--tier", "free", "--deployment", "dedicated"], /^tenantctl: --deployment dedicated: tier free allows pooled$/],
    [[], /--tier/],
  ])("usage error %j: exit 2, nothing written", async (args, message) => {
    const before = fleet.snapshot();
    const r = await fleet.run(["new", "newco", ...args]);
    expect(r.code).toBe(2);
    expect(r.stderr.join("\n")).toMatch(message);
    expect(fleet.snapshot()).toEqual(before);
  });

  it("refuses to add to an invalid fleet (exit 1 with the fleet's problems)", async () => {
    fleet.edit("tenants/acme.yaml", "region: us-east-1", "region: ap-south-1");
    const before = fleet.snapshot();
    const r = await fleet.run(["new", "newco", "--tier", "free"]);
    expect(r.code).toBe(1);
    expect(r.stderr).toHaveLength(1);
    expect(r.stderr[0]).toMatch(/acme\.yaml:\d+: region: "ap-south-1" is not allowed/);
    expect(fleet.snapshot()).toEqual(before);
  });
});

describe("tenantctl routes", () => {
  it("prints one row per tenant and environment with URL, deployment, stack and region", async () => {
    const r = await fleet.run(["routes"]);
    expect(r.code).toBe(0);
    const [header, ...rows] = r.stdout.join("\n").split("\n");
    expect(header!.split(/\s+/)).toEqual(["TENANT", "ENV", "URL", "DEPLOYMENT", "STACK", "REGION", "LIFECYCLE"]);
    expect(rows).toHaveLength(12);
    expect(rows.find((l) => l.startsWith("delta-health "))!.split(/\s+/)).toEqual([
      "delta-health", "prod", "https://delta-health.dedicated.tenancy.example.com", "dedicated", "dedicated-delta-health-prod", "eu-west-1", "active",
    ]);
    expect(rows.find((l) => l.startsWith("gamma-labs ") && l.includes("staging"))!.split(/\s+/)).toEqual([
      "gamma-labs", "staging", "https://gamma-labs.staging.tenancy.example.com", "pooled", "shared-staging-use1-01", "us-east-1", "suspended",
    ]);
  });

  it("--json lists every tenant environment", async () => {
    const all = await routes();
    expect(all.map((x) => `${x.tenant}/${x.env}`)).toEqual([
      "acme/prod", "bigcorp/prod", "company-beta/prod", "delta-health/prod", "freebie-one/prod", "freebie-two/prod",
      "gamma-labs/prod", "gamma-labs/staging", "megacorp/prod", "megacorp/staging", "startup-alpha/prod", "startup-alpha/staging",
    ]);
    expect(all.find((x) => x.tenant === "bigcorp")).toEqual({
      tenant: "bigcorp", env: "prod", url: "https://bigcorp.tenancy.example.com", deployment: "pooled", stack: "shared-prod-euw1-01",
      region: "eu-west-1", lifecycle: "active", databaseSecretName: "tenancy/prod/tenants/bigcorp/database",
    });
  });

  it("refuses an invalid fleet with exit 1 and the problems", async () => {
    fleet.write("tenants/acme.yaml", "");
    const r = await fleet.run(["routes"]);
    expect(r.code).toBe(1);
    expect(r.stdout).toEqual([]);
    expect(r.stderr).toEqual([
      `${fleet.shown("tenants/acme.yaml")}:1: (document): file is empty; write the tenant's keys (see tenants/tenant.schema.json) or delete the file`,
    ]);
  });
});
