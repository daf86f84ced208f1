/**
 * runtime-config-own-tenant on the real program's renders (test/policy/support/rendered.ts): every
 * example stack and every step of an upgrade pass; each failing case changes one document the way
 * a wrong copy or edit would, and the exact violations are asserted.
 */
import { beforeAll, describe, expect, it } from "vitest";
import type { Fleet } from "../../../infra/model/fleet.ts";
import type { RenderedStack } from "../../../plan/types.ts";
import { upgradingStartupAlpha } from "../../infra/support.ts";
import { documentOf, edited, editedDocument, fleetOf, policyViolations, renderAll, SSM } from "../support/rendered.ts";
import { violation } from "../fixtures.ts";

const P = "runtime-config-own-tenant";
const CELL = "shared-prod-use1-01";
const DED = "dedicated-acme-prod";
const fleet = fleetOf();
let renders: Map<string, RenderedStack>;

beforeAll(async () => {
  renders = await renderAll(fleet, fleet.stacks.keys());
}, 120_000);

const stack = (name: string) => renders.get(name)!;
const urnOf = (s: RenderedStack, name: string) => s.resources.find((r) => r.type === SSM && r.name === name)!.urn;
const check = (s: RenderedStack) => policyViolations(fleet, s, P);
/** The usage metric a pooled document names, as the policy prints it. */
const usage = (env: string, tenant: string) => JSON.stringify({ namespace: "tenancy/Tenants", name: "ObjectStorageBytes", dimensions: { Env: env, Tenant: tenant } });

describe(P, () => {
  it("passes every stack of the example fleet (10 stacks, a document per tenant env)", async () => {
    let documents = 0;
    for (const s of renders.values()) {
      expect(await check(s), s.name).toEqual([]);
      documents += s.resources.filter((r) => r.type === SSM && String(r.inputs.name).endsWith("/config")).length;
    }
    expect(documents).toBe([...fleet.tenants.values()].reduce((n, t) => n + Object.keys(t.tenant.environments).length, 0));
  });

  it("reports another tenant's document published under this tenant's name, naming whose data it carries", async () => {
    const cell = stack(CELL);
    const other = documentOf(cell, "tenant-startup-alpha-config");
    const s = edited(cell, SSM, "tenant-freebie-one-config", (p) => (p.insecureValue = JSON.stringify(other)));
    const u = urnOf(cell, "tenant-freebie-one-config");
    expect(await check(s)).toEqual([
      violation(P, u, 'runtime config of tenant "freebie-one": tenant is "startup-alpha" (names tenant "startup-alpha"), expected "freebie-one"'),
      violation(P, u, 'runtime config of tenant "freebie-one": url is "https://startup-alpha.tenancy.example.com" (names tenant "startup-alpha"), expected "https://freebie-one.tenancy.example.com"'),
      violation(P, u, 'runtime config of tenant "freebie-one": connectionDocument is "tenancy/prod/tenants/startup-alpha/database" (names tenant "startup-alpha"), expected "tenancy/prod/tenants/freebie-one/database"'),
      violation(P, u, 'runtime config of tenant "freebie-one": storage.prefix is "tenants/startup-alpha/" (names tenant "startup-alpha"), expected "tenants/freebie-one/"'),
      // The application would publish freebie-one's bytes as startup-alpha's: the wrong tenant's storage alarm.
      violation(P, u, `runtime config of tenant "freebie-one": storage.usageMetric is ${usage("prod", "startup-alpha")} (names tenant "startup-alpha"), expected ${usage("prod", "freebie-one")}`),
    ]);
  });

  it("reports one field naming another tenant, and a key the document does not define", async () => {
    const cell = stack(CELL);
    const u = urnOf(cell, "tenant-freebie-one-config");
    expect(await check(editedDocument(cell, "tenant-freebie-one-config", (d) => (d.connectionDocument = "tenancy/prod/tenants/acme/database")))).toEqual([
      violation(P, u, 'runtime config of tenant "freebie-one": connectionDocument is "tenancy/prod/tenants/acme/database" (names tenant "acme"), expected "tenancy/prod/tenants/freebie-one/database"'),
    ]);
    expect(await check(editedDocument(cell, "tenant-freebie-one-config", (d) => Object.assign(d, { peers: ["startup-alpha"], note: "x" })))).toEqual([
      violation(P, u, 'runtime config of tenant "freebie-one" has keys "peers", "note" the document does not define (RUNTIME_CONFIG_KEYS in infra/model/runtimeConfig.ts)'),
    ]);
  });

  it("reports a dedicated document pointing at a cell's bucket, and a pooled one at a tenant bucket", async () => {
    const ded = stack(DED);
    const cellBucket = "tenancy-prod-use1-01-data-111111111111";
    expect(await check(editedDocument(ded, "tenant-acme-config", (d) => ((d.storage as Record<string, unknown>).bucket = cellBucket)))).toEqual([
      violation(P, urnOf(ded, "tenant-acme-config"), `runtime config of tenant "acme": storage.bucket is "${cellBucket}", expected "tenancy-prod-acme-data-111111111111"`),
    ]);
    const cell = stack(CELL);
    expect(await check(editedDocument(cell, "tenant-freebie-one-config", (d) => ((d.storage as Record<string, unknown>).bucket = "tenancy-prod-acme-data-111111111111")))).toEqual([
      violation(P, urnOf(cell, "tenant-freebie-one-config"), `runtime config of tenant "freebie-one": storage.bucket is "tenancy-prod-acme-data-111111111111" (names tenant "acme"), expected "${cellBucket}"`),
    ]);
  });

  it("reports a pooled document without its usage metric, and a dedicated one with one", async () => {
    const cell = stack(CELL);
    const pooled = editedDocument(cell, "tenant-freebie-one-config", (d) => void delete (d.storage as Record<string, unknown>).usageMetric);
    expect(await check(pooled)).toEqual([
      violation(P, urnOf(cell, "tenant-freebie-one-config"), `runtime config of tenant "freebie-one": storage.usageMetric is missing, expected ${usage("prod", "freebie-one")}`),
    ]);
    const ded = stack(DED);
    const withMetric = editedDocument(ded, "tenant-acme-config", (d) => void ((d.storage as Record<string, unknown>).usageMetric = JSON.parse(usage("prod", "acme"))));
    expect(await check(withMetric)).toEqual([
      violation(P, urnOf(ded, "tenant-acme-config"), `runtime config of tenant "acme": storage.usageMetric is ${usage("prod", "acme")}, expected none (S3 measures a dedicated tenant's own bucket)`),
    ]);
  });

  it("reports a document of another env or region than its stack's", async () => {
    const cell = stack(CELL);
    const u = urnOf(cell, "tenant-freebie-one-config");
    expect(await check(editedDocument(cell, "tenant-freebie-one-config", (d) => Object.assign(d, { env: "staging", region: "eu-west-1" })))).toEqual([
      violation(P, u, 'runtime config of tenant "freebie-one": env is "staging", expected "prod"'),
      violation(P, u, 'runtime config of tenant "freebie-one": region is "eu-west-1", expected "us-east-1"'),
    ]);
    const renamed = edited(cell, SSM, "tenant-freebie-one-config", (p) => (p.name = "/tenancy/staging/tenants/freebie-one/config"));
    expect(await check(renamed)).toEqual([
      violation(P, u, "parameter \"/tenancy/staging/tenants/freebie-one/config\" is in env staging, stack shared-prod-use1-01 in env prod"),
      violation(P, u, 'runtime config of tenant "freebie-one": env is "prod", expected "staging"'),
      violation(P, u, 'runtime config of tenant "freebie-one": url is "https://freebie-one.tenancy.example.com", expected "https://freebie-one.staging.tenancy.example.com"'),
      violation(P, u, 'runtime config of tenant "freebie-one": connectionDocument is "tenancy/prod/tenants/freebie-one/database", expected "tenancy/staging/tenants/freebie-one/database"'),
      violation(P, u, 'runtime config of tenant "freebie-one": storage.bucket is "tenancy-prod-use1-01-data-111111111111", expected "tenancy-staging-use1-01-data-111111111111"'),
      violation(P, u, `runtime config of tenant "freebie-one": storage.usageMetric is ${usage("prod", "freebie-one")}, expected ${usage("staging", "freebie-one")}`),
    ]);
  });

  it("negative control: without the stack's AWS provider (an export that lacks it) the region is not compared; the rest still is", async () => {
    const cell = stack(CELL);
    const s = editedDocument(cell, "tenant-freebie-one-config", (d) => Object.assign(d, { region: "eu-west-1" }));
    s.resources = s.resources.filter((r) => r.type !== "pulumi:providers:aws");
    expect(await check(s)).toEqual([]);
  });

  it("reports a document tagged with another tenant, another tenant's document in a dedicated stack, and a platform stack's", async () => {
    const cell = stack(CELL);
    expect(await check(edited(cell, SSM, "tenant-freebie-one-config", (p) => ((p.tags as Record<string, string>).tenant = "startup-alpha")))).toEqual([
      violation(P, urnOf(cell, "tenant-freebie-one-config"), 'parameter "/tenancy/prod/tenants/freebie-one/config" lies in the namespace of tenant "freebie-one" but is tagged tenant "startup-alpha"'),
    ]);
    const ded = stack(DED);
    const foreign = edited(ded, SSM, "tenant-acme-config", (p) => {
      p.name = "/tenancy/prod/tenants/megacorp/config";
      (p.tags as Record<string, string>).tenant = "megacorp";
    });
    const u = urnOf(ded, "tenant-acme-config");
    expect(await check(foreign)).toEqual([
      violation(P, u, 'parameter "/tenancy/prod/tenants/megacorp/config" of tenant "megacorp" is in the dedicated stack of tenant "acme"'),
      violation(P, u, 'runtime config of tenant "megacorp": tenant is "acme" (names tenant "acme"), expected "megacorp"'),
      violation(P, u, 'runtime config of tenant "megacorp": url is "https://acme.dedicated.tenancy.example.com" (names tenant "acme"), expected "https://megacorp.dedicated.tenancy.example.com"'),
      violation(P, u, 'runtime config of tenant "megacorp": connectionDocument is "tenancy/prod/tenants/acme/database" (names tenant "acme"), expected "tenancy/prod/tenants/megacorp/database"'),
      violation(P, u, 'runtime config of tenant "megacorp": storage.bucket is "tenancy-prod-acme-data-111111111111" (names tenant "acme"), expected "tenancy-prod-megacorp-data-111111111111"'),
      violation(P, u, 'runtime config of tenant "megacorp": storage.prefix is "tenants/acme/" (names tenant "acme"), expected "tenants/megacorp/"'),
    ]);
    const platform = stack("platform-us-east-1");
    const like = cell.resources.find((r) => r.type === SSM && r.name === "tenant-freebie-one-config")!;
    const withDoc = structuredClone(platform);
    withDoc.resources.push({ ...structuredClone(like), urn: like.urn.replace(CELL, platform.name) });
    expect(await check(withDoc)).toEqual([
      violation(P, like.urn.replace(CELL, platform.name), 'parameter "/tenancy/prod/tenants/freebie-one/config" is a tenant document in platform stack platform-us-east-1; only the stack serving the tenant publishes it'),
    ]);
  });

  it("reports another parameter in a tenant's namespace, and a document that is not a JSON object", async () => {
    const cell = stack(CELL);
    const u = urnOf(cell, "tenant-freebie-one-config");
    expect(await check(edited(cell, SSM, "tenant-freebie-one-config", (p) => (p.name = "/tenancy/prod/tenants/freebie-one/extra")))).toEqual([
      violation(P, u, 'parameter "/tenancy/prod/tenants/freebie-one/extra" in the namespace of tenant "freebie-one" is not its runtime config (/tenancy/prod/tenants/freebie-one/config); the program publishes no other tenant parameter'),
    ]);
    expect(await check(edited(cell, SSM, "tenant-freebie-one-config", (p) => (p.insecureValue = "[1]")))).toEqual([
      violation(P, u, 'runtime config "/tenancy/prod/tenants/freebie-one/config" is not a JSON object'),
    ]);
  });
});

describe(`${P} through an upgrade (startup-alpha, prod, from cell use1-01)`, () => {
  function upgraded(phase?: string): Fleet {
    return upgradingStartupAlpha(phase);
  }

  it("each phase's cell and dedicated stack pass; the document is published by exactly one of them", async () => {
    for (const phase of ["provisioning", "copying", "cutover", "cleanup", undefined]) {
      const f = upgraded(phase);
      const rs = await renderAll(f, [CELL, "dedicated-startup-alpha-prod"]);
      const holders: string[] = [];
      for (const s of rs.values()) {
        expect(await policyViolations(f, s, P), `${phase} ${s.name}`).toEqual([]);
        if (s.resources.some((r) => r.type === SSM && r.inputs.name === "/tenancy/prod/tenants/startup-alpha/config")) holders.push(s.name);
      }
      expect(holders, String(phase)).toEqual([phase === "provisioning" || phase === "copying" ? CELL : "dedicated-startup-alpha-prod"]);
    }
  }, 120_000);
});
