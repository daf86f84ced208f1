import { describe, expect, it } from "vitest";
import { analyzeResources } from "../../../plan/analyze.ts";
import { dedicatedStack, find, sharedStack, urn, urnOf, violation, violationsAfter, violationsOf } from "../fixtures.ts";

const P = "dns-tenant-names";
const D = dedicatedStack();
const S = sharedStack();

describe(P, () => {
  it("passes pooled names, the delegated zone with its records, and the private zone", async () => {
    expect(await violationsOf(S)).toEqual([]);
    expect(await violationsOf(D)).toEqual([]);
  });

  it("reports a pooled record for a tenant that is not in the cell", async () => {
    expect(await violationsAfter(S, (s) => (find(s, "globex-dns").inputs.name = "hooli.tenancy.example.com"))).toEqual([
      violation(P, urn(S, "globex-dns"), 'record "hooli.tenancy.example.com" names "hooli", which is not a tenant of this stack'),
    ]);
  });

  it("reports a pooled record that is not <tenant>.<domain>", async () => {
    expect(await violationsAfter(S, (s) => (find(s, "globex-dns").inputs.name = "api.globex.tenancy.example.com"))).toEqual([
      violation(P, urn(S, "globex-dns"), 'record "api.globex.tenancy.example.com" is not of the form <tenant>.tenancy.example.com'),
    ]);
    expect(await violationsAfter(S, (s) => (find(s, "globex-dns").inputs.name = "globex.dedicated.tenancy.example.com."))).toEqual([
      violation(P, urn(S, "globex-dns"), 'record "globex.dedicated.tenancy.example.com" is not of the form <tenant>.tenancy.example.com'),
    ]);
  });

  it("reports a pooled name whose TTL is above TENANT_RECORD_TTL, and passes one at or below it", async () => {
    expect(await violationsAfter(S, (s) => (find(s, "globex-dns").inputs.ttl = 3600))).toEqual([
      violation(
        P, urn(S, "globex-dns"),
        'record "globex.tenancy.example.com" has a TTL of 3600 s; a tenant\'s pooled name keeps at most 60 s (TENANT_RECORD_TTL, infra/model/dnsTargets.ts): ' +
          "an upgrade or a cell move re-points it, and resolvers keep the old answer for the TTL after the switch",
      ),
    ]);
    expect(await violationsAfter(S, (s) => (find(s, "globex-dns").inputs.ttl = 61))).toHaveLength(1);
    expect(await violationsAfter(S, (s) => (find(s, "globex-dns").inputs.ttl = 60))).toEqual([]);
    expect(await violationsAfter(S, (s) => (find(s, "globex-dns").inputs.ttl = 30))).toEqual([]);
  });

  it("reports a record outside the env's domain", async () => {
    expect(await violationsAfter(S, (s) => (find(s, "globex-dns").inputs.name = "globex.example.org"))).toEqual([
      violation(P, urn(S, "globex-dns"), 'record "globex.example.org" is outside the domain "tenancy.example.com" of env prod'),
    ]);
    const stack = "shared-staging-use1-01";
    const secret = { urn: urnOf(stack, "aws:secretsmanager/secret:Secret", "globex-db"), type: "aws:secretsmanager/secret:Secret", name: "globex-db", inputs: { name: "tenancy/staging/tenants/globex/database", kmsKeyId: "k", tags: { tenant: "globex", env: "staging", stack, "managed-by": "saas-tenancy" } } };
    const record = { urn: urnOf(stack, "aws:route53/record:Record", "globex-dns"), type: "aws:route53/record:Record", name: "globex-dns", inputs: { zoneId: "Z0EXAMPLE0PARENT", name: "globex.tenancy.example.com", type: "CNAME" } };
    expect(await analyzeResources([secret, record], stack)).toEqual([
      violation(P, record.urn, 'record "globex.tenancy.example.com" is outside the domain "staging.tenancy.example.com" of env staging'),
    ]);
    expect(await analyzeResources([secret, { ...record, inputs: { ...record.inputs, name: "globex.staging.tenancy.example.com" } }], stack)).toEqual([]);
  });

  it("reports a dedicated record outside the tenant's zone", async () => {
    expect(await violationsAfter(D, (s) => (find(s, "acme-zone-delegation").inputs.name = "acme.tenancy.example.com"))).toEqual([
      violation(P, urn(D, "acme-zone-delegation"), 'record "acme.tenancy.example.com" is outside the zone "acme.dedicated.tenancy.example.com" of tenant "acme"'),
    ]);
  });

  it("reports a dedicated private record outside the tenant's private zone", async () => {
    const move = (s: typeof D) => Object.assign(find(s, "acme-db-record").inputs, { zoneId: "ZSOMEOTHERZONE", name: "db.globex.internal" });
    expect(await violationsAfter(D, move)).toEqual([
      violation(P, urn(D, "acme-db-record"), 'record "db.globex.internal" is outside the tenant\'s private zone "acme.prod.internal"'),
    ]);
  });

  it("reports a tenant zone with another name, and the records that follow it", async () => {
    expect(await violationsAfter(D, (s) => (find(s, "acme-zone").inputs.name = "acme.tenancy.example.com"))).toEqual([
      violation(P, urn(D, "acme-zone"), 'zone "acme.tenancy.example.com" of tenant "acme" is neither "acme.dedicated.tenancy.example.com" nor "acme.prod.internal"'),
      violation(P, urn(D, "acme-ingress"), 'record "acme.dedicated.tenancy.example.com.acme.tenancy.example.com" is outside the zone "acme.dedicated.tenancy.example.com" of tenant "acme"'),
    ]);
  });

  describe("platform stacks", () => {
    const stack = "platform-us-east-1";
    const record = (name: string, rname = "control-plane-dns") => ({
      urn: urnOf(stack, "aws:route53/record:Record", rname),
      type: "aws:route53/record:Record",
      name: rname,
      inputs: { zoneId: "Z0EXAMPLE0PARENT", name, type: "A" },
    });

    it("pass the control plane's host name and its certificate validation record", async () => {
      expect(await analyzeResources([record("api.tenancy.example.com"), record("_3f2a9c.api.tenancy.example.com.", "control-plane-cert-validation")], stack)).toEqual([]);
    });

    it("report any other name, a tenant's included", async () => {
      const r = record("acme.tenancy.example.com");
      expect(await analyzeResources([r], stack)).toEqual([
        violation(P, r.urn, 'record "acme.tenancy.example.com" in a platform stack is neither the control plane\'s "api.tenancy.example.com" nor a certificate validation record "_<token>.api.tenancy.example.com"'),
      ]);
      const nested = record("x._3f2a9c.api.tenancy.example.com");
      expect(await analyzeResources([nested], stack)).toEqual([
        violation(P, nested.urn, 'record "x._3f2a9c.api.tenancy.example.com" in a platform stack is neither the control plane\'s "api.tenancy.example.com" nor a certificate validation record "_<token>.api.tenancy.example.com"'),
      ]);
    });
  });
});
