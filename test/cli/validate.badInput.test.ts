/**
 * Bad input (docs/tenant-files.md): each case mutates a copy of the example fleet and runs `tenantctl validate`.
 * Each must exit 1 with exactly one stderr line `<file>:<line>: <yaml path>: <message>`, no stack
 * trace, and must write nothing.
 */
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { MAX_FILE_BYTES } from "../../infra/model/yamlFile.ts";
import { FleetCopy } from "./fleetCopy.ts";

let fleet: FleetCopy;
beforeEach(() => {
  fleet = new FleetCopy();
});
afterEach(() => fleet.cleanup());

const ALLOWED_KEYS_DEDICATED =
  "id, displayName, tier, region, lifecycle, rolloutRing, contact, billing, features, limits, secrets, environments, offboarding, deployment, dedicated, migration";

/** Runs validate and checks the contract; `message` is matched exactly unless a RegExp is given. */
async function expectOneProblem(file: string, line: number, path: string, message: string | RegExp): Promise<void> {
  const before = fleet.snapshot();
  const r = await fleet.run(["validate"]);
  const all = [...r.stdout, ...r.stderr].join("\n");
  expect(all).not.toMatch(/\n\s+at /); // no stack trace
  expect(all).not.toMatch(/internal error/);
  expect(r.stderr, `stderr was:\n${r.stderr.join("\n")}`).toHaveLength(1);
  const prefix = `${fleet.shown(file)}:${line}: ${path}: `;
  const got = r.stderr[0]!;
  expect(got.slice(0, prefix.length)).toBe(prefix);
  if (typeof message === "string") expect(got.slice(prefix.length)).toBe(message);
  else expect(got.slice(prefix.length)).toMatch(message);
  expect(r.code).toBe(1);
  expect(r.stdout).toEqual(["1 problem found"]);
  expect(fleet.snapshot()).toEqual(before); // nothing written
}

describe("the example fleet", () => {
  it("validates (the baseline every bad case mutates)", async () => {
    const r = await fleet.run(["validate"]);
    expect(r).toEqual({ code: 0, stdout: ["ok: 9 tenants, 10 stacks (4 cells)"], stderr: [] });
  });
});

describe("YAML-level bad input", () => {
  it("YAML syntax error", async () => {
    fleet.edit("tenants/acme.yaml", "region: us-east-1\n", "region: us-east-1: eu-west-1\n");
    await expectOneProblem(
      "tenants/acme.yaml",
      fleet.lineOf("tenants/acme.yaml", "region:"),
      "(document)",
      "YAML syntax error: Nested mappings are not allowed in compact mappings; fix the YAML at this line",
    );
  });

  it("empty file", async () => {
    fleet.write("tenants/acme.yaml", "");
    await expectOneProblem("tenants/acme.yaml", 1, "(document)", "file is empty; write the tenant's keys (see tenants/tenant.schema.json) or delete the file");
  });

  it("file holding only the schema comment counts as empty", async () => {
    fleet.write("tenants/acme.yaml", "# yaml-language-server: $schema=./tenant.schema.json\n");
    await expectOneProblem("tenants/acme.yaml", 1, "(document)", "file is empty; write the tenant's keys (see tenants/tenant.schema.json) or delete the file");
  });

  it("a list instead of a mapping", async () => {
    fleet.write("tenants/acme.yaml", "# yaml-language-server: $schema=./tenant.schema.json\n- id: acme\n- tier: dedicated\n");
    await expectOneProblem("tenants/acme.yaml", 2, "(document)", "expected a mapping of keys (key: value lines), found a list");
  });

  it("a scalar instead of a mapping", async () => {
    fleet.write("tenants/acme.yaml", "# yaml-language-server: $schema=./tenant.schema.json\nacme\n");
    await expectOneProblem("tenants/acme.yaml", 2, "(document)", "expected a mapping of keys (key: value lines), found a scalar");
  });

  it("YAML alias bomb (billion laughs) is refused before expansion", async () => {
    const levels = ['lol0: &l0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]'];
    for (let i = 1; i <= 9; i++) levels.push(`lol${i}: &l${i} [${Array(9).fill(`*l${i - 1}`).join(", ")}]`);
    fleet.write("tenants/acme.yaml", `${fleet.read("tenants/acme.yaml")}${levels.join("\n")}\n`);
    const started = Date.now();
    await expectOneProblem(
      "tenants/acme.yaml",
      fleet.lineOf("tenants/acme.yaml", "lol1:"), // the first alias
      "(document)",
      "YAML aliases expand to too many nodes (limit 20: Excessive alias count indicates a resource exhaustion attack); tenant and stack files need no anchors or aliases: write the values out",
    );
    // 9^10 nodes would never finish; a refusal is immediate (generous bound for a loaded CI machine).
    expect(Date.now() - started).toBeLessThan(10_000);
  });

  it("more than one YAML document", async () => {
    fleet.write("tenants/acme.yaml", `${fleet.read("tenants/acme.yaml")}---\nid: acme2\n`);
    await expectOneProblem(
      "tenants/acme.yaml",
      fleet.lineOf("tenants/acme.yaml", "---"),
      "(document)",
      "YAML syntax error: the file holds more than one YAML document; a tenant or stack file is one mapping: remove the extra ---",
    );
  });

  it("a list used as a key", async () => {
    fleet.write("tenants/acme.yaml", `${fleet.read("tenants/acme.yaml")}? [a, b]\n: c\n`);
    await expectOneProblem(
      "tenants/acme.yaml",
      fleet.lineOf("tenants/acme.yaml", "? [a, b]"),
      "(document)",
      "a key is a list or mapping; keys are plain names (key: value)",
    );
  });

  it("file over the size limit", async () => {
    const text = fleet.read("tenants/acme.yaml");
    fleet.write("tenants/acme.yaml", `${text}# ${"x".repeat(MAX_FILE_BYTES)}\n`);
    await expectOneProblem(
      "tenants/acme.yaml",
      1,
      "(document)",
      "file is larger than 65536 bytes; tenant and stack files are a few hundred bytes: remove what does not belong in it",
    );
  });
});

describe("schema-level bad input", () => {
  it("unknown key", async () => {
    fleet.edit("tenants/acme.yaml", "tier: dedicated\n", "tier: dedicated\ncolour: blue\n");
    await expectOneProblem(
      "tenants/acme.yaml",
      fleet.lineOf("tenants/acme.yaml", "colour:"),
      "colour",
      `unknown key "colour"; allowed keys: ${ALLOWED_KEYS_DEDICATED}`,
    );
  });

  it("unknown nested key names the keys allowed there", async () => {
    fleet.edit("tenants/bigcorp.yaml", "features: { sso: true }", "features: { sso: true, sos: true }");
    await expectOneProblem(
      "tenants/bigcorp.yaml",
      fleet.lineOf("tenants/bigcorp.yaml", "features:"),
      "features.sos",
      'unknown key "sos"; allowed keys: sso, vpcPeering, customModel, egress',
    );
  });

  it("wrong type", async () => {
    fleet.edit("tenants/bigcorp.yaml", "features: { sso: true }", "features: { sso: yes please }");
    await expectOneProblem(
      "tenants/bigcorp.yaml",
      fleet.lineOf("tenants/bigcorp.yaml", "features:"),
      "features.sso",
      'expected boolean, got string "yes please"',
    );
  });

  it("wrong type: a mapping where a list belongs", async () => {
    fleet.edit("tenants/acme.yaml", "secrets: [slack_bot_token, openai_api_key]", "secrets: { slack_bot_token: yes }");
    await expectOneProblem("tenants/acme.yaml", fleet.lineOf("tenants/acme.yaml", "secrets:"), "secrets", "expected array, got a mapping");
  });

  it("missing required field", async () => {
    fleet.edit("tenants/freebie-one.yaml", "displayName: Freebie One\n", "");
    // A missing key has no line of its own: the problem points at the mapping that lacks it.
    await expectOneProblem("tenants/freebie-one.yaml", fleet.lineOf("tenants/freebie-one.yaml", "id:"), "displayName", "is required; expected string");
  });

  it("missing tier names the allowed tiers (not the internal discriminator)", async () => {
    fleet.edit("tenants/freebie-one.yaml", "tier: free\n", "");
    await expectOneProblem(
      "tenants/freebie-one.yaml",
      fleet.lineOf("tenants/freebie-one.yaml", "id:"),
      "tier",
      "is required; one of free, standard, enterprise, dedicated",
    );
  });

  it("invalid deployment value", async () => {
    fleet.edit("tenants/freebie-one.yaml", "tier: free\n", "tier: free\ndeployment: hybrid\n");
    await expectOneProblem(
      "tenants/freebie-one.yaml",
      fleet.lineOf("tenants/freebie-one.yaml", "deployment:"),
      "deployment",
      'string "hybrid" is not one of pooled, dedicated; omit it to derive it from the tier',
    );
  });

  it("id not a DNS label", async () => {
    fleet.write("tenants/Free_Bie.yaml", fleet.read("tenants/freebie-one.yaml").replace("id: freebie-one", "id: Free_Bie"));
    fleet.remove("tenants/freebie-one.yaml");
    await expectOneProblem(
      "tenants/Free_Bie.yaml",
      fleet.lineOf("tenants/Free_Bie.yaml", "id:"),
      "id",
      /^"Free_Bie" is not a DNS label: use lower-case letters, digits and dashes, starting with a letter/,
    );
  });

  it("id longer than a DNS-safe 24 characters", async () => {
    const id = "a".repeat(25);
    fleet.write(`tenants/${id}.yaml`, fleet.read("tenants/freebie-one.yaml").replace("id: freebie-one", `id: ${id}`));
    fleet.remove("tenants/freebie-one.yaml");
    await expectOneProblem(`tenants/${id}.yaml`, 2, "id", `"${id}" is longer than 24 characters; DNS-safe resource names need ids of at most 24`);
  });

  it("reserved id", async () => {
    fleet.write("tenants/admin.yaml", fleet.read("tenants/freebie-one.yaml").replace("id: freebie-one", "id: admin"));
    fleet.remove("tenants/freebie-one.yaml");
    await expectOneProblem(
      "tenants/admin.yaml",
      fleet.lineOf("tenants/admin.yaml", "id:"),
      "id",
      '"admin" is reserved (it collides with a platform host name or word); choose another id',
    );
  });

  it("id not equal to the file name", async () => {
    fleet.edit("tenants/freebie-one.yaml", "id: freebie-one", "id: freebie-three");
    await expectOneProblem(
      "tenants/freebie-one.yaml",
      fleet.lineOf("tenants/freebie-one.yaml", "id:"),
      "id",
      '"freebie-three" must equal the file name "freebie-one"; rename the file or change the id',
    );
  });

  it("tier/deployment contradiction: free tier on a dedicated deployment", async () => {
    fleet.edit("tenants/freebie-one.yaml", "tier: free\n", "tier: free\ndeployment: dedicated\n");
    await expectOneProblem(
      "tenants/freebie-one.yaml",
      fleet.lineOf("tenants/freebie-one.yaml", "deployment:"),
      "deployment",
      "tier free cannot be dedicated: allowed pooled (only enterprise may choose); remove deployment or change the tier",
    );
  });

  it("tier/deployment contradiction: dedicated tier on a pooled deployment", async () => {
    fleet.edit("tenants/acme.yaml", "tier: dedicated\n", "tier: dedicated\ndeployment: pooled\n");
    await expectOneProblem(
      "tenants/acme.yaml",
      fleet.lineOf("tenants/acme.yaml", "deployment:"),
      "deployment",
      "tier dedicated cannot be pooled: allowed dedicated (only enterprise may choose); remove deployment or change the tier",
    );
  });

  it("region not allowed", async () => {
    fleet.edit("tenants/freebie-one.yaml", "region: us-east-1", "region: ap-south-1");
    await expectOneProblem(
      "tenants/freebie-one.yaml",
      fleet.lineOf("tenants/freebie-one.yaml", "region:"),
      "region",
      '"ap-south-1" is not allowed; allowed regions: us-east-1, eu-west-1',
    );
  });

  it("environment not declared by the platform", async () => {
    fleet.edit("tenants/freebie-one.yaml", "  prod: {}\n", "  prod: {}\n  qa: {}\n");
    await expectOneProblem(
      "tenants/freebie-one.yaml",
      fleet.lineOf("tenants/freebie-one.yaml", "qa:"),
      "environments.qa",
      'environment "qa" is not declared by the platform (Pulumi.yaml); declared: prod, staging, dev',
    );
  });

  describe.each([
    ["..", "../slack"],
    ["/", "slack/bot"],
    ["upper case", "SlackBot"],
    ["a space", "slack bot"],
  ])("secret name with %s", (_what, bad) => {
    const rule =
      "must be lower-case letters, digits, _ or -, starting with a letter (no '/', '..', spaces or upper case): it becomes part of a Secrets Manager name under <app>/<env>/tenants/<tenant>/";

    it("as a tenant secret", async () => {
      fleet.edit("tenants/acme.yaml", "secrets: [slack_bot_token,", `secrets: [${JSON.stringify(bad)},`);
      await expectOneProblem("tenants/acme.yaml", fleet.lineOf("tenants/acme.yaml", "secrets:"), "secrets[0]", `secret name ${JSON.stringify(bad)} ${rule}`);
    });

    it("as a team secret", async () => {
      fleet.edit("tenants/acme.yaml", "support: { secrets: [webhook_secret] }", `support: { secrets: [${JSON.stringify(bad)}] }`);
      await expectOneProblem(
        "tenants/acme.yaml",
        fleet.lineOf("tenants/acme.yaml", "support:"),
        "environments.prod.teams.support.secrets[0]",
        `secret name ${JSON.stringify(bad)} ${rule}`,
      );
    });
  });

  it.each([
    ["..", "..", '[".."]'],
    ["/", "sup/port", '["sup/port"]'],
    ["upper case", "Support", ".Support"],
    ["a space", "sup port", '["sup port"]'],
  ])("team name with %s", async (_what, bad, pathTail) => {
    fleet.edit("tenants/acme.yaml", "      support:", `      ${JSON.stringify(bad)}:`);
    await expectOneProblem(
      "tenants/acme.yaml",
      fleet.lineOf("tenants/acme.yaml", "{ secrets: [webhook_secret] }"),
      `environments.prod.teams${pathTail}`,
      `team name ${JSON.stringify(bad)} must be lower-case letters, digits or -, starting with a letter (no '/', '..', spaces or upper case): it becomes part of <app>/<env>/tenants/<tenant>/teams/<team>/`,
    );
  });
});

describe("cross-file bad input", () => {
  it("duplicate id (acme.yaml and acme.yml)", async () => {
    fleet.write("tenants/acme.yml", fleet.read("tenants/acme.yaml"));
    await expectOneProblem(
      "tenants/acme.yml",
      fleet.lineOf("tenants/acme.yml", "id:"),
      "id",
      `duplicate tenant id "acme", also in ${fleet.shown("tenants/acme.yaml")}; keep one file per tenant and delete the other`,
    );
  });

  it("overlapping CIDRs: tenant and tenant", async () => {
    fleet.edit("tenants/acme.yaml", "cidr: 10.66.0.0/16", "cidr: 10.64.0.0/16"); // megacorp prod has 10.64.0.0/16
    // Reported once, on the tenant later in id order, naming the other.
    await expectOneProblem(
      "tenants/megacorp.yaml",
      fleet.lineOf("tenants/megacorp.yaml", "cidr: 10.64.0.0/16"),
      "dedicated.prod.cidr",
      "10.64.0.0/16 of tenant megacorp (prod) overlaps 10.64.0.0/16 of tenant acme (prod); choose a free /16 inside 10.64.0.0/10 (tenantctl new allocates one)",
    );
  });

  it("overlapping CIDRs: tenant and tenant, partially (a /17 inside another tenant's /16)", async () => {
    fleet.edit("tenants/acme.yaml", "cidr: 10.66.0.0/16", "cidr: 10.65.128.0/17"); // megacorp staging has 10.65.0.0/16
    await expectOneProblem(
      "tenants/megacorp.yaml",
      fleet.lineOf("tenants/megacorp.yaml", "cidr: 10.65.0.0/16"),
      "dedicated.staging.cidr",
      "10.65.0.0/16 of tenant megacorp (staging) overlaps 10.65.128.0/17 of tenant acme (prod); choose a free /16 inside 10.64.0.0/10 (tenantctl new allocates one)",
    );
  });

  it("overlapping CIDRs: tenant and cell", async () => {
    fleet.edit("tenants/acme.yaml", "cidr: 10.66.0.0/16", "cidr: 10.1.0.0/16"); // cell shared-prod-use1-01
    await expectOneProblem(
      "tenants/acme.yaml",
      fleet.lineOf("tenants/acme.yaml", "cidr:"),
      "dedicated.prod.cidr",
      "10.1.0.0/16 of tenant acme (prod) overlaps 10.1.0.0/16 of cell shared-prod-use1-01 and is outside the dedicated supernet 10.64.0.0/10; choose a free /16 inside 10.64.0.0/10 (tenantctl new allocates one)",
    );
  });

  it("overlapping CIDRs: tenant and the control plane's hub", async () => {
    fleet.edit("tenants/acme.yaml", "cidr: 10.66.0.0/16", "cidr: 10.0.0.0/16");
    await expectOneProblem(
      "tenants/acme.yaml",
      fleet.lineOf("tenants/acme.yaml", "cidr:"),
      "dedicated.prod.cidr",
      "10.0.0.0/16 of tenant acme (prod) overlaps 10.0.0.0/16 of the us-east-1 hub and is outside the dedicated supernet 10.64.0.0/10; choose a free /16 inside 10.64.0.0/10 (tenantctl new allocates one)",
    );
  });

  it("overlapping CIDRs: cell and a hub, reported on the cell's stack file", async () => {
    fleet.edit("stacks/Pulumi.shared-prod-use1-01.yaml", "cidr: 10.1.0.0/16", "cidr: 10.0.0.0/16");
    await expectOneProblem(
      "stacks/Pulumi.shared-prod-use1-01.yaml",
      fleet.lineOf("stacks/Pulumi.shared-prod-use1-01.yaml", "cidr:"),
      "config.saas-tenancy:cell.cidr",
      "10.0.0.0/16 of cell shared-prod-use1-01 overlaps 10.0.0.0/16 of the us-east-1 hub; choose a block no cell, tenant or hub uses",
    );
  });

  it("a customer's peered VPC overlapping one of ours, reported at its customerVpc", async () => {
    fleet.edit("tenants/megacorp.yaml", "cidr: 172.20.0.0/16", "cidr: 10.1.0.0/16");
    await expectOneProblem(
      "tenants/megacorp.yaml",
      fleet.lineOf("tenants/megacorp.yaml", "cidr: 10.1.0.0/16"),
      "dedicated.prod.customerVpc.cidr",
      "10.1.0.0/16 of the customer VPC of tenant megacorp (prod) overlaps 10.1.0.0/16 of cell shared-prod-use1-01; the customer's VPC range must be disjoint from ours: peer a VPC of theirs that overlaps no hub, cell, dedicated VPC or other customer VPC",
    );
  });

  it("a customer's peered VPC inside the dedicated supernet", async () => {
    fleet.edit("tenants/megacorp.yaml", "cidr: 172.20.0.0/16", "cidr: 10.100.0.0/16");
    await expectOneProblem(
      "tenants/megacorp.yaml",
      fleet.lineOf("tenants/megacorp.yaml", "cidr: 10.100.0.0/16"),
      "dedicated.prod.customerVpc.cidr",
      "10.100.0.0/16 of the customer VPC of tenant megacorp (prod) overlaps 10.64.0.0/10 of the dedicated supernet; the customer's VPC range must be disjoint from ours: peer a VPC of theirs that overlaps no hub, cell, dedicated VPC or other customer VPC",
    );
  });

  it("vpcPeering without a customerVpc", async () => {
    fleet.edit("tenants/megacorp.yaml", "    customerVpc: { accountId: \"222222222222\", vpcId: vpc-0a1b2c3d4e5f60729, cidr: 172.21.0.0/16 }\n", "");
    await expectOneProblem(
      "tenants/megacorp.yaml",
      fleet.lineOf("tenants/megacorp.yaml", "cidr: 10.65.0.0/16") - 1,
      "dedicated.staging",
      "features.vpcPeering is on but this environment has no customerVpc; add customerVpc: { accountId: <12 digits>, vpcId: vpc-..., cidr: <their CIDR> }",
    );
  });

  it("a platform region without its platform stack file", async () => {
    fleet.remove("stacks/Pulumi.platform-eu-west-1.yaml");
    await expectOneProblem(
      "stacks/Pulumi.platform-eu-west-1.yaml",
      1,
      "(document)",
      "is missing: region eu-west-1 is a platform region and needs its platform stack (hub network, Transit Gateway, runner); create it with config aws:region: eu-west-1 and saas-tenancy:image",
    );
  });

  it("a platform stack file in the wrong region, or without a pinned image", async () => {
    fleet.edit("stacks/Pulumi.platform-eu-west-1.yaml", "aws:region: eu-west-1", "aws:region: us-east-1");
    await expectOneProblem(
      "stacks/Pulumi.platform-eu-west-1.yaml",
      fleet.lineOf("stacks/Pulumi.platform-eu-west-1.yaml", "aws:region"),
      "config.aws:region",
      "is us-east-1 but the stack is the platform stack of eu-west-1; they must be equal",
    );
    fleet.edit("stacks/Pulumi.platform-eu-west-1.yaml", "aws:region: us-east-1", "aws:region: eu-west-1");
    fleet.edit("stacks/Pulumi.platform-eu-west-1.yaml", "tenancy-control-plane:0.1.0", "tenancy-control-plane:latest");
    await expectOneProblem(
      "stacks/Pulumi.platform-eu-west-1.yaml",
      fleet.lineOf("stacks/Pulumi.platform-eu-west-1.yaml", "saas-tenancy:image"),
      "config.saas-tenancy:image",
      'saas-tenancy:image is "111111111111.dkr.ecr.eu-west-1.amazonaws.com/tenancy-control-plane:latest": the control plane\'s image, pinned by tag or digest (e.g. 111111111111.dkr.ecr.us-east-1.amazonaws.com/tenancy-control-plane:1.4.2; not :latest)',
    );
  });

  it("placement into a missing cell", async () => {
    fleet.edit("tenants/freebie-one.yaml", "prod: use1-01", "prod: use1-09");
    await expectOneProblem(
      "tenants/freebie-one.yaml",
      fleet.lineOf("tenants/freebie-one.yaml", "prod: use1-09"),
      "placement.prod",
      "cell use1-09 has no stack file stacks/Pulumi.shared-prod-use1-09.yaml; cells in prod: euw1-01, use1-01, use1-02",
    );
  });

  it("placement into a full cell", async () => {
    // use1-01 (prod) holds freebie-one and startup-alpha; make it full, then place one more.
    fleet.edit("stacks/Pulumi.shared-prod-use1-01.yaml", "capacity: 50", "capacity: 2");
    fleet.write("tenants/zeta.yaml", fleet.read("tenants/freebie-one.yaml").replace("id: freebie-one", "id: zeta"));
    await expectOneProblem(
      "tenants/zeta.yaml",
      fleet.lineOf("tenants/zeta.yaml", "prod: use1-01"),
      "placement.prod",
      `cell use1-01 is full: capacity 2, 3 tenants placed (freebie-one, startup-alpha, zeta); place this tenant in a cell with room (tenantctl new chooses one), raise capacity in ${fleet.shown("stacks/Pulumi.shared-prod-use1-01.yaml")}, or add a cell`,
    );
  });

  it("placement into a cell of another region", async () => {
    fleet.edit("tenants/freebie-one.yaml", "prod: use1-01", "prod: euw1-01");
    await expectOneProblem(
      "tenants/freebie-one.yaml",
      fleet.lineOf("tenants/freebie-one.yaml", "prod: euw1-01"),
      "placement.prod",
      "cell euw1-01 is in eu-west-1 but the tenant's region is us-east-1; data must stay in its region",
    );
  });

  it("dedicated tenant without its stack file", async () => {
    fleet.remove("stacks/Pulumi.dedicated-acme-prod.yaml");
    await expectOneProblem(
      "tenants/acme.yaml",
      fleet.lineOf("tenants/acme.yaml", "dedicated:") + 1, // the `prod:` key under dedicated
      "dedicated.prod",
      "stack file stacks/Pulumi.dedicated-acme-prod.yaml is missing; create it (tenantctl new writes it)",
    );
  });

  it("stack file without its tenant", async () => {
    fleet.write("stacks/Pulumi.dedicated-ghost-prod.yaml", "# left behind\nconfig:\n  aws:region: us-east-1\n");
    await expectOneProblem(
      "stacks/Pulumi.dedicated-ghost-prod.yaml",
      2,
      "(document)",
      "tenant ghost has no file tenants/ghost.yaml; remove this stack file (after destroying the stack) or fix the tenant",
    );
  });

  it("a stack file whose name is no known stack kind", async () => {
    fleet.write("stacks/Pulumi.prod.yaml", "config:\n  aws:region: us-east-1\n");
    await expectOneProblem(
      "stacks/Pulumi.prod.yaml",
      1,
      "(document)",
      'unknown stack name "prod": expected platform-<region> (e.g. platform-us-east-1), shared-<env>-<cell> (e.g. shared-prod-use1-01) or dedicated-<tenant>-<env> (e.g. dedicated-acme-prod), with <env> one of: prod, staging, dev; rename the file',
    );
  });

  it("a broken cell stack file does not cascade into 'no stack file' problems for its tenants", async () => {
    fleet.edit("stacks/Pulumi.shared-prod-use1-01.yaml", "    capacity: 50\n", "    capacity: 50\n    colour: blue\n");
    await expectOneProblem(
      "stacks/Pulumi.shared-prod-use1-01.yaml",
      fleet.lineOf("stacks/Pulumi.shared-prod-use1-01.yaml", "colour:"),
      "config.saas-tenancy:cell.colour",
      'unknown key "colour"; allowed keys: cidr, azs, ingressHostname, capacity, dbInstanceClass, dbEngineVersion, dbAllocatedStorageGb, opening, draining',
    );
  });

  it("a dedicated stack file in another region than its tenant", async () => {
    fleet.edit("stacks/Pulumi.dedicated-acme-prod.yaml", "aws:region: us-east-1", "aws:region: eu-west-1");
    await expectOneProblem(
      "stacks/Pulumi.dedicated-acme-prod.yaml",
      fleet.lineOf("stacks/Pulumi.dedicated-acme-prod.yaml", "aws:region"),
      "config.aws:region",
      "is eu-west-1 but tenant acme is in us-east-1",
    );
  });

  it("a bad platform object in Pulumi.yaml is reported at its key", async () => {
    fleet.edit("Pulumi.yaml", "regions: [us-east-1, eu-west-1]", "regions: []");
    await expectOneProblem(
      "Pulumi.yaml",
      fleet.lineOf("Pulumi.yaml", "regions: []"),
      "config.saas-tenancy:platform.value.regions",
      "Too small: expected array to have >=1 items; fix the platform settings",
    );
  });

  it("a broken tenant file does not cascade into a 'stack file without its tenant' problem", async () => {
    fleet.edit("tenants/acme.yaml", "tier: dedicated\n", "tier: dedicated\ncolour: blue\n");
    const r = await fleet.run(["validate"]);
    expect(r.code).toBe(1);
    expect(r.stderr.filter((l) => l.includes("Pulumi.dedicated-acme-prod"))).toEqual([]);
  });
});
