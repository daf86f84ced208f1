/**
 * Naming is an external contract (docs/stacks.md, "Naming and isolation conventions"): a changed name renames live resources, i.e. replaces
 * databases and secrets. Every helper's exact output is pinned here.
 */
import { describe, expect, it } from "vitest";
import {
  APP_NAME_PATTERN, CELL_DATABASE, CELL_ID_PATTERN, DEDICATED_DATABASE, MANAGED_BY, RESERVED_IDS, SECRET_NAME_PATTERN,
  SHARED_TENANT, StackNameError, TEAM_NAME_PATTERN, TENANT_ID_MAX, TENANT_ID_PATTERN,
  cellBucketName, cellDatabaseSecretName, cellKmsAlias, cellStackName, databaseSecretName, dedicatedStackName,
  dedicatedZoneName, globalSecretName, globalSecretPrefix, masterSecretName, parseStackName, pgTenantIdent,
  pooledHostname, privateDbHostname, privateZoneName, regionCode, tags, teamSecretName, tenantBucketName,
  ssmAppNameProblem, tenantKmsAlias, tenantObjectPrefix, tenantRoleName, tenantSecretName, tenantSecretPrefix, tenantUrl,
} from "../../infra/model/naming.ts";

const ENVS = ["prod", "staging", "dev"] as const;

describe("parseStackName", () => {
  it("parses a shared cell stack", () => {
    expect(parseStackName("shared-prod-use1-01", ENVS)).toEqual({ kind: "shared", name: "shared-prod-use1-01", env: "prod", cell: "use1-01" });
    expect(parseStackName("shared-staging-euw1-02", ENVS)).toEqual({ kind: "shared", name: "shared-staging-euw1-02", env: "staging", cell: "euw1-02" });
    expect(parseStackName("shared-dev-apse2-10", ENVS)).toEqual({ kind: "shared", name: "shared-dev-apse2-10", env: "dev", cell: "apse2-10" });
  });

  it("parses a dedicated stack", () => {
    expect(parseStackName("dedicated-acme-prod", ENVS)).toEqual({ kind: "dedicated", name: "dedicated-acme-prod", env: "prod", tenant: "acme" });
    expect(parseStackName("dedicated-megacorp-staging", ENVS)).toEqual({
      kind: "dedicated", name: "dedicated-megacorp-staging", env: "staging", tenant: "megacorp",
    });
  });

  it("keeps dashes in tenant ids: the env is always the last segment", () => {
    expect(parseStackName("dedicated-delta-health-prod", ENVS)).toEqual({
      kind: "dedicated", name: "dedicated-delta-health-prod", env: "prod", tenant: "delta-health",
    });
    // A tenant id that itself ends in an env name.
    expect(parseStackName("dedicated-foo-prod-staging", ENVS)).toEqual({
      kind: "dedicated", name: "dedicated-foo-prod-staging", env: "staging", tenant: "foo-prod",
    });
    expect(parseStackName("dedicated-a-b-c-dev", ENVS)).toMatchObject({ tenant: "a-b-c", env: "dev" });
  });

  it("round-trips the name builders", () => {
    for (const env of ENVS) {
      expect(parseStackName(cellStackName(env, "use1-01"), ENVS)).toMatchObject({ kind: "shared", env, cell: "use1-01" });
      expect(parseStackName(dedicatedStackName("delta-health", env), ENVS)).toMatchObject({ kind: "dedicated", env, tenant: "delta-health" });
    }
  });

  it("rejects an unknown name with a message naming the three forms and the environments", () => {
    expect(() => parseStackName("prod", ENVS)).toThrow(StackNameError);
    expect(() => parseStackName("prod", ENVS)).toThrow(
      'unknown stack name "prod": expected platform-<region> (e.g. platform-us-east-1), shared-<env>-<cell> ' +
        "(e.g. shared-prod-use1-01) or dedicated-<tenant>-<env> (e.g. dedicated-acme-prod), with <env> one of: prod, staging, dev",
    );
    // An env the platform does not declare makes the name unknown.
    expect(() => parseStackName("dedicated-acme-qa", ENVS)).toThrow('unknown stack name "dedicated-acme-qa"');
    expect(() => parseStackName("shared-qa-use1-01", ENVS)).toThrow('unknown stack name "shared-qa-use1-01"');
  });

  it("parses platform-<region> as the platform stack of the region, in the platform env", () => {
    expect(parseStackName("platform-us-east-1", ENVS)).toEqual({ kind: "platform", name: "platform-us-east-1", env: "prod", region: "us-east-1" });
    expect(parseStackName("platform-eu-west-1", ["staging", "dev"])).toEqual({ kind: "platform", name: "platform-eu-west-1", env: "staging", region: "eu-west-1" });
    expect(() => parseStackName("platform-useast1", ENVS)).toThrow('stack "platform-useast1": "useast1" is not an AWS region name (platform-<region>, e.g. platform-us-east-1)');
  });

  it("rejects a malformed cell id or tenant id", () => {
    expect(() => parseStackName("shared-prod-cell1", ENVS)).toThrow(
      'stack "shared-prod-cell1": cell id "cell1" is not of the form <region code><n>-<nn> (e.g. use1-01)',
    );
    expect(() => parseStackName("dedicated-Acme-prod", ENVS)).toThrow('stack "dedicated-Acme-prod": tenant id "Acme" is not a DNS label');
    expect(() => parseStackName("dedicated--prod", ENVS)).toThrow(StackNameError);
  });
});

describe("name builders", () => {
  it("stacks", () => {
    expect(cellStackName("prod", "use1-01")).toBe("shared-prod-use1-01");
    expect(dedicatedStackName("acme", "prod")).toBe("dedicated-acme-prod");
    expect(dedicatedStackName("delta-health", "staging")).toBe("dedicated-delta-health-staging");
  });

  it("region codes", () => {
    expect(regionCode("us-east-1")).toBe("use1");
    expect(regionCode("eu-west-1")).toBe("euw1");
    expect(regionCode("ap-southeast-2")).toBe("apse2");
    expect(regionCode("ap-northeast-1")).toBe("apne1");
    expect(regionCode("eu-central-1")).toBe("euc1");
    expect(regionCode("ca-central-1")).toBe("cac1");
    expect(regionCode("eu-north-1")).toBe("eun1");
    expect(regionCode("me-south-1")).toBe("mes1");
    expect(regionCode("sa-east-1")).toBe("sae1");
    expect(() => regionCode("mars")).toThrow('"mars" is not an AWS region name');
    // Every code fits the cell id pattern.
    for (const r of ["us-east-1", "ap-southeast-2", "ap-northeast-3", "ca-central-1"]) expect(`${regionCode(r)}-01`).toMatch(CELL_ID_PATTERN);
  });

  it("Secrets Manager names", () => {
    expect(tenantSecretPrefix("tenancy", "prod", "acme")).toBe("tenancy/prod/tenants/acme/");
    expect(tenantSecretName("tenancy", "prod", "acme", "slack_bot_token")).toBe("tenancy/prod/tenants/acme/slack_bot_token");
    expect(teamSecretName("tenancy", "prod", "acme", "support", "webhook_secret")).toBe("tenancy/prod/tenants/acme/teams/support/webhook_secret");
    expect(globalSecretPrefix("tenancy", "staging")).toBe("tenancy/staging/global/");
    expect(globalSecretName("tenancy", "staging", "stripe")).toBe("tenancy/staging/global/stripe");
    expect(databaseSecretName("tenancy", "prod", "acme")).toBe("tenancy/prod/tenants/acme/database");
    expect(masterSecretName("tenancy", "prod", "acme")).toBe("tenancy/prod/tenants/acme/database/master");
    expect(cellDatabaseSecretName("tenancy", "prod", "use1-01")).toBe("tenancy/prod/global/cells/use1-01/database");
  });

  it("tenant-scoped secret names stay inside the tenant prefix, platform ones outside every tenant", () => {
    const prefix = tenantSecretPrefix("tenancy", "prod", "acme");
    for (const n of [tenantSecretName("tenancy", "prod", "acme", "x"), teamSecretName("tenancy", "prod", "acme", "t", "x"),
      databaseSecretName("tenancy", "prod", "acme"), masterSecretName("tenancy", "prod", "acme")]) {
      expect(n.startsWith(prefix)).toBe(true);
    }
    expect(cellDatabaseSecretName("tenancy", "prod", "use1-01").startsWith("tenancy/prod/tenants/")).toBe(false);
    // A tenant whose id prefixes another's cannot read it: the prefix ends with "/".
    expect(tenantSecretName("tenancy", "prod", "acme-eu", "x").startsWith(prefix)).toBe(false);
  });

  it("KMS aliases", () => {
    expect(tenantKmsAlias("tenancy", "prod", "acme")).toBe("alias/tenancy/prod/tenants/acme");
    expect(cellKmsAlias("tenancy", "prod", "use1-01")).toBe("alias/tenancy/prod/cells/use1-01");
  });

  it("PostgreSQL identifiers", () => {
    expect(pgTenantIdent("acme")).toBe("tenant_acme");
    expect(pgTenantIdent("delta-health")).toBe("tenant_delta_health");
    expect(pgTenantIdent("a-b-c")).toBe("tenant_a_b_c");
    expect(DEDICATED_DATABASE).toBe("app");
    expect(CELL_DATABASE).toBe("cell");
    // The longest tenant id stays within PostgreSQL's 63-byte identifier limit.
    expect(pgTenantIdent("a".repeat(TENANT_ID_MAX)).length).toBeLessThanOrEqual(63);
  });

  it("IAM role names fit IAM's 64 characters at the longest app, env and tenant", () => {
    expect(tenantRoleName("tenancy", "prod", "acme")).toBe("tenancy-prod-t-acme");
    expect(tenantRoleName("a".repeat(12), "b".repeat(7), "c".repeat(TENANT_ID_MAX)).length).toBeLessThanOrEqual(64);
  });

  it("DNS names and URLs", () => {
    expect(pooledHostname("acme", "tenancy.example.com")).toBe("acme.tenancy.example.com");
    expect(dedicatedZoneName("acme", "tenancy.example.com")).toBe("acme.dedicated.tenancy.example.com");
    expect(privateZoneName("acme", "prod")).toBe("acme.prod.internal");
    expect(privateZoneName("acme", "staging")).toBe("acme.staging.internal");
    expect(privateDbHostname("acme", "prod")).toBe("db.acme.prod.internal");
    expect(tenantUrl("acme", "tenancy.example.com", "pooled")).toBe("https://acme.tenancy.example.com");
    expect(tenantUrl("acme", "tenancy.example.com", "dedicated")).toBe("https://acme.dedicated.tenancy.example.com");
  });

  it("buckets and object prefixes; bucket names fit S3's 63 characters", () => {
    expect(cellBucketName("tenancy", "prod", "use1-01", "111111111111")).toBe("tenancy-prod-use1-01-data-111111111111");
    expect(tenantBucketName("tenancy", "prod", "acme", "111111111111")).toBe("tenancy-prod-acme-data-111111111111");
    expect(tenantObjectPrefix("acme")).toBe("tenants/acme/");
    expect(tenantBucketName("a".repeat(12), "b".repeat(7), "c".repeat(TENANT_ID_MAX), "1".repeat(12)).length).toBeLessThanOrEqual(63);
  });

  it("tags", () => {
    expect(tags("acme", "prod", "dedicated-acme-prod")).toEqual({
      tenant: "acme", env: "prod", stack: "dedicated-acme-prod", "managed-by": "saas-tenancy",
    });
    expect(tags(SHARED_TENANT, "prod", "shared-prod-use1-01").tenant).toBe("shared");
    expect(MANAGED_BY).toBe("saas-tenancy");
  });
});

describe("name patterns", () => {
  it("tenant ids: DNS labels of at most 24 characters", () => {
    for (const ok of ["a", "acme", "delta-health", "a1", "x".repeat(24)]) expect(TENANT_ID_PATTERN.test(ok), ok).toBe(true);
    for (const bad of ["", "Acme", "1acme", "acme-", "-acme", "ac_me", "ac.me", "ac me", "a--b", "x".repeat(25)]) {
      expect(TENANT_ID_PATTERN.test(bad), bad).toBe(false);
    }
    for (const r of ["www", "api", "admin", "app", "mail"]) expect(RESERVED_IDS.has(r), r).toBe(true);
  });

  it("secret and team names cannot escape a namespace", () => {
    for (const bad of ["..", "../x", "a/b", "A", "a b", "", "_a", "a\n"]) {
      expect(SECRET_NAME_PATTERN.test(bad), JSON.stringify(bad)).toBe(false);
      expect(TEAM_NAME_PATTERN.test(bad), JSON.stringify(bad)).toBe(false);
    }
    expect(SECRET_NAME_PATTERN.test("slack_bot_token")).toBe(true);
    expect(TEAM_NAME_PATTERN.test("support")).toBe(true);
    expect(TEAM_NAME_PATTERN.test("help_desk")).toBe(false);
  });

  it("app names and cell ids", () => {
    expect(APP_NAME_PATTERN.test("tenancy")).toBe(true);
    expect(APP_NAME_PATTERN.test("t")).toBe(false);
    expect(CELL_ID_PATTERN.test("use1-01")).toBe(true);
    expect(CELL_ID_PATTERN.test("use1-1")).toBe(false);
  });
});

describe("ssmAppNameProblem (PutParameter refuses names beginning with aws or ssm, case-insensitive)", () => {
  it.each(["aws", "awsshop", "AWS-shop", "ssm", "Ssmx"])("refuses %s", (app) => {
    expect(ssmAppNameProblem(app)).toMatch(new RegExp(`^"${app}" begins with "${app.slice(0, 3)}": SSM Parameter Store refuses`));
  });
  it.each(["tenancy", "aw", "ss", "myaws", "sms", "a-ssm"])("accepts %s", (app) => {
    expect(ssmAppNameProblem(app)).toBeUndefined();
  });
});
