/**
 * Tenant isolation of the rendered IAM, by policy simulation (@cloud-copilot/iam-simulate): every
 * stack of the example fleet is rendered by the real program and every ordered pair of tenant
 * roles (a, b) is checked. The weakened cases run the same checker on a render with one policy
 * loosened and expect it to report the breach.
 */
import { runSimulation } from "@cloud-copilot/iam-simulate";
import { roleArn } from "../../infra/model/accessPolicies.ts";
import { controlPlaneRoleName } from "../../infra/model/naming.ts";
import { beforeAll, describe, expect, it, onTestFinished } from "vitest";
import { renderStack } from "../../plan/render/render.ts";
import type { RenderedStack } from "../../plan/types.ts";
import { exampleFleet } from "./fleetFixture.ts";
import {
  checkIamIsolation, controlPlaneIdentity, simulate, tenantIamFacts, type IamCheckOptions, type TenantIamFacts,
} from "./iamChecks.ts";

const fleet = exampleFleet();
const renders: RenderedStack[] = [];
let facts: TenantIamFacts[] = [];
let opts: IamCheckOptions;

beforeAll(async () => {
  for (const name of fleet.stacks.keys()) renders.push(await renderStack(fleet, name, { fastPromises: true }));
  facts = renders.flatMap((r) => tenantIamFacts(fleet, r));
  opts = {
    controlPlaneRoleArn: roleArn(fleet.platform.awsAccountId, controlPlaneRoleName(fleet.platform.appName)),
    controlPlaneIdentity: controlPlaneIdentity(fleet.platform.appName, fleet.platform.awsAccountId),
  };
});

describe("IAM isolation of every example tenant", () => {
  it("covers every tenant environment of the fleet, each with secrets, a key and an object prefix", () => {
    const expected = [...fleet.tenants.values()].flatMap(({ tenant }) => Object.keys(tenant.environments).map((e) => `${tenant.id}@${e}`));
    expect(facts.map((f) => f.id).sort()).toEqual(expected.sort());
    for (const f of facts) {
      expect(f.secrets.length, f.id).toBeGreaterThan(0);
      expect(f.objectKey, f.id).toBeDefined();
    }
  });

  it("allows each tenant its own secrets, key and objects and denies every other tenant's; no tenant tag changes; trust pinned to the tenant", async () => {
    const { findings, simulations } = await checkIamIsolation(facts, opts);
    expect(findings).toEqual([]);
    // Every ordered pair was simulated (at least 10 requests each).
    expect(simulations).toBeGreaterThan(facts.length * (facts.length - 1) * 10);
  }, 90_000);
});

/** A copy of the stack whose role policy (or trust policy) of `roleName` went through `edit`. */
function weaken(stack: RenderedStack, roleName: string, what: "policy" | "trust", edit: (doc: { Statement: Array<Record<string, unknown>> }) => void): RenderedStack {
  const copy = structuredClone(stack);
  const r = copy.resources.find((x) =>
    what === "policy" ? x.type === "aws:iam/rolePolicy:RolePolicy" && x.inputs.role === roleName : x.type === "aws:iam/role:Role" && x.inputs.name === roleName,
  );
  if (!r) throw new Error(`no ${what} for ${roleName} in ${stack.name}`);
  const key = what === "policy" ? "policy" : "assumeRolePolicy";
  const doc = JSON.parse(String(r.inputs[key])) as { Statement: Array<Record<string, unknown>> };
  edit(doc);
  r.inputs[key] = JSON.stringify(doc);
  return copy;
}

describe("the IAM checker catches a weakened policy", () => {
  /** a: a pooled tenant; a cell-mate whose secrets use the same (cell) key; a dedicated tenant. */
  function cast() {
    const sameKey = (x: TenantIamFacts, y: TenantIamFacts) => x.secrets[0]!.key.arn === y.secrets[0]!.key.arn;
    for (const cell of renders.filter((r) => r.kind === "shared")) {
      const [a, mate] = tenantIamFacts(fleet, cell);
      if (!a || !mate || !sameKey(a, mate)) continue;
      const [other] = tenantIamFacts(fleet, renders.find((r) => r.kind === "dedicated")!);
      return { cell, a, mate, other: other! };
    }
    throw new Error("no cell with two tenants sharing the cell key");
  }

  it("reports a secrets statement widened to Resource *", async () => {
    const { cell, a, mate, other } = cast();
    const weak = weaken(cell, a.roleName, "policy", (d) => {
      for (const s of d.Statement) if ([s.Action].flat().includes("secretsmanager:GetSecretValue")) s.Resource = "*";
    });
    const weakA = tenantIamFacts(fleet, weak).find((f) => f.id === a.id)!;
    const { findings } = await checkIamIsolation([weakA, mate, other], opts);
    expect(findings.length).toBeGreaterThan(0);
    expect(new Set(findings.map((f) => f.subject))).toEqual(new Set([`${a.id} -> ${mate.id}`, `${a.id} -> ${other.id}`]));
    expect(findings.every((f) => f.check === "cross-tenant-access" && f.detail.startsWith("secretsmanager:GetSecretValue"))).toBe(true);
  });

  it("reports a runtime config statement widened to every tenant's document of the env", async () => {
    const { cell, a, mate, other } = cast();
    const weak = weaken(cell, a.roleName, "policy", (d) => {
      for (const s of d.Statement) if (s.Sid === "ReadOwnRuntimeConfig") s.Resource = String(s.Resource).replace(`/tenants/${a.tenant}/`, "/tenants/*/");
    });
    const weakA = tenantIamFacts(fleet, weak).find((f) => f.id === a.id)!;
    const { findings } = await checkIamIsolation([weakA, mate, other], opts);
    // The mate shares a's env; `other` (a dedicated tenant) is in prod too only when a is.
    const sameEnv = [mate, other].filter((f) => f.env === a.env).map((f) => `${a.id} -> ${f.id}`);
    expect(findings.map((f) => `${f.check} ${f.subject} ${f.detail.split(" ")[0]}`).sort()).toEqual(
      sameEnv.flatMap((s) => [`cross-tenant-access ${s} ssm:GetParameter`, `cross-tenant-access ${s} ssm:GetParameters`]).sort(),
    );
    // Without the edit: no finding (the probe is not what fails).
    expect((await checkIamIsolation([a, mate, other], opts)).findings).toEqual([]);
  });

  it("reports a decrypt statement that lost its encryption-context condition (the cell key is shared)", async () => {
    const { cell, a, mate, other } = cast();
    const weak = weaken(cell, a.roleName, "policy", (d) => {
      for (const s of d.Statement) {
        const cond = s.Condition as Record<string, Record<string, unknown>> | undefined;
        if (cond?.StringLike?.["kms:EncryptionContext:SecretARN"] === undefined) continue;
        delete cond.StringLike["kms:EncryptionContext:SecretARN"];
        if (Object.keys(cond.StringLike).length === 0) delete cond.StringLike;
      }
    });
    const weakA = tenantIamFacts(fleet, weak).find((f) => f.id === a.id)!;
    const { findings } = await checkIamIsolation([weakA, mate, other], opts);
    // Only the cell-mate's secrets share a's key; the dedicated tenant's key stays out of reach.
    expect(findings.length).toBe(mate.secrets.length);
    expect(findings.every((f) => f.subject === `${a.id} -> ${mate.id}` && f.detail.startsWith("kms:Decrypt via Secrets Manager"))).toBe(true);
  });

  it("reports an object statement widened to the whole cell bucket", async () => {
    const { cell, a, mate, other } = cast();
    const weak = weaken(cell, a.roleName, "policy", (d) => {
      for (const s of d.Statement) if ([s.Action].flat().includes("s3:GetObject")) s.Resource = `arn:aws:s3:::${a.bucket}/*`;
    });
    const weakA = tenantIamFacts(fleet, weak).find((f) => f.id === a.id)!;
    const { findings } = await checkIamIsolation([weakA, mate, other], opts);
    // The cell-mate's prefix is in the same bucket; the dedicated tenant's bucket is not.
    expect(findings.map((f) => `${f.subject} ${f.detail.split(" ")[0]}`).sort()).toEqual([`${a.id} -> ${mate.id} s3:GetObject`, `${a.id} -> ${mate.id} s3:PutObject`]);
  });

  it("reports a statement that lets the tenant change tags", async () => {
    const { cell, a, mate, other } = cast();
    const weak = weaken(cell, a.roleName, "policy", (d) => {
      d.Statement.push({ Effect: "Allow", Action: ["secretsmanager:TagResource", "secretsmanager:UntagResource"], Resource: "*" });
    });
    const weakA = tenantIamFacts(fleet, weak).find((f) => f.id === a.id)!;
    const { findings } = await checkIamIsolation([weakA, mate, other], opts);
    expect(findings.length).toBe(2 * (a.secrets.length + mate.secrets.length + other.secrets.length));
    expect(findings.every((f) => f.check === "tenant-tag" && f.detail.startsWith("secretsmanager:"))).toBe(true);
  });

  it("reports a trust policy that accepts any tenant session tag", async () => {
    const { cell, a, mate, other } = cast();
    const weak = weaken(cell, a.roleName, "trust", (d) => {
      for (const s of d.Statement) s.Condition = { StringLike: { "aws:RequestTag/tenant": "*" } };
    });
    const weakA = tenantIamFacts(fleet, weak).find((f) => f.id === a.id)!;
    const { findings } = await checkIamIsolation([weakA, mate, other], opts);
    expect(findings.map((f) => f.detail).sort()).toEqual(
      [mate, other].map((b) => `control plane assumed ${a.roleName} with session tag tenant=${b.tenant}`).sort(),
    );
  });
});

describe("encryption-context conditions in the simulator", () => {
  const key = "arn:aws:kms:us-east-1:111111111111:key/00000000-0000-0000-0000-000000000000";
  const own = "arn:aws:secretsmanager:us-east-1:111111111111:secret:tenancy/prod/tenants/a/database-AbCdEf";
  const policy = {
    Version: "2012-10-17",
    Statement: [{ Effect: "Allow", Action: "kms:Decrypt", Resource: key, Condition: { StringLike: { "kms:EncryptionContext:SecretARN": "arn:aws:secretsmanager:us-east-1:111111111111:secret:tenancy/prod/tenants/a/*" } } }],
  };
  const request = (context: Record<string, string>) => ({
    principal: "arn:aws:iam::111111111111:role/tenancy-prod-t-a",
    action: "kms:Decrypt",
    resource: key,
    accountId: "111111111111",
    context,
    identityPolicies: [{ name: "p", policy }],
    resourcePolicy: { Version: "2012-10-17", Statement: [{ Effect: "Allow", Principal: { AWS: "arn:aws:iam::111111111111:root" }, Action: "kms:*", Resource: "*" }] },
  });

  it("are evaluated: the matching context is allowed, another tenant's or none is denied", async () => {
    expect(await simulate(request({ "kms:EncryptionContext:SecretARN": own }))).toBe("Allowed");
    expect(await simulate(request({ "kms:EncryptionContext:SecretARN": own.replace("/a/", "/b/") }))).toBe("ImplicitlyDenied");
    expect(await simulate(request({}))).toBe("ImplicitlyDenied");
  });

  it("need the alias because iam-simulate drops kms:EncryptionContext:<key> (drop the alias once this fails)", async () => {
    const r = request({ "kms:EncryptionContext:SecretARN": own });
    const out = await runSimulation(
      {
        request: { principal: r.principal, action: r.action, resource: { resource: key, accountId: r.accountId }, contextVariables: r.context },
        identityPolicies: r.identityPolicies,
        serviceControlPolicies: [],
        resourceControlPolicies: [],
        resourcePolicy: r.resourcePolicy,
      },
      {},
    );
    expect(out.resultType).toBe("single");
    if (out.resultType !== "single") return;
    expect(out.result.ignoredContextKeys).toEqual(["kms:EncryptionContext:SecretARN"]);
    expect(out.overallResult).toBe("ImplicitlyDenied");
  });
});

describe("an enterprise tenant mid-upgrade: its cell grants its moved key by alias", () => {
  it("decrypts its secrets only with a key carrying its own alias (kms:ResourceAliases)", async () => {
    const { mkdtempSync, cpSync, readFileSync, rmSync, writeFileSync } = await import("node:fs");
    const { tmpdir } = await import("node:os");
    const { join } = await import("node:path");
    const { requireFleet } = await import("../../infra/model/fleet.ts");
    const { PROJECT_DIR } = await import("./fleetFixture.ts");
    const dir = mkdtempSync(join(tmpdir(), "iam-migrating-"));
    onTestFinished(() => rmSync(dir, { recursive: true, force: true }));
    for (const f of ["Pulumi.yaml", "tenants", "stacks"]) cpSync(join(PROJECT_DIR, f), join(dir, f), { recursive: true });
    const path = join(dir, "tenants", "company-beta.yaml");
    const text = readFileSync(path, "utf8").replace("tier: enterprise", "tier: dedicated").replace(/placement:\n {2}prod: use1-02\n/, "");
    writeFileSync(path, `${text}dedicated:\n  prod: { cidr: 10.72.0.0/16 }\nmigration:\n  phase: copying\n  from: { prod: use1-02 }\n  fromTier: enterprise\n  startedAt: "2026-11-01T00:00:00Z"\n`);
    writeFileSync(join(dir, "stacks", "Pulumi.dedicated-company-beta-prod.yaml"), "config:\n  aws:region: us-east-1\n");
    const migrating = requireFleet({ projectDir: dir });
    const cell = await renderStack(migrating, "shared-prod-use1-02", { fastPromises: true });
    // The key moved to the dedicated stack: its key policy is the dedicated program's.
    const ded = await renderStack(migrating, "dedicated-company-beta-prod", { fastPromises: true });
    const keyPolicy = JSON.parse(String(ded.resources.find((r) => r.type === "aws:kms/key:Key")!.inputs.policy)) as { Statement: unknown[] };

    const roleName = "tenancy-prod-t-company-beta";
    const doc = cell.resources.find((r) => r.type === "aws:iam/rolePolicy:RolePolicy" && r.inputs.role === roleName)!;
    const policy = JSON.parse(String(doc.inputs.policy)) as { Statement: unknown[] };
    const account = migrating.platform.awsAccountId;
    const secretArn = `arn:aws:secretsmanager:us-east-1:${account}:secret:tenancy/prod/tenants/company-beta/saml_signing_key-AbCdEf`;
    // Another key whose policy defers to IAM (account root only): the role's own policy decides.
    const rootOnly = { Version: "2012-10-17", Statement: [{ Effect: "Allow", Principal: { AWS: `arn:aws:iam::${account}:root` }, Action: "kms:*", Resource: "*" }] };
    const decrypt = (aliases: string[], resourcePolicy: { Statement: unknown[] } = rootOnly) =>
      simulate({
        principal: `arn:aws:sts::${account}:assumed-role/${roleName}/isolation-test`,
        action: "kms:Decrypt",
        resource: `arn:aws:kms:us-east-1:${account}:key/0b6f3b9e-0000-4000-8000-00000000beta`,
        accountId: account,
        context: {
          "aws:PrincipalArn": `arn:aws:iam::${account}:role/${roleName}`, "aws:PrincipalAccount": account, "aws:SecureTransport": "true",
          "kms:ViaService": "secretsmanager.us-east-1.amazonaws.com", "kms:CallerAccount": account,
          "kms:EncryptionContext:SecretARN": secretArn, "kms:EncryptionContextKeys": ["SecretARN", "SecretVersionId"],
          "kms:ResourceAliases": aliases,
        },
        identityPolicies: [{ name: "tenant-access", policy }],
        resourcePolicy,
      });
    expect(await decrypt(["alias/tenancy/prod/tenants/company-beta"], keyPolicy)).toBe("Allowed");
    expect(await decrypt(["alias/tenancy/prod/tenants/company-beta"])).toBe("Allowed");
    expect(await decrypt(["alias/tenancy/prod/tenants/bigcorp"])).not.toBe("Allowed");
    expect(await decrypt(["alias/tenancy/prod/cells/use1-02"])).not.toBe("Allowed");
    expect(await decrypt([])).not.toBe("Allowed");
  }, 60_000);
});
