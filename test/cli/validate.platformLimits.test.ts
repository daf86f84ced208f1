/**
 * What AWS would refuse, refused by `tenantctl validate` first: pinned minor engine versions with
 * auto minor upgrades, reserved secret names, tenant ids shaped like cell ids, AZs a region does
 * not have, and service quotas the fleet would exceed (infra/model/{database,naming,regions,quotas}.ts).
 * Each case mutates a copy of the example fleet; each has a control that the unmutated or fixed
 * file passes.
 */
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { FleetCopy } from "./fleetCopy.ts";

let fleet: FleetCopy;
beforeEach(() => {
  fleet = new FleetCopy();
});
afterEach(() => fleet.cleanup());

const OK = { code: 0, stdout: ["ok: 9 tenants, 10 stacks (4 cells)"], stderr: [] };

async function problems(): Promise<string[]> {
  const r = await fleet.run(["validate"]);
  expect(r.code, r.stderr.join("\n")).toBe(1);
  expect([...r.stdout, ...r.stderr].join("\n")).not.toMatch(/\n\s+at /);
  return r.stderr;
}

const at = (file: string, needle: string, path: string, message: string) => `${fleet.shown(file)}:${fleet.lineOf(file, needle)}: ${path}: ${message}`;

describe("engine versions", () => {
  it("the example fleet configures the major only and validates", async () => {
    expect(fleet.read("Pulumi.yaml")).toContain('dbEngineVersion: "16"');
    expect(await fleet.run(["validate"])).toEqual(OK);
  });

  it("a pinned minor with automatic minor upgrades is refused, with one line saying why", async () => {
    fleet.edit("Pulumi.yaml", 'dbEngineVersion: "16"', 'dbEngineVersion: "16.4"');
    expect(await problems()).toEqual([
      at("Pulumi.yaml", "dbEngineVersion:", "config.saas-tenancy:platform.value.cellDefaults.dbEngineVersion",
        '"16.4" pins a minor version while autoMinorVersionUpgrade is on: RDS upgrades the minor itself and the next refreshed up would try to downgrade it; configure the major only ("16"); fix the platform settings'),
    ]);
  });

  it("a pinned minor is accepted once automatic minor upgrades are off", async () => {
    fleet.edit("Pulumi.yaml", 'dbEngineVersion: "16"', 'dbEngineVersion: "16.4"\n        autoMinorVersionUpgrade: false');
    expect(await fleet.run(["validate"])).toEqual(OK);
  });

  it("a cell's own pinned minor is refused on its stack file", async () => {
    fleet.edit("stacks/Pulumi.shared-prod-use1-02.yaml", "    capacity:", '    dbEngineVersion: "15.7"\n    capacity:');
    expect(await problems()).toEqual([
      at("stacks/Pulumi.shared-prod-use1-02.yaml", "dbEngineVersion", "config.saas-tenancy:cell.dbEngineVersion",
        '"15.7" pins a minor version while autoMinorVersionUpgrade is on: RDS upgrades the minor itself and the next refreshed up would try to downgrade it; configure the major only ("15")'),
    ]);
  });
});

describe("reserved secret names", () => {
  for (const name of ["database", "config"]) {
    it(`a tenant secret named ${name} is refused (the program keeps its own document there)`, async () => {
      fleet.edit("tenants/startup-alpha.yaml", "secrets: [stripe_api_key]", `secrets: [stripe_api_key, ${name}]`);
      expect(await problems()).toEqual([
        at("tenants/startup-alpha.yaml", "secrets:", "secrets[1]",
          `secret name "${name}" is reserved: the program keeps its own "${name}" document under <app>/<env>/tenants/<tenant>/ (reserved: database, config); choose another name`),
      ]);
    });
  }

  it("control: a name that merely starts with a reserved one passes", async () => {
    fleet.edit("tenants/startup-alpha.yaml", "secrets: [stripe_api_key]", "secrets: [stripe_api_key, database_readonly]");
    expect(await fleet.run(["validate"])).toEqual(OK);
  });
});

describe("tenant ids and cell ids are disjoint", () => {
  it("a tenant id shaped like a cell id is refused", async () => {
    const text = fleet.read("tenants/freebie-one.yaml").replace("id: freebie-one", "id: use1-01");
    fleet.remove("tenants/freebie-one.yaml");
    fleet.write("tenants/use1-01.yaml", text);
    expect(await problems()).toEqual([
      at("tenants/use1-01.yaml", "id:", "id",
        '"use1-01" has the shape of a cell id (<region code><n>-<nn>): its RDS identifier, bucket and parameter group would equal a cell\'s; choose another id'),
    ]);
  });

  it("control: a tenant id merely starting like one passes", async () => {
    const text = fleet.read("tenants/freebie-one.yaml").replace("id: freebie-one", "id: use1-01-labs");
    fleet.remove("tenants/freebie-one.yaml");
    fleet.write("tenants/use1-01-labs.yaml", text);
    expect(await fleet.run(["validate"])).toEqual(OK);
  });
});

describe("AZs per region", () => {
  it("azCount above the region's AZs is refused (eu-west-1 has three)", async () => {
    fleet.edit("tenants/delta-health.yaml", "    cidr: 10.67.0.0/16", "    cidr: 10.67.0.0/16\n    azCount: 4");
    expect(await problems()).toEqual([
      at("tenants/delta-health.yaml", "azCount", "dedicated.prod.azCount",
        "azCount 4 exceeds the 3 AZs of eu-west-1 (eu-west-1a, eu-west-1b, eu-west-1c); set azCount to at most 3"),
    ]);
  });

  it("control: six AZs are fine in us-east-1", async () => {
    fleet.edit("tenants/acme.yaml", "    cidr: 10.66.0.0/16", "    cidr: 10.66.0.0/16\n    azCount: 6");
    expect(await fleet.run(["validate"])).toEqual(OK);
  });

  it("a cell AZ the region does not have is refused", async () => {
    fleet.edit("stacks/Pulumi.shared-prod-euw1-01.yaml", "azs: [eu-west-1a, eu-west-1b]", "azs: [eu-west-1a, eu-west-1d]");
    expect(await problems()).toEqual([
      at("stacks/Pulumi.shared-prod-euw1-01.yaml", "azs:", "config.saas-tenancy:cell.azs",
        "eu-west-1d is not an AZ of eu-west-1 (it has 3: eu-west-1a, eu-west-1b, eu-west-1c); list AZs of the region"),
    ]);
  });

  it("a platform region missing from the AZ table is refused", async () => {
    fleet.edit("Pulumi.yaml", "regions: [us-east-1, eu-west-1]", "regions: [us-east-1, eu-west-1, sa-east-1]");
    // Every platform region also needs a hub and a platform stack file (refused too); with a hub, the AZ table refuses the region.
    fleet.edit("Pulumi.yaml", "        eu-west-1: { cidr: 10.255.0.0/16, azs: [eu-west-1a, eu-west-1b] }", "        eu-west-1: { cidr: 10.255.0.0/16, azs: [eu-west-1a, eu-west-1b] }\n        sa-east-1: { cidr: 10.254.0.0/16, azs: [sa-east-1a, sa-east-1b] }");
    expect(await problems()).toContainEqual(at("Pulumi.yaml", "regions:", "config.saas-tenancy:platform.value.regions[2]",
        "region sa-east-1 is not in the AZ table (infra/model/regions.ts); add its AZ letters there before using it"));
  });
});

describe("service quotas", () => {
  it("without the raised VPC quota, us-east-1 needs more VPCs than the AWS default: quota, count and stacks named", async () => {
    fleet.edit("Pulumi.yaml", "          us-east-1: { vpcsPerRegion: 10, elasticIpsPerRegion: 10 }\n", "          us-east-1: { elasticIpsPerRegion: 10 }\n");
    expect(await problems()).toEqual([
      at("Pulumi.yaml", "us-east-1: { elasticIpsPerRegion", "config.saas-tenancy:platform.value.quotas.regions.us-east-1.vpcsPerRegion",
        'quota "VPCs per Region" in us-east-1 of account 111111111111: the fleet needs 7, the quota is 5 (the AWS default); ' +
          "used by dedicated-acme-prod (1), dedicated-megacorp-prod (1), dedicated-megacorp-staging (1), platform-us-east-1 (1), shared-prod-use1-01 (1), shared-prod-use1-02 (1), shared-staging-use1-01 (1); " +
          "request an increase (Service Quotas vpc L-F678F1CE) and set quotas.regions.us-east-1.vpcsPerRegion in Pulumi.yaml, or place the new stacks elsewhere"),
    ]);
  });

  it("an exact fit passes and one stack more fails (VPCs in eu-west-1: its hub and 2 stacks)", async () => {
    fleet.edit("Pulumi.yaml", "          us-east-1: { vpcsPerRegion: 10, elasticIpsPerRegion: 10 }", "          us-east-1: { vpcsPerRegion: 10, elasticIpsPerRegion: 10 }\n          eu-west-1: { vpcsPerRegion: 3 }");
    expect(await fleet.run(["validate"])).toEqual(OK);
    fleet.edit("Pulumi.yaml", "eu-west-1: { vpcsPerRegion: 3 }", "eu-west-1: { vpcsPerRegion: 2 }");
    expect(await problems()).toEqual([
      at("Pulumi.yaml", "eu-west-1: { vpcsPerRegion", "config.saas-tenancy:platform.value.quotas.regions.eu-west-1.vpcsPerRegion",
        'quota "VPCs per Region" in eu-west-1 of account 111111111111: the fleet needs 3, the quota is 2; used by dedicated-delta-health-prod (1), platform-eu-west-1 (1), shared-prod-euw1-01 (1); ' +
          "request an increase (Service Quotas vpc L-F678F1CE) and set quotas.regions.eu-west-1.vpcsPerRegion in Pulumi.yaml, or place the new stacks elsewhere"),
    ]);
  });

  it("gateway VPC endpoints: one S3 gateway endpoint per VPC, an exact fit passes and one fewer fails", async () => {
    fleet.edit("Pulumi.yaml", "          us-east-1: { vpcsPerRegion: 10, elasticIpsPerRegion: 10 }", "          us-east-1: { vpcsPerRegion: 10, elasticIpsPerRegion: 10, gatewayEndpointsPerRegion: 7 }");
    expect(await fleet.run(["validate"])).toEqual(OK);
    fleet.edit("Pulumi.yaml", "gatewayEndpointsPerRegion: 7 }", "gatewayEndpointsPerRegion: 6 }");
    expect(await problems()).toEqual([
      at("Pulumi.yaml", "gatewayEndpointsPerRegion: 6", "config.saas-tenancy:platform.value.quotas.regions.us-east-1.gatewayEndpointsPerRegion",
        'quota "Gateway VPC endpoints per Region" in us-east-1 of account 111111111111: the fleet needs 7, the quota is 6; ' +
          "used by dedicated-acme-prod (1), dedicated-megacorp-prod (1), dedicated-megacorp-staging (1), platform-us-east-1 (1), shared-prod-use1-01 (1), shared-prod-use1-02 (1), shared-staging-use1-01 (1); " +
          "request an increase (Service Quotas vpc L-1B52E74A) and set quotas.regions.us-east-1.gatewayEndpointsPerRegion in Pulumi.yaml, or place the new stacks elsewhere"),
    ]);
  });

  it("SNS topics: one per cell and dedicated stack (its storage alarms' topic); an exact fit passes and one fewer fails", async () => {
    fleet.edit("Pulumi.yaml", "          us-east-1: { vpcsPerRegion: 10, elasticIpsPerRegion: 10 }", "          us-east-1: { vpcsPerRegion: 10, elasticIpsPerRegion: 10, snsTopicsPerRegion: 6 }");
    expect(await fleet.run(["validate"])).toEqual(OK);
    fleet.edit("Pulumi.yaml", "snsTopicsPerRegion: 6 }", "snsTopicsPerRegion: 5 }");
    expect(await problems()).toEqual([
      at("Pulumi.yaml", "snsTopicsPerRegion: 5", "config.saas-tenancy:platform.value.quotas.regions.us-east-1.snsTopicsPerRegion",
        'quota "SNS topics per account" in us-east-1 of account 111111111111: the fleet needs 6, the quota is 5; ' +
          "used by dedicated-acme-prod (1), dedicated-megacorp-prod (1), dedicated-megacorp-staging (1), shared-prod-use1-01 (1), shared-prod-use1-02 (1), shared-staging-use1-01 (1); " +
          "request an increase (Service Quotas sns L-61103206) and set quotas.regions.us-east-1.snsTopicsPerRegion in Pulumi.yaml, or place the new stacks elsewhere"),
    ]);
  });

  it("account-wide quotas: IAM roles and hosted zones count every stack's roles and zones", async () => {
    fleet.edit("Pulumi.yaml", "iamRolesPerAccount: 1000", "iamRolesPerAccount: 29");
    fleet.edit("Pulumi.yaml", "hostedZonesPerAccount: 500", "hostedZonesPerAccount: 9");
    expect(await fleet.run(["validate"])).toEqual(OK);
    fleet.edit("Pulumi.yaml", "iamRolesPerAccount: 29", "iamRolesPerAccount: 28");
    fleet.edit("Pulumi.yaml", "hostedZonesPerAccount: 9", "hostedZonesPerAccount: 8");
    const dedicated = ["acme-prod", "delta-health-prod", "megacorp-prod", "megacorp-staging"].map((s) => `dedicated-${s} (2)`).join(", ");
    expect(await problems()).toEqual([
      at("Pulumi.yaml", "hostedZonesPerAccount", "config.saas-tenancy:platform.value.quotas.hostedZonesPerAccount",
        `quota "Hosted zones" account-wide of account 111111111111: the fleet needs 9, the quota is 8; used by ${dedicated}, parent zone (1); ` +
          "request an increase (Service Quotas route53 L-4EA4796A) and set quotas.hostedZonesPerAccount in Pulumi.yaml, or place the new stacks elsewhere"),
      at("Pulumi.yaml", "iamRolesPerAccount", "config.saas-tenancy:platform.value.quotas.iamRolesPerAccount",
        // A cell: its flow-log delivery role and one role per resident tenant.
        "quota \"Roles per account\" account-wide of account 111111111111: the fleet needs 29, the quota is 28; used by platform-us-east-1 (7), " +
          `shared-prod-euw1-01 (3), shared-prod-use1-01 (3), shared-prod-use1-02 (3), shared-staging-use1-01 (3), ${dedicated}, platform-eu-west-1 (2); ` +
          "request an increase (Service Quotas iam L-FE177D64) and set quotas.iamRolesPerAccount in Pulumi.yaml, or place the new stacks elsewhere"),
    ]);
  });
});

describe("app names SSM refuses", () => {
  for (const app of ["awsshop", "ssm-app"]) {
    it(`appName ${app} is refused: SSM refuses /${app}/... parameter names`, async () => {
      fleet.edit("Pulumi.yaml", "      appName: tenancy", `      appName: ${app}`);
      const prefix = app.slice(0, 3);
      expect(await problems()).toEqual([
        at("Pulumi.yaml", "appName:", "config.saas-tenancy:platform.value.appName",
          `"${app}" begins with "${prefix}": SSM Parameter Store refuses parameter names whose first segment begins with aws or ssm (case-insensitive), and every runtime config and routing document is named /<appName>/...; choose an appName that does not begin with aws or ssm; fix the platform settings`),
      ]);
    });
  }

  it("control: an appName containing aws or ssm later passes", async () => {
    fleet.edit("Pulumi.yaml", "      appName: tenancy", "      appName: myaws-ssm");
    expect(await fleet.run(["validate"])).toEqual(OK);
  });
});

describe("SSM parameters per account and region (Parameter Store, not adjustable)", () => {
  const REGIONAL = "          us-east-1: { vpcsPerRegion: 10, elasticIpsPerRegion: 10 }";
  const used = "shared-prod-use1-01 (3), shared-prod-use1-02 (3), shared-staging-use1-01 (3), dedicated-acme-prod (2), dedicated-megacorp-prod (2), dedicated-megacorp-staging (2)";

  it("an exact fit passes (15 in us-east-1: a document per tenant env, the routing pages and shares); one fewer fails, naming the stacks and what to do", async () => {
    fleet.edit("Pulumi.yaml", REGIONAL, "          us-east-1: { vpcsPerRegion: 10, elasticIpsPerRegion: 10, ssmStandardParametersPerRegion: 15 }");
    expect(await fleet.run(["validate"])).toEqual(OK);
    fleet.edit("Pulumi.yaml", "ssmStandardParametersPerRegion: 15 }", "ssmStandardParametersPerRegion: 14 }");
    expect(await problems()).toEqual([
      at("Pulumi.yaml", "us-east-1: { vpcsPerRegion", "config.saas-tenancy:platform.value.quotas.regions.us-east-1.ssmStandardParametersPerRegion",
        `quota "Parameter Store standard parameters" in us-east-1 of account 111111111111: the fleet needs 15, the quota is 14; used by ${used}; ` +
          "AWS does not raise this quota: set ssmParameterTier: Advanced in Pulumi.yaml (100,000 per account and region, USD 0.05 per parameter-month; a Standard parameter becomes Advanced in place, never back), or place tenants in another account or region"),
    ]);
  });

  it("with ssmParameterTier Advanced the documents count against the Advanced quota instead", async () => {
    fleet.edit("Pulumi.yaml", REGIONAL, "          us-east-1: { vpcsPerRegion: 10, elasticIpsPerRegion: 10, ssmStandardParametersPerRegion: 14, ssmAdvancedParametersPerRegion: 14 }");
    fleet.edit("Pulumi.yaml", "      appName: tenancy", "      appName: tenancy\n      ssmParameterTier: Advanced");
    expect(await problems()).toEqual([
      at("Pulumi.yaml", "us-east-1: { vpcsPerRegion", "config.saas-tenancy:platform.value.quotas.regions.us-east-1.ssmAdvancedParametersPerRegion",
        `quota "Parameter Store advanced parameters" in us-east-1 of account 111111111111: the fleet needs 15, the quota is 14; used by ${used}; ` +
          "AWS does not raise this quota: place tenants in another account or region"),
    ]);
    fleet.edit("Pulumi.yaml", "ssmAdvancedParametersPerRegion: 14 }", "ssmAdvancedParametersPerRegion: 15 }");
    expect(await fleet.run(["validate"])).toEqual(OK);
  });

  it("a value above AWS's fixed number is refused: it cannot be raised", async () => {
    fleet.edit("Pulumi.yaml", "ssmStandardParametersPerRegion: 10000", "ssmStandardParametersPerRegion: 20000");
    expect(await problems()).toEqual([
      at("Pulumi.yaml", "ssmStandardParametersPerRegion", "config.saas-tenancy:platform.value.quotas.ssmStandardParametersPerRegion",
        'cannot exceed 10000: AWS does not raise "Parameter Store standard parameters" (https://docs.aws.amazon.com/systems-manager/latest/userguide/parameter-store-advanced-parameters.html); ' +
          "set ssmParameterTier: Advanced in Pulumi.yaml (100,000 per account and region, USD 0.05 per parameter-month; a Standard parameter becomes Advanced in place, never back), or place tenants in another account or region; fix the platform settings"),
    ]);
  });
});
