import { describe, expect, it } from "vitest";
import { loadPlatform } from "../../infra/model/platform.ts";
import { MANDATORY_POLICIES, PACK_NAME, PACK_VERSION, packArgs, packPolicies, policies, registry } from "../../policy/pack.ts";
import { PolicyRegistry, PolicyRegistryError, type PolicyDefinition } from "../../policy/registry.ts";
import { DEFAULT_SETTINGS } from "../../policy/settings.ts";
import { tenantTags } from "../../policy/policies/tenant-tags.ts";
import { readFileSync } from "node:fs";
import { parse } from "yaml";

const PACK_POLICIES = [
  "tenant-tags",
  "dedicated-stack-single-tenant",
  "secret-namespace",
  "kms-tenant-key",
  "iam-tenant-scope",
  "rds-hardening",
  "no-public-ingress",
  "postgres-tenant-grants",
  "dns-tenant-names",
  "secrets-stay-secret",
  "secret-names-unique",
  "runtime-config-own-tenant",
  "routing-own-env-region",
  "tenant-bucket-retention-audit",
];

describe("registry", () => {
  it("holds exactly the issue's policies, one definition each", () => {
    expect(registry.definitions().map((d) => d.name)).toEqual(PACK_POLICIES);
  });

  it("rejects a duplicate name", () => {
    const r = new PolicyRegistry().add(tenantTags);
    expect(() => r.add({ ...tenantTags })).toThrow(new PolicyRegistryError('duplicate policy name "tenant-tags"'));
  });

  it("rejects names that are not kebab-case, the reserved name all, and empty descriptions", () => {
    const r = new PolicyRegistry();
    expect(() => r.add({ ...tenantTags, name: "TenantTags" })).toThrow('policy name "TenantTags" is not kebab-case (e.g. "tenant-tags")');
    expect(() => r.add({ ...tenantTags, name: "all" })).toThrow('policy name "all" is reserved by Pulumi policy config');
    expect(() => r.add({ ...tenantTags, description: " " })).toThrow('policy "tenant-tags" has no description');
  });

  it.each(registry.definitions().map((d) => [d.name, d] as [string, PolicyDefinition]))(
    "%s carries severity, description, remediation and is advisory in the registry",
    (_name, def) => {
      expect(["low", "medium", "high", "critical"]).toContain(def.severity);
      expect(def.description.length).toBeGreaterThan(40);
      expect(def.remediationSteps.length).toBeGreaterThan(20);
      expect(def.enforcementLevel).toBe("advisory");
    },
  );
});

describe("pack", () => {
  it("makes every issue-5 policy mandatory", () => {
    expect([...MANDATORY_POLICIES].sort()).toEqual([...PACK_POLICIES].sort());
    expect(policies.map((p) => [p.name, p.enforcementLevel])).toEqual(PACK_POLICIES.map((n) => [n, "mandatory"]));
  });

  it("names and versions itself as PulumiPolicy.yaml and policy/package.json say", () => {
    const manifest = parse(readFileSync(new URL("../../policy/PulumiPolicy.yaml", import.meta.url), "utf8")) as { name: string; runtime: { options: Record<string, unknown> } };
    const pkg = JSON.parse(readFileSync(new URL("../../policy/package.json", import.meta.url), "utf8")) as { version: string; name: string; main: string };
    expect(manifest.name).toBe(PACK_NAME);
    expect(manifest.runtime.options).toEqual({ typescript: false, nodeargs: "--import tsx" });
    expect(PACK_VERSION).toBe(pkg.version);
    expect(pkg.name).toBe("@saas-tenancy/policy");
    expect(pkg.main).toBe("main.cjs");
    expect(packArgs.policies).toBe(policies);
    expect(packArgs.enforcementLevel).toBe("advisory");
  });

  it("declares the platform settings as config with Pulumi.yaml's values as defaults", () => {
    const platform = loadPlatform(new URL("../..", import.meta.url).pathname);
    expect(DEFAULT_SETTINGS).toEqual({
      appName: platform.appName,
      domain: platform.domain,
      environments: platform.environments,
      awsAccountId: platform.awsAccountId,
    });
    for (const p of policies) {
      const props = p.configSchema!.properties;
      expect(Object.keys(props)).toEqual(["appName", "domain", "environments", "awsAccountId"]);
      expect(props.appName).toMatchObject({ type: "string", default: "tenancy" });
      expect(props.environments).toMatchObject({ type: "array", default: ["prod", "staging", "dev"] });
    }
    const other = packPolicies({ appName: "acmeapp" });
    expect(other[0]!.configSchema!.properties.appName).toMatchObject({ default: "acmeapp" });
  });
});
