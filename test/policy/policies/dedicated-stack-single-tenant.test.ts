import { describe, expect, it } from "vitest";
import { add, dedicatedStack, find, sharedStack, urn, urnOf, violation, violationsAfter, violationsOf } from "../fixtures.ts";

const P = "dedicated-stack-single-tenant";
const D = dedicatedStack();
const S = sharedStack();
const ONLY = '; the dedicated stack of tenant "acme" holds only its own';

describe(P, () => {
  it("passes the clean dedicated stack, and does not apply to a cell holding several tenants", async () => {
    expect(await violationsOf(D)).toEqual([]);
    expect(await violationsOf(S)).toEqual([]);
  });

  it("reports a resource tagged with another tenant", async () => {
    expect(await violationsAfter(D, (s) => ((find(s, "acme-bucket").inputs.tags as Record<string, string>).tenant = "globex"))).toEqual([
      violation(P, urn(D, "acme-bucket"), 'tagged tenant "globex" in the dedicated stack of tenant "acme"'),
    ]);
  });

  it("reports a resource tagged shared", async () => {
    expect(await violationsAfter(D, (s) => ((find(s, "acme-flow-logs").inputs.tags as Record<string, string>).tenant = "shared"))).toEqual([
      violation(P, urn(D, "acme-flow-logs"), 'tagged tenant "shared" in the dedicated stack of tenant "acme"'),
    ]);
  });

  it("reports another tenant's secret namespace", async () => {
    expect(await violationsAfter(D, (s) => (find(s, "acme-key").inputs.description = "copy of tenancy/prod/tenants/globex/database"))).toEqual([
      violation(P, urn(D, "acme-key"), `input description names the secret namespace "tenancy/prod/tenants/globex" of tenant "globex"${ONLY}`),
    ]);
  });

  it("reports another tenant's KMS alias", async () => {
    expect(await violationsAfter(D, (s) => (find(s, "acme-key").inputs.description = "replaces alias/tenancy/staging/tenants/globex"))).toEqual([
      violation(P, urn(D, "acme-key"), `input description names the KMS alias "alias/tenancy/staging/tenants/globex" of tenant "globex"${ONLY}`),
    ]);
  });

  it("reports another tenant's DNS zone", async () => {
    expect(await violationsAfter(D, (s) => (find(s, "acme-ingress").inputs.records = ["globex.dedicated.tenancy.example.com"]))).toEqual([
      violation(P, urn(D, "acme-ingress"), `input records[0] names the DNS zone "globex.dedicated.tenancy.example.com" of tenant "globex"${ONLY}`),
    ]);
  });

  it("reports another tenant's IAM role", async () => {
    expect(await violationsAfter(D, (s) => (find(s, "acme-role").inputs.description = "same as tenancy-prod-t-globex"))).toEqual([
      violation(P, urn(D, "acme-role"), `input description names the IAM role "tenancy-prod-t-globex" of tenant "globex"${ONLY}`),
    ]);
  });

  it("reports another tenant's schema", async () => {
    const grant = { database: "app", role: "reporting", schema: "tenant_globex", objectType: "table", privileges: ["SELECT"] };
    expect(await violationsAfter(D, (s) => add(s, "postgresql:index/grant:Grant", "reporting-globex", grant))).toEqual([
      violation(P, urnOf(D.name, "postgresql:index/grant:Grant", "reporting-globex"), `input schema names Postgres identifier "tenant_globex"${ONLY}`),
    ]);
  });

  it("does not mistake a tenant id that extends the stack's tenant for it", async () => {
    expect(await violationsAfter(D, (s) => (find(s, "acme-key").inputs.description = "not tenancy/prod/tenants/acme-corp/x"))).toEqual([
      violation(P, urn(D, "acme-key"), `input description names the secret namespace "tenancy/prod/tenants/acme-corp" of tenant "acme-corp"${ONLY}`),
    ]);
  });
});
