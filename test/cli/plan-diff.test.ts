import * as aws from "@pulumi/aws";
import * as pulumi from "@pulumi/pulumi";
import * as random from "@pulumi/random";
import { readFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { describe, expect, it } from "vitest";
import { diffPlans, showValue, type StackDiff } from "../../plan/diff.ts";
import { renderMarkdown, type PlanReport, COMMENT_MARKER, MAX_COMMENT_CHARS } from "../../cli/plan/markdown.ts";
import { effectOf, RESOURCE_RULES, topLevelKey } from "../../plan/replacements.ts";
import { requireFleet, type Fleet } from "../../infra/model/fleet.ts";
import { renderStack } from "../../plan/render/render.ts";
import { SECRET_SIG, SECRET_SIG_KEY, type PlannedStack, type RenderedResource, type Violation } from "../../plan/types.ts";

// --- hand-built plans: exact URNs and inputs ---------------------------------------------------

const STACK = "shared-prod-use1-01";
const PREFIX = `urn:pulumi:${STACK}::saas-tenancy::`;

function secret(value: unknown): Record<string, unknown> {
  return { [SECRET_SIG_KEY]: SECRET_SIG, value };
}

interface ResOpts {
  parent?: RenderedResource;
  protect?: boolean;
  retainOnDelete?: boolean;
  aliases?: string[];
  custom?: boolean;
}

function res(type: string, name: string, inputs: Record<string, unknown>, o: ResOpts = {}): RenderedResource {
  const parentType = o.parent ? o.parent.urn.split("::")[2]! : "";
  const qualified = parentType ? `${parentType}$${type}` : type;
  const options = {
    protect: o.protect ?? false, retainOnDelete: o.retainOnDelete ?? false, deleteBeforeReplace: false, provider: "", ignoreChanges: [],
    ...(o.aliases ? { aliases: o.aliases } : {}),
  };
  return { urn: `${PREFIX}${qualified}::${name}`, type, name, parent: o.parent?.urn ?? "", inputs, custom: o.custom ?? true, options };
}

function stack(resources: RenderedResource[], tenants: string[], violations: Violation[] = []): PlannedStack {
  return { name: STACK, kind: "shared", tenants, resources, outputs: {}, violations };
}

const cell = res("fixture:index:Cell", "use1-01", {}, { custom: false });
const acmeHolder = res("fixture:index:Tenant", "acme", {}, { parent: cell, custom: false });
const db = (over: Record<string, unknown> = {}, o: ResOpts = {}) =>
  res("aws:rds/instance:Instance", "use1-01-db", {
    identifier: "tenancy-prod-use1-01", engine: "postgres", instanceClass: "db.r6g.large", allocatedStorage: 100, storageEncrypted: true,
    password: secret("s3cr3t-before"), tags: { tenant: "shared", env: "prod" }, ...over,
  }, { parent: cell, ...o });
const schema = (parent: RenderedResource, o: ResOpts = {}) => res("postgresql:index/schema:Schema", "acme-schema", { name: "tenant_acme" }, { parent, ...o });

describe("diffPlans on hand-built plans", () => {
  it("reports creates, in-place updates with their paths and values, and deletes", () => {
    const before = stack([cell, db(), res("aws:s3/bucket:Bucket", "old-bucket", { bucket: "old", tags: { tenant: "shared" } }, { parent: cell })], []);
    const after = stack([cell, db({ tags: { tenant: "shared", env: "prod", team: "db" } }), res("aws:kms/key:Key", "k", { enableKeyRotation: true })], ["acme"]);
    const d = diffPlans(before, after);
    expect(d.status).toBe("changed");
    expect(d.counts).toEqual({ create: 1, update: 1, replace: 0, delete: 1, same: 0 });
    expect(d.tenants).toEqual({ before: [], after: ["acme"], added: ["acme"], removed: [] });
    expect(d.resources.map((r) => [r.action, r.name])).toEqual([["delete", "old-bucket"], ["create", "k"], ["update", "use1-01-db"]]);
    const update = d.resources.find((r) => r.action === "update")!;
    expect(update.changes).toEqual([{ path: "tags.team", before: "(unset)", after: '"db"', effect: "update" }]);
    const deleted = d.resources.find((r) => r.action === "delete")!;
    expect(deleted.dataLoss).toBe(true);
    expect(deleted.warnings).toEqual([`DATA LOSS: aws:s3/bucket:Bucket old-bucket is deleted: ${RESOURCE_RULES["aws:s3/bucket:Bucket"]!.dataLoss}`]);
  });

  it("replaces a database whose engine changes, and says it loses data and is protected", () => {
    const d = diffPlans(stack([cell, db({}, { protect: true })], []), stack([cell, db({ engine: "mysql" }, { protect: true })], []));
    const [r] = d.resources;
    expect(r).toMatchObject({ action: "replace", name: "use1-01-db", reasons: ["engine changes and forces replacement"], dataLoss: true });
    expect(r!.changes).toEqual([{ path: "engine", before: '"postgres"', after: '"mysql"', effect: "replace" }]);
    expect(r!.warnings).toEqual([
      `DATA LOSS: aws:rds/instance:Instance use1-01-db is replaced: ${RESOURCE_RULES["aws:rds/instance:Instance"]!.dataLoss}`,
      "protected: pulumi up refuses to replace use1-01-db until protect is removed in the program",
    ]);
    expect(d.counts.replace).toBe(1);
  });

  it("renames a database in place (identifier) with a warning instead of a replacement", () => {
    const d = diffPlans(stack([cell, db()], []), stack([cell, db({ identifier: "tenancy-prod-use1-01b" })], []));
    const [r] = d.resources;
    expect(r!.action).toBe("update");
    expect(r!.dataLoss).toBe(false);
    expect(r!.warnings).toEqual([`identifier: ${RESOURCE_RULES["aws:rds/instance:Instance"]!.caution!.identifier}`]);
  });

  it("never prints a secret: changed secrets, values inside secrets and secretness changes show [secret]", () => {
    const d = diffPlans(
      stack([cell, db(), res("aws:secretsmanager/secretVersion:SecretVersion", "sv", { secretString: secret(JSON.stringify({ password: "old-pw", host: "h" })) })], []),
      stack([cell, db({ password: secret("s3cr3t-after"), masterUsername: "admin" }), res("aws:secretsmanager/secretVersion:SecretVersion", "sv", { secretString: secret(JSON.stringify({ password: "new-pw", host: "h" })) })], []),
    );
    const text = JSON.stringify(d);
    for (const value of ["s3cr3t-before", "s3cr3t-after", "old-pw", "new-pw"]) expect(text).not.toContain(value);
    const dbChange = d.resources.find((r) => r.name === "use1-01-db")!;
    expect(dbChange.changes).toEqual([
      { path: "masterUsername", before: "(unset)", after: '"admin"', effect: "update" },
      { path: "password", before: "[secret]", after: "[secret]", effect: "update" },
    ]);
    const sv = d.resources.find((r) => r.name === "sv")!;
    // A JSON document inside a secret is diffed structurally, still without values.
    expect(sv.changes).toEqual([{ path: "secretString(json).password", before: "[secret]", after: "[secret]", effect: "replace" }]);
    expect(sv.action).toBe("replace");
    expect(showValue("x", true)).toBe("[secret]");
    // A value that becomes a secret is a change too, shown as such.
    const s2 = diffPlans(stack([cell, db({ password: "plain" })], []), stack([cell, db({ password: secret("plain") })], []));
    expect(s2.resources[0]!.changes).toEqual([{ path: "password", before: "[secret]", after: "[secret]", effect: "update" }]);
    expect(JSON.stringify(s2)).not.toContain("plain\"");
  });

  it("diffs JSON documents (IAM policies) by path", () => {
    const policy = (resource: string) => JSON.stringify({ Version: "2012-10-17", Statement: [{ Effect: "Allow", Action: "s3:GetObject", Resource: resource }] });
    const d = diffPlans(
      stack([res("aws:iam/rolePolicy:RolePolicy", "p", { role: "r", policy: policy("arn:aws:s3:::b/tenants/acme/*") })], []),
      stack([res("aws:iam/rolePolicy:RolePolicy", "p", { role: "r", policy: policy("arn:aws:s3:::b/*") })], []),
    );
    expect(d.resources[0]!.changes).toEqual([
      { path: "policy(json).Statement[0].Resource", before: '"arn:aws:s3:::b/tenants/acme/*"', after: '"arn:aws:s3:::b/*"', effect: "update" },
    ]);
  });

  it("treats the same type and name under another parent type as a replacement, unless aliased", () => {
    // URNs carry the parent *type* chain: moving a schema from a tenant component to the cell changes its URN.
    const before = stack([cell, acmeHolder, schema(acmeHolder)], ["acme"]);
    const moved = diffPlans(before, stack([cell, acmeHolder, schema(cell)], ["acme"]));
    expect(moved.resources).toHaveLength(1);
    const [r] = moved.resources;
    expect(r!.action).toBe("replace");
    expect(r!.previousUrn).toBe(schema(acmeHolder).urn);
    expect(r!.urn).toBe(schema(cell).urn);
    expect(r!.reasons[0]).toMatch(/^its parent changed .* without an alias/);
    expect(r!.dataLoss).toBe(true);

    const aliased = diffPlans(before, stack([cell, acmeHolder, schema(cell, { aliases: [schema(acmeHolder).urn] })], ["acme"]));
    expect(aliased.resources.map((x) => [x.action, x.previousUrn])).toEqual([["update", schema(acmeHolder).urn]]);
    expect(aliased.resources[0]!.dataLoss).toBe(false);

    // Another component of the same type keeps the URN: nothing changes for the engine.
    const betaHolder = res("fixture:index:Tenant", "beta", {}, { parent: cell, custom: false });
    expect(diffPlans(before, stack([cell, acmeHolder, betaHolder, schema(betaHolder)], ["acme"])).resources).toEqual([]);
  });

  it("does not call a retained deletion data loss, but says what stays behind", () => {
    const d = diffPlans(stack([cell, db({}, { retainOnDelete: true })], []), stack([cell], []));
    expect(d.resources[0]).toMatchObject({ action: "delete", dataLoss: false });
    expect(d.resources[0]!.warnings[0]).toMatch(/^retainOnDelete: Pulumi forgets/);
  });

  it("reports violations that appear and that go away", () => {
    const v = (policy: string, urn: string): Violation => ({ policy, level: "mandatory", urn, message: `${policy} message` });
    const d = diffPlans(stack([cell], [], [v("tenant-tags", "a"), v("rds-hardening", "b")]), stack([cell], [], [v("rds-hardening", "b"), v("secret-namespace", "c")]));
    expect(d.violations.introduced.map((x) => x.policy)).toEqual(["secret-namespace"]);
    expect(d.violations.resolved.map((x) => x.policy)).toEqual(["tenant-tags"]);
    expect(d.violations.after).toHaveLength(2);
  });

  it("handles a new and a removed stack", () => {
    const fresh = diffPlans(undefined, stack([cell, db()], ["acme"]));
    expect(fresh.status).toBe("new");
    expect(fresh.counts).toEqual({ create: 1, update: 0, replace: 0, delete: 0, same: 0 });
    const gone = diffPlans(stack([cell, db(), schema(acmeHolder)], ["acme"]), undefined);
    expect(gone.status).toBe("removed");
    expect(gone.counts.delete).toBe(2);
    expect(gone.resources.every((r) => r.dataLoss)).toBe(true);
    expect(gone.warnings[0]).toMatch(/does not destroy it; run `pulumi destroy --stack shared-prod-use1-01`/);
    expect(() => diffPlans(undefined, undefined)).toThrow(/both sides/);
  });

  it("counts identical resources as unchanged and ignores components", () => {
    const d = diffPlans(stack([cell, acmeHolder, db()], ["acme"]), stack([cell, db()], ["acme"]));
    expect(d.status).toBe("unchanged");
    expect(d.counts).toEqual({ create: 0, update: 0, replace: 0, delete: 0, same: 1 });
  });
});

// --- the replacement table ---------------------------------------------------------------------

describe("the replacement table", () => {
  it("classifies paths by their top-level input", () => {
    expect(topLevelKey("tags.tenant")).toBe("tags");
    expect(topLevelKey("ingress[0].cidrBlocks[1]")).toBe("ingress");
    expect(topLevelKey("policy(json).Statement[0]")).toBe("policy");
    expect(effectOf("aws:ec2/vpc:Vpc", "cidrBlock")).toEqual({ effect: "replace" });
    expect(effectOf("aws:ec2/vpc:Vpc", "tags.env")).toEqual({ effect: "update" });
    expect(effectOf("aws:ec2/flowLog:FlowLog", "trafficType")).toEqual({ effect: "replace" });
    expect(effectOf("aws:ec2/flowLog:FlowLog", "tags.tenant")).toEqual({ effect: "update" });
    expect(effectOf("postgresql:index/schema:Schema", "name").effect).toBe("caution");
    expect(effectOf("unknown:index/thing:Thing", "anything")).toEqual({ effect: "update" });
  });

  it("names only inputs the real SDKs have (a typo here would silently never match)", () => {
    const sdk = resolve(import.meta.dirname, "../../node_modules/@pulumi");
    for (const [type, rules] of Object.entries(RESOURCE_RULES)) {
      const [pkg, modPath, cls] = /^([a-z]+):([^:]+):(.+)$/.exec(type)!.slice(1) as [string, string, string];
      const [mod, file] = modPath.split("/") as [string, string];
      const dts = readFileSync(join(sdk, pkg, mod === "index" ? "" : mod, `${file}.d.ts`), "utf8");
      const argsStart = dts.indexOf(`export interface ${cls}Args {`);
      expect(argsStart, `${type}: ${cls}Args`).toBeGreaterThan(0);
      const args = dts.slice(argsStart, dts.indexOf("\n}", argsStart));
      const keys = [...rules.replaceOn.filter((k) => k !== "*"), ...(rules.except ?? []), ...Object.keys(rules.caution ?? {})];
      for (const key of keys) expect(args, `${type}.${key}`).toMatch(new RegExp(`\\n\\s+(readonly )?${key}\\??:`));
      expect(rules.source).toMatch(/^https:\/\/github\.com\//);
    }
  });
});

// --- cascades, on real renders -----------------------------------------------------------------

const fleet: Fleet = requireFleet({ projectDir: resolve(import.meta.dirname, "../..") });

function cascadeProgram(keySpec: string) {
  return async () => {
    const key = new aws.kms.Key("cell-key", { customerMasterKeySpec: keySpec, enableKeyRotation: true, tags: { tenant: "shared" } });
    const pw = new random.RandomPassword("master", { length: 24, special: false });
    new aws.rds.Instance("cell-db", {
      identifier: "tenancy-prod-use1-01", engine: "postgres", instanceClass: "db.r6g.large", allocatedStorage: 100,
      storageEncrypted: true, kmsKeyId: key.arn, password: pw.result, tags: { tenant: "shared" },
    });
    new aws.secretsmanager.Secret("cell-secret", { name: "tenancy/prod/global/cells/use1-01/database", kmsKeyId: key.arn, tags: { tenant: "shared" } });
    new aws.ec2.Vpc("cell-vpc", { cidrBlock: "10.1.0.0/16", tags: { tenant: "shared" } });
    return { key: pulumi.output(key.arn) };
  };
}

async function planned(program: () => Promise<Record<string, unknown>>): Promise<PlannedStack> {
  return { ...(await renderStack(fleet, STACK, { program, fastPromises: true })), violations: [] };
}

describe("replacement cascades through computed values (real renders)", () => {
  it("a replaced KMS key replaces the database that uses its ARN, and changes the secret that does", async () => {
    const before = await planned(cascadeProgram("SYMMETRIC_DEFAULT"));
    const after = await planned(cascadeProgram("RSA_2048"));
    const d: StackDiff = diffPlans(before, after, { mock: { region: "us-east-1", accountId: fleet.platform.awsAccountId, stack: STACK } });
    expect(d.resources.map((r) => [r.action, r.name])).toEqual([
      ["replace", "cell-key"],
      ["replace", "cell-db"],
      ["update", "cell-secret"],
    ]);
    const rds = d.resources.find((r) => r.name === "cell-db")!;
    expect(rds.reasons).toEqual(["kmsKeyId changes and forces replacement"]);
    const unknownKey = "(known after apply: aws:kms/key:Key cell-key is replaced)";
    expect(rds.changes).toEqual([
      { path: "kmsKeyId", before: expect.stringMatching(/^"arn:aws:kms:us-east-1:111111111111:key\//), after: unknownKey, effect: "replace" },
    ]);
    expect(rds.dataLoss).toBe(true);
    // A secret can switch keys in place (kmsKeyId is not ForceNew for secrets): an update, listed with the unknown value.
    const sec = d.resources.find((r) => r.name === "cell-secret")!;
    expect(sec.changes).toEqual([{ path: "kmsKeyId", before: expect.any(String), after: unknownKey, effect: "update" }]);
    expect(d.resources.find((r) => r.name === "cell-vpc")).toBeUndefined();
    // Inferring the mock context from the ARNs gives the same answer.
    expect(diffPlans(before, after).resources.map((r) => r.name)).toEqual(["cell-key", "cell-db", "cell-secret"]);
  });
});

describe("values computed by resources being created (real renders)", () => {
  it("show as known after apply, like preview, instead of the mock's stand-in", async () => {
    const program = (ownKey: boolean) => async () => {
      const cellKey = new aws.kms.Key("cell-key", { enableKeyRotation: true });
      const key = ownKey ? new aws.kms.Key("tenant-key", { enableKeyRotation: true }) : cellKey;
      new aws.secretsmanager.Secret("tenant-secret", { name: "tenancy/prod/tenants/acme/api", kmsKeyId: key.arn });
      return {};
    };
    const d = diffPlans(await planned(program(false)), await planned(program(true)));
    expect(d.resources.map((r) => [r.action, r.name])).toEqual([["create", "tenant-key"], ["update", "tenant-secret"]]);
    expect(d.resources[1]!.changes).toEqual([
      { path: "kmsKeyId", before: expect.stringMatching(/^"arn:aws:kms:/), after: "(known after apply: aws:kms/key:Key tenant-key is created)", effect: "update" },
    ]);
  });
});

// --- the PR comment ----------------------------------------------------------------------------

function goldenReport(): PlanReport {
  const v = (policy: string, level: Violation["level"], urn: string, message: string): Violation => ({ policy, level, urn, message });
  const use101 = diffPlans(
    stack([cell, acmeHolder, db({}, { protect: true }), schema(acmeHolder), res("aws:s3/bucket:Bucket", "use1-01-bucket", { bucket: "tenancy-prod-use1-01-data", tags: { tenant: "shared" } }, { parent: cell })], ["acme"], [v("tenant-tags", "advisory", `${PREFIX}aws:s3/bucket:Bucket::x`, "missing tag env")]),
    stack([cell, acmeHolder, db({ engine: "mysql", password: secret("rotated") }, { protect: true }), res("aws:secretsmanager/secret:Secret", "acme-api_key", { name: "tenancy/prod/tenants/acme/api_key", tags: { tenant: "acme" } }, { parent: acmeHolder }), res("aws:s3/bucket:Bucket", "use1-01-bucket", { bucket: "tenancy-prod-use1-01-data", tags: { tenant: "shared", env: "prod" } }, { parent: cell })], ["acme", "newco"], [v("rds-hardening", "mandatory", db().urn, "storage must be encrypted with a customer key | see `kms`")]),
  );
  const fresh: StackDiff = { ...diffPlans(undefined, { ...stack([res("aws:kms/key:Key", "newco-key", { tags: { tenant: "newco" } })], ["newco"]), name: "dedicated-newco-prod", kind: "dedicated" }) };
  return {
    base: { ref: "origin/main", commit: "0123456789abcdef0123456789abcdef01234567" },
    head: { ref: "HEAD", commit: "fedcba9876543210fedcba9876543210fedcba98" },
    stacks: [
      { ...use101, reasons: ["tenants/newco.yaml added"], cost: { before: 412.5, after: 413.9, unverified: true, unpriced: 0 } },
      { ...fresh, reasons: ["stacks/Pulumi.dedicated-newco-prod.yaml added"], cost: { after: 1, unverified: false, unpriced: 1 } },
    ],
    notes: ["Cost: prices of 2026-11-22.", "Rendered offline."],
  };
}

describe("the PR comment (markdown)", () => {
  it("matches the golden comment", async () => {
    await expect(renderMarkdown(goldenReport())).toMatchFileSnapshot("./plan-diff.comment.md");
  });

  it("starts with the sticky-comment marker and puts the summary table before the stack sections", () => {
    const md = renderMarkdown(goldenReport());
    expect(md.startsWith(`${COMMENT_MARKER}\n`)).toBe(true);
    const table = md.indexOf("| stack | kind | tenants | changes | replacements | violations | cost / month |");
    expect(table).toBeGreaterThan(0);
    expect(md.indexOf("<details>")).toBeGreaterThan(table);
    expect(md.match(/<details>/g)).toHaveLength(2);
    expect(md).toContain("> [!CAUTION]");
    expect(md).not.toContain("rotated");
    expect(md).not.toContain("s3cr3t");
  });

  it("drops per-resource details, then truncates, to stay under GitHub's limit", () => {
    const big = goldenReport();
    const many = Array.from({ length: 400 }, (_, i) => res("aws:secretsmanager/secret:Secret", `s-${i}`, { name: `tenancy/prod/tenants/acme/s${i}`, tags: { tenant: "acme" } }));
    big.stacks[0] = { ...big.stacks[0]!, ...diffPlans(stack([], ["acme"]), stack(many, ["acme"])), reasons: [] };
    const full = renderMarkdown(big, 1_000_000);
    expect(full.length).toBeGreaterThan(20_000);
    const capped = renderMarkdown(big, 20_000);
    expect(capped.length).toBeLessThanOrEqual(20_000);
    expect(capped).toContain("details left out to fit GitHub's comment limit");
    expect(MAX_COMMENT_CHARS).toBeLessThan(65_536);
  });
});
