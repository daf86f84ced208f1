/**
 * The deployer role (`pulumi up` of every stack runs as it, docs/deploying.md) can read every
 * tenant's connection document: once a tenant's password was rotated the program reads the
 * document's AWSCURRENT version at preview and update (`aws.secretsmanager.getSecretVersion`,
 * docs/lifecycle.md), which is secretsmanager:GetSecretValue on the secret and kms:Decrypt of the
 * key that encrypts it, through Secrets Manager. Evaluated by the IAM policy simulator with the
 * rendered deployer policy (platform stack) and the rendered secrets and key policies of every
 * stack; the negative controls remove the deployer's grant, and the key policy's account-root
 * statement that lets IAM policies grant use of the key at all.
 */
import { beforeAll, describe, expect, it } from "vitest";
import { roleArn, ssmParameterArn } from "../../infra/model/accessPolicies.ts";
import { databaseSecretName, deployerRoleName, platformStackName } from "../../infra/model/naming.ts";
import { renderStack } from "../../plan/render/render.ts";
import { unwrapSecrets, type RenderedStack } from "../../plan/types.ts";
import { exampleFleet } from "./fleetFixture.ts";
import { simulate, tenantIamFacts, type TenantIamFacts } from "./iamChecks.ts";

const fleet = exampleFleet();
const { appName: app, awsAccountId: accountId } = fleet.platform;
type Doc = { Version?: string; Statement: Array<Record<string, unknown>> };
let deployer: Doc;
let facts: TenantIamFacts[] = [];
const renders: RenderedStack[] = [];

beforeAll(async () => {
  for (const name of fleet.stacks.keys()) renders.push(await renderStack(fleet, name, { fastPromises: true }));
  facts = renders.flatMap((r) => tenantIamFacts(fleet, r));
  const platform = renders.find((r) => r.name === platformStackName(fleet.platform.controlPlane.region))!;
  const policy = platform.resources.find((r) => r.type === "aws:iam/rolePolicy:RolePolicy" && (unwrapSecrets(r.inputs) as { role?: string }).role === deployerRoleName(app));
  if (!policy) throw new Error(`${platform.name}: no role policy of ${deployerRoleName(app)}`);
  deployer = JSON.parse(String((unwrapSecrets(policy.inputs) as { policy: string }).policy)) as Doc;
}, 120_000);

const deployerArn = () => roleArn(accountId, deployerRoleName(app));

/** GetSecretValue of the tenant env's connection document, then kms:Decrypt of its key as Secrets Manager asks for it. */
async function readsDocument(t: TenantIamFacts, policy: Doc, keyPolicy?: Doc): Promise<[string, string]> {
  const doc = t.secrets.find((s) => s.name === databaseSecretName(app, t.env, t.tenant));
  if (!doc) throw new Error(`${t.id}: no connection document ${databaseSecretName(app, t.env, t.tenant)}`);
  const context = {
    "aws:PrincipalArn": deployerArn(),
    "aws:PrincipalAccount": accountId,
    "aws:SecureTransport": "true",
    "aws:RequestedRegion": t.region,
  };
  const principal = `arn:aws:sts::${accountId}:assumed-role/${deployerRoleName(app)}/pulumi-up`;
  const identityPolicies = [{ name: "deploy", policy }];
  const get = await simulate({ principal, action: "secretsmanager:GetSecretValue", resource: doc.arn, accountId, context, identityPolicies });
  const decrypt = await simulate({
    principal, action: "kms:Decrypt", resource: doc.key.arn, accountId, identityPolicies,
    context: { ...context, "kms:ViaService": `secretsmanager.${t.region}.amazonaws.com`, "kms:EncryptionContext:SecretARN": doc.arn },
    resourcePolicy: keyPolicy ?? doc.key.policy,
  });
  return [get, decrypt];
}

describe("the deployer role reads the rotated connection documents", () => {
  it("covers every tenant env of the example fleet, pooled (cell key) and dedicated (tenant key)", () => {
    const expected = [...fleet.tenants.values()].flatMap(({ tenant }) => Object.keys(tenant.environments).map((e) => `${tenant.id}@${e}`));
    expect(facts.map((f) => f.id).sort()).toEqual(expected.sort());
    expect(new Set(facts.map((f) => f.stack.split("-")[0]))).toEqual(new Set(["shared", "dedicated"]));
  });

  it("GetSecretValue on each document and Decrypt of its key through Secrets Manager are allowed", async () => {
    for (const t of facts) expect(await readsDocument(t, deployer), t.id).toEqual(["Allowed", "Allowed"]);
  }, 60_000);

  it("negative control: a deployer policy without the Secrets Manager and KMS grants is denied both", async () => {
    const without: Doc = {
      ...deployer,
      Statement: deployer.Statement.map((s) =>
        Array.isArray(s.Action) ? { ...s, Action: (s.Action as string[]).filter((a) => a !== "secretsmanager:*" && a !== "kms:*") } : s,
      ),
    };
    expect(JSON.stringify(without)).not.toMatch(/secretsmanager:\*|kms:\*/);
    for (const t of facts) expect(await readsDocument(t, without), t.id).toEqual(["ImplicitlyDenied", "ImplicitlyDenied"]);
  }, 60_000);

  it("negative control: a key policy without the account-root statement denies Decrypt whatever the deployer policy says", async () => {
    for (const t of facts) {
      const key = t.secrets.find((s) => s.name === databaseSecretName(app, t.env, t.tenant))!.key.policy as Doc;
      const rootless: Doc = { ...key, Statement: key.Statement.filter((s) => s.Sid !== "AccountRootAdministers" && s.Sid !== "Enable IAM User Permissions") };
      expect(rootless.Statement.length, t.id).toBeLessThan(key.Statement.length);
      expect((await readsDocument(t, deployer, rootless))[1], t.id).toBe("ImplicitlyDenied");
    }
  }, 60_000);
});

/** Every SSM parameter a stack of the example fleet declares (runtime config and routing documents). */
function declaredParameters(renders: RenderedStack[]): { stack: string; region: string; arn: string }[] {
  return renders.flatMap((r) => {
    const region = fleet.stacks.get(r.name)!.region;
    return r.resources
      .filter((x) => x.type === "aws:ssm/parameter:Parameter")
      .map((x) => ({ stack: r.name, region, arn: ssmParameterArn(region, accountId, String((unwrapSecrets(x.inputs) as { name: string }).name)) }));
  });
}

describe("the deployer role manages the SSM parameters the stacks declare", () => {
  const actions = ["ssm:PutParameter", "ssm:AddTagsToResource", "ssm:GetParameter", "ssm:ListTagsForResource", "ssm:DeleteParameter"];
  const allowed = async (policy: Doc, p: { region: string; arn: string }, action: string) =>
    simulate({
      principal: `arn:aws:sts::${accountId}:assumed-role/${deployerRoleName(app)}/pulumi-up`,
      action, resource: p.arn, accountId,
      context: { "aws:PrincipalArn": deployerArn(), "aws:PrincipalAccount": accountId, "aws:SecureTransport": "true", "aws:RequestedRegion": p.region },
      identityPolicies: [{ name: "deploy", policy }],
    });

  it("creates, tags, reads and deletes each one (the actions aws.ssm.Parameter calls)", async () => {
    const params = declaredParameters(renders);
    // Every tenant env has its runtime config document; the cells add routing pages.
    expect(params.length).toBeGreaterThan(facts.length);
    for (const p of params) for (const a of actions) expect(await allowed(deployer, p, a), `${p.stack} ${a} ${p.arn}`).toBe("Allowed");
  }, 120_000);

  it("negative controls: without the parameter statement PutParameter is denied; a parameter outside the app's path is denied", async () => {
    const without: Doc = { ...deployer, Statement: deployer.Statement.filter((s) => s.Sid !== "ManageOwnParameters") };
    expect(without.Statement.length).toBe(deployer.Statement.length - 1);
    const [first] = declaredParameters(renders);
    expect(await allowed(without, first!, "ssm:PutParameter")).toBe("ImplicitlyDenied");
    const foreign = { region: first!.region, arn: ssmParameterArn(first!.region, accountId, "/other-app/prod/config") };
    expect(await allowed(deployer, foreign, "ssm:PutParameter")).toBe("ImplicitlyDenied");
  }, 60_000);
});
