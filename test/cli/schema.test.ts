/**
 * The editor schema (tenants/tenant.schema.json): generated from the zod schema, committed,
 * referenced by every tenant file, and accepted by a real JSON-schema validator for every
 * example tenant. The tenant file reference in docs/tenant-files.md is generated too and must be current.
 */
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
// ajv arrives with fastify (a dependency); it is the validator editors' language servers resemble most.
import { Ajv2020 } from "ajv/dist/2020.js";
import addFormatsModule from "ajv-formats";
import { parse } from "yaml";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { tenantJsonSchema, tenantJsonSchemaText, type JsonSchema } from "../../infra/model/jsonSchema.ts";
import { loadPlatform } from "../../infra/model/platform.ts";
import { tenantReferenceMarkdown } from "../../infra/model/reference.ts";
import { RESERVED_IDS } from "../../infra/model/naming.ts";
import { SCHEMA_COMMENT } from "../../infra/model/fleetFiles/index.ts";
import { FleetCopy, REPO } from "./fleetCopy.ts";

const platform = loadPlatform(REPO);
const ctx = { regions: platform.regions, environments: platform.environments };
const committed = readFileSync(join(REPO, "tenants", "tenant.schema.json"), "utf8");

type AddFormats = (ajv: Ajv2020) => Ajv2020;
const addFormats: AddFormats =
  typeof addFormatsModule === "function" ? addFormatsModule : (addFormatsModule as { default: AddFormats }).default;

let compiled: ReturnType<Ajv2020["compile"]> | undefined;
function validator() {
  if (compiled) return compiled;
  const ajv = new Ajv2020({ allErrors: true, strict: true });
  addFormats(ajv);
  compiled = ajv.compile(JSON.parse(committed) as object);
  return compiled;
}

const tenantFiles = readdirSync(join(REPO, "tenants")).filter((f) => /\.ya?ml$/.test(f)).sort();

describe("tenants/tenant.schema.json", () => {
  it("is current: equal to what the zod schema and Pulumi.yaml generate (run `npx tenantctl schema --write`)", () => {
    expect(committed).toBe(tenantJsonSchemaText(ctx));
  });

  it("is referenced by the first line of every tenant file", () => {
    expect(tenantFiles.length).toBeGreaterThanOrEqual(8);
    for (const f of tenantFiles) {
      expect(readFileSync(join(REPO, "tenants", f), "utf8").split("\n")[0], f).toBe("# yaml-language-server: $schema=./tenant.schema.json");
    }
    expect(SCHEMA_COMMENT).toBe("# yaml-language-server: $schema=./tenant.schema.json");
  });

  it("does not require deployment (derived from the tier) and admits per branch only the tiers that may have it", () => {
    const schema = tenantJsonSchema(ctx);
    const branches = schema.oneOf ?? [];
    expect(branches).toHaveLength(2);
    const byDeployment = Object.fromEntries(
      branches.map((b) => [(b.properties?.deployment as JsonSchema).const, b] as const),
    );
    expect(byDeployment.pooled!.required).toEqual(["id", "displayName", "tier", "region", "environments", "placement"]);
    expect(byDeployment.dedicated!.required).toEqual(["id", "displayName", "tier", "region", "environments", "dedicated"]);
    expect((byDeployment.pooled!.properties!.tier as JsonSchema).enum).toEqual(["free", "standard", "enterprise"]);
    expect((byDeployment.dedicated!.properties!.tier as JsonSchema).enum).toEqual(["enterprise", "dedicated"]);
    expect((byDeployment.pooled!.properties!.region as JsonSchema).enum).toEqual(["us-east-1", "eu-west-1"]);
    const envNames = (byDeployment.pooled!.properties!.environments as JsonSchema).propertyNames as JsonSchema;
    expect(envNames.enum).toEqual(["prod", "staging", "dev"]);
    expect(((byDeployment.pooled!.properties!.id as JsonSchema).not as JsonSchema).enum).toEqual([...RESERVED_IDS].sort());
  });

  it.each(tenantFiles)("accepts the example tenant %s (a JSON-schema validator, as an editor would)", (f) => {
    const validate = validator();
    const ok = validate(parse(readFileSync(join(REPO, "tenants", f), "utf8")));
    expect(validate.errors ?? []).toEqual([]);
    expect(ok).toBe(true);
  });

  const base = { id: "newco", displayName: "NewCo", tier: "free", region: "us-east-1", environments: { prod: {} }, placement: { prod: "use1-01" } };
  it.each([
    ["a reserved id", { ...base, id: "admin" }],
    ["an unknown key", { ...base, colour: "blue" }],
    ["a free tenant with a dedicated deployment", { ...base, deployment: "dedicated" }],
    ["an undeclared environment", { ...base, environments: { qa: {} } }],
    ["a region not allowed", { ...base, region: "ap-south-1" }],
    ["a secret name climbing out of its namespace", { ...base, secrets: ["../x"] }],
    ["a pooled tenant with a dedicated block", { ...base, dedicated: { prod: { cidr: "10.70.0.0/16" } } }],
  ])("rejects %s", (_what, doc) => {
    const validate = validator();
    expect(validate(base)).toBe(true); // the baseline passes, so the rejection is the mutation's
    expect(validate(doc)).toBe(false);
  });
});

describe("tenantctl schema", () => {
  let fleet: FleetCopy;
  beforeEach(() => {
    fleet = new FleetCopy();
  });
  afterEach(() => fleet.cleanup());

  it("prints the schema", async () => {
    const r = await fleet.run(["schema"]);
    expect(r.code).toBe(0);
    expect(`${r.stdout.join("\n")}\n`).toBe(tenantJsonSchemaText(ctx));
  });

  it("--check passes on a current file, fails with one line on a stale one, and --write fixes it", async () => {
    expect(await fleet.run(["schema", "--check"])).toEqual({ code: 0, stdout: [`ok: ${fleet.shown("tenants/tenant.schema.json")} is current`], stderr: [] });
    fleet.write("tenants/tenant.schema.json", committed.replace('"title": "saas-tenancy tenant file"', '"title": "old"'));
    const stale = await fleet.run(["schema", "--check"]);
    expect(stale.code).toBe(1);
    expect(stale.stderr).toEqual([
      `${fleet.shown("tenants/tenant.schema.json")}:1: (document): is stale: it differs from the zod schema (infra/model/schema.ts) and Pulumi.yaml; run npx tenantctl schema --write and commit it`,
    ]);
    expect(await fleet.run(["schema", "--write"])).toEqual({ code: 0, stdout: [`wrote ${fleet.shown("tenants/tenant.schema.json")}`], stderr: [] });
    expect(fleet.read("tenants/tenant.schema.json")).toBe(committed);
    expect((await fleet.run(["schema", "--check"])).code).toBe(0);
  });

  it("follows the platform: a new region in Pulumi.yaml makes the committed schema stale", async () => {
    fleet.edit("Pulumi.yaml", "regions: [us-east-1, eu-west-1]", "regions: [us-east-1, eu-west-1, ap-southeast-2]");
    // A new region needs its hub (docs/network.md).
    fleet.edit("Pulumi.yaml", "      hubs:\n", "      hubs:\n        ap-southeast-2: { cidr: 10.254.0.0/16, azs: [ap-southeast-2a, ap-southeast-2b] }\n");
    expect((await fleet.run(["schema", "--check"])).code).toBe(1);
    await fleet.run(["schema", "--write"]);
    expect(fleet.read("tenants/tenant.schema.json")).toContain('"ap-southeast-2"');
  });

  it("refuses conflicting flags with a usage error", async () => {
    const r = await fleet.run(["schema", "--write", "--check"]);
    expect(r).toEqual({ code: 2, stdout: [], stderr: ["tenantctl: --write, --check and --markdown are exclusive; pass one"] });
  });

  it("--markdown prints the tenant file reference of docs/tenant-files.md", async () => {
    const r = await fleet.run(["schema", "--markdown"]);
    expect(r.code).toBe(0);
    expect(r.stdout.join("\n")).toBe(tenantReferenceMarkdown(ctx));
  });
});

describe("docs/tenant-files.md", () => {
  it("holds the current tenant file reference (regenerate with `npx tenantctl schema --markdown`)", () => {
    const doc = readFileSync(join(REPO, "docs/tenant-files.md"), "utf8");
    expect(doc).toContain(tenantReferenceMarkdown(ctx));
  });
});
