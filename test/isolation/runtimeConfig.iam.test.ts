/**
 * Who reads the runtime config documents (docs/runtime-config.md): each tenant's own role (proven
 * per tenant pair in iam.isolation.test.ts) and the application role of the document's env, and no
 * other role the program creates. Evaluated by the IAM policy simulator with the rendered
 * policies: the application roles, the control-plane, runner and task execution roles of
 * the platform stack, against the ARN of every rendered config parameter. Negative control: an
 * application policy widened to every parameter reads other envs' documents and is reported.
 */
import { beforeAll, describe, expect, it } from "vitest";
import { roleArn } from "../../infra/model/accessPolicies.ts";
import {
  applicationRoleName, controlPlaneRoleName, platformStackName, routingParameterPath, runnerRoleName, taskExecutionRoleName,
} from "../../infra/model/naming.ts";
import { renderStack } from "../../plan/render/render.ts";
import { unwrapSecrets, type RenderedStack } from "../../plan/types.ts";
import { exampleFleet } from "./fleetFixture.ts";
import { simulate, tenantIamFacts, type TenantIamFacts } from "./iamChecks.ts";

const fleet = exampleFleet();
const { appName: app, awsAccountId: accountId } = fleet.platform;
type Doc = { Version?: string; Statement: Array<Record<string, unknown>> };
let facts: TenantIamFacts[] = [];
let platform: RenderedStack;

beforeAll(async () => {
  const renders: RenderedStack[] = [];
  for (const name of fleet.stacks.keys()) renders.push(await renderStack(fleet, name, { fastPromises: true }));
  facts = renders.flatMap((r) => tenantIamFacts(fleet, r));
  platform = renders.find((r) => r.name === platformStackName(fleet.platform.controlPlane.region))!;
}, 120_000);

function rolePolicy(roleName: string): Doc {
  const p = platform.resources.find((r) => r.type === "aws:iam/rolePolicy:RolePolicy" && (unwrapSecrets(r.inputs) as { role?: string }).role === roleName);
  if (!p) throw new Error(`${platform.name}: no role policy of ${roleName}`);
  return JSON.parse(String((unwrapSecrets(p.inputs) as { policy: string }).policy)) as Doc;
}

async function can(roleName: string, policy: Doc, action: string, resource: string, region: string): Promise<boolean> {
  const result = await simulate({
    principal: `arn:aws:sts::${accountId}:assumed-role/${roleName}/probe`,
    action,
    resource,
    accountId,
    context: { "aws:PrincipalArn": roleArn(accountId, roleName), "aws:PrincipalAccount": accountId, "aws:SecureTransport": "true", "aws:RequestedRegion": region },
    identityPolicies: [{ name: "inline", policy }],
  });
  return result === "Allowed";
}

/** Every (role, config) pair a role can read, as `role -> tenant@env`. */
async function readers(roleName: string, policy: Doc): Promise<string[]> {
  const out: string[] = [];
  for (const t of facts) {
    if (await can(roleName, policy, "ssm:GetParameter", t.configArn, t.region)) out.push(`${roleName} -> ${t.id}`);
  }
  return out.sort();
}

describe("runtime config documents: the application role of their env reads them, no other platform role", () => {
  it("covers every tenant env of the fleet", () => {
    expect(facts.map((f) => f.configArn)).toContain(`arn:aws:ssm:us-east-1:${accountId}:parameter/${app}/prod/tenants/acme/config`);
    expect(new Set(facts.map((f) => f.configArn)).size).toBe(facts.length);
  });

  it("the application role of each env reads exactly its env's documents, never writes one, and reads no tenant secret", async () => {
    for (const env of fleet.platform.environments) {
      const role = applicationRoleName(app, env);
      const policy = rolePolicy(role);
      expect(await readers(role, policy)).toEqual(facts.filter((f) => f.env === env).map((f) => `${role} -> ${f.id}`).sort());
      for (const t of facts.filter((f) => f.env === env)) {
        expect(await can(role, policy, "ssm:PutParameter", t.configArn, t.region), `${role} writes ${t.id}`).toBe(false);
        for (const s of t.secrets) expect(await can(role, policy, "secretsmanager:GetSecretValue", s.arn, t.region), `${role} reads ${s.name}`).toBe(false);
      }
    }
  });

  it("the application role lists its env's routing document in every region and not another env's", async () => {
    const prod = applicationRoleName(app, "prod");
    const policy = rolePolicy(prod);
    for (const region of fleet.platform.regions) {
      const path = (env: string) => `arn:aws:ssm:${region}:${accountId}:parameter${routingParameterPath(app, env, region).replace(/\/$/, "")}`;
      expect(await can(prod, policy, "ssm:GetParametersByPath", path("prod"), region), `${region} prod`).toBe(true);
      expect(await can(prod, policy, "ssm:GetParameter", `${path("prod")}/cells/use1-01/00`, region), `${region} prod page`).toBe(true);
      expect(await can(prod, policy, "ssm:GetParametersByPath", path("staging"), region), `${region} staging`).toBe(false);
    }
  });

  it("the control-plane, runner and task execution roles read none", async () => {
    const roles = [controlPlaneRoleName(app), runnerRoleName(app, platform.name.replace(/^platform-/, "")), taskExecutionRoleName(app, fleet.platform.controlPlane.region)];
    for (const role of roles) expect(await readers(role, rolePolicy(role)), role).toEqual([]);
  });

  it("negative control: an application policy widened to every parameter is seen reading other envs' documents", async () => {
    const role = applicationRoleName(app, "staging");
    const wide = structuredClone(rolePolicy(role));
    for (const s of wide.Statement) if (s.Sid === "ReadRuntimeConfigOfEnv") s.Resource = `arn:aws:ssm:*:${accountId}:parameter/*`;
    const foreign = (await readers(role, wide)).filter((r) => !r.endsWith("@staging"));
    expect(foreign).toEqual(facts.filter((f) => f.env !== "staging").map((f) => `${role} -> ${f.id}`).sort());
    expect(foreign.length).toBeGreaterThan(0);
  });
});
