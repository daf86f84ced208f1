/**
 * Tenant isolation of the rendered IAM: every tenant role's identity policy and trust policy, the
 * KMS key policies and bucket policies around them, evaluated by an IAM policy simulator
 * (@cloud-copilot/iam-simulate, AGPL-3.0, a dev dependency used only by these tests).
 *
 * Facts come from rendered stacks only: ARNs are the ones the mock runtime computes for the
 * rendered resources (plan/render/mockOutputs.ts), so a policy that names the wrong ARN fails
 * here. Checks return findings, so the same functions prove a weakened policy is caught.
 */
import { runSimulation, type Simulation } from "@cloud-copilot/iam-simulate";
import type { Fleet } from "../../infra/model/fleet.ts";
import {
  cellBucketName, tenantBucketName, tenantObjectPrefix, tenantRoleName, tenantSecretPrefix, parseStackName,
  masterSecretName, runtimeConfigParameterName,
} from "../../infra/model/naming.ts";
import { mockOutputs } from "../../plan/render/mockOutputs.ts";
import { unwrapSecrets, type RenderedResource, type RenderedStack } from "../../plan/types.ts";
import type { Finding } from "./pgChecks.ts";

/** `Statement` is one statement or a list of them. */
type PolicyDocument = { Version?: string; Statement: unknown };

interface KeyFacts {
  arn: string;
  /** The key policy; AWS's default key policy (account root, kms:*) when the resource sets none. */
  policy: PolicyDocument;
}

interface SecretFacts {
  name: string;
  arn: string;
  key: KeyFacts;
}

export interface TenantIamFacts {
  /** `<tenant>@<env>`: a tenant has one role per env. */
  id: string;
  tenant: string;
  env: string;
  stack: string;
  region: string;
  accountId: string;
  roleName: string;
  roleArn: string;
  trustPolicy: PolicyDocument;
  identityPolicies: Array<{ name: string; policy: PolicyDocument }>;
  secrets: SecretFacts[];
  /** ARN of the tenant's runtime config parameter (SSM). */
  configArn: string;
  /** Secrets in the tenant's namespace that are the platform's (a dedicated database's master credentials). */
  platformSecrets: SecretFacts[];
  bucket: string;
  bucketPolicy?: PolicyDocument;
  objectArn: string;
  /** Key and encryption context S3 uses for the tenant's objects (SSE-KMS). */
  objectKey?: KeyFacts;
  objectEncryptionContextArn?: string;
}

function parsePolicy(v: unknown, what: string): PolicyDocument {
  const doc = typeof v === "string" ? (JSON.parse(v) as unknown) : v;
  if (!doc || typeof doc !== "object" || !("Statement" in doc)) throw new Error(`${what}: not a policy document`);
  return doc;
}

function defaultKeyPolicy(accountId: string): PolicyDocument {
  return {
    Version: "2012-10-17",
    Statement: [{ Sid: "Enable IAM User Permissions", Effect: "Allow", Principal: { AWS: `arn:aws:iam::${accountId}:root` }, Action: "kms:*", Resource: "*" }],
  };
}

/** Extracts each tenant's IAM facts from one rendered stack. */
export function tenantIamFacts(fleet: Fleet, stack: RenderedStack): TenantIamFacts[] {
  const { appName: app, awsAccountId: accountId } = fleet.platform;
  const file = fleet.stacks.get(stack.name);
  if (!file) throw new Error(`no stack file for ${stack.name}`);
  const region = file.region;
  const ref = parseStackName(stack.name, fleet.platform.environments);
  const env = ref.env;
  const ctx = { region, accountId, stack: stack.name };
  const inputs = (r: RenderedResource) => unwrapSecrets(r.inputs) as Record<string, unknown>;
  const ofType = (t: string) => stack.resources.filter((r) => r.type === t);
  const arnOf = (r: RenderedResource) => String(mockOutputs(r.type, r.name, inputs(r), ctx).state.arn);

  const keys = new Map<string, KeyFacts>();
  for (const k of ofType("aws:kms/key:Key")) {
    const p = inputs(k).policy;
    keys.set(arnOf(k), { arn: arnOf(k), policy: p === undefined ? defaultKeyPolicy(accountId) : parsePolicy(p, `${k.name} key policy`) });
  }
  const keyFor = (ref: unknown, what: string): KeyFacts => {
    const key = typeof ref === "string" ? keys.get(ref) : undefined;
    if (!key) throw new Error(`${stack.name}: ${what} references KMS key ${JSON.stringify(ref)} not declared in the stack (give the key ARN)`);
    return key;
  };
  const managed = new Map(ofType("aws:iam/policy:Policy").map((p) => [arnOf(p), p]));

  return stack.tenants.map((tenant) => {
    const roleName = tenantRoleName(app, env, tenant);
    const role = ofType("aws:iam/role:Role").find((r) => inputs(r).name === roleName);
    if (!role) throw new Error(`${stack.name}: no aws:iam/role:Role named ${roleName}`);
    const ri = inputs(role);
    const identityPolicies: TenantIamFacts["identityPolicies"] = [];
    for (const p of ofType("aws:iam/rolePolicy:RolePolicy").filter((p) => inputs(p).role === roleName)) {
      identityPolicies.push({ name: p.name, policy: parsePolicy(inputs(p).policy, p.name) });
    }
    for (const ip of (ri.inlinePolicies as Array<{ name?: string; policy?: string }> | undefined) ?? []) {
      if (ip.policy) identityPolicies.push({ name: ip.name ?? "inline", policy: parsePolicy(ip.policy, `${roleName} inline`) });
    }
    const attached = [
      ...ofType("aws:iam/rolePolicyAttachment:RolePolicyAttachment").filter((a) => inputs(a).role === roleName).map((a) => String(inputs(a).policyArn)),
      ...((ri.managedPolicyArns as string[] | undefined) ?? []),
    ];
    for (const arn of attached) {
      const p = managed.get(arn);
      if (!p) throw new Error(`${stack.name}: ${roleName} has managed policy ${arn} not declared in the stack; the simulation would miss it`);
      identityPolicies.push({ name: p.name, policy: parsePolicy(inputs(p).policy, p.name) });
    }
    if (identityPolicies.length === 0) throw new Error(`${stack.name}: ${roleName} has no identity policy`);

    const prefix = tenantSecretPrefix(app, env, tenant);
    const master = masterSecretName(app, env, tenant);
    const all = ofType("aws:secretsmanager/secret:Secret")
      .filter((s) => String(inputs(s).name ?? "").startsWith(prefix))
      .map((s) => ({ name: String(inputs(s).name), arn: arnOf(s), key: keyFor(inputs(s).kmsKeyId, `secret ${inputs(s).name}`) }));
    const secrets = all.filter((s) => s.name !== master);
    const platformSecrets = all.filter((s) => s.name === master);
    if (secrets.length === 0) throw new Error(`${stack.name}: tenant ${tenant} has no secret under ${prefix}`);

    const configName = runtimeConfigParameterName(app, env, tenant);
    const config = ofType("aws:ssm/parameter:Parameter").find((p) => inputs(p).name === configName);
    if (!config) throw new Error(`${stack.name}: tenant ${tenant} has no runtime config parameter ${configName}`);

    const bucket = ref.kind === "shared" ? cellBucketName(app, env, ref.cell, accountId) : tenantBucketName(app, env, tenant, accountId);
    if (!ofType("aws:s3/bucket:Bucket").some((b) => inputs(b).bucket === bucket)) throw new Error(`${stack.name}: bucket ${bucket} not declared`);
    const bp = ofType("aws:s3/bucketPolicy:BucketPolicy").find((p) => inputs(p).bucket === bucket);
    const sse = ofType("aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration").find((s) => inputs(s).bucket === bucket);
    const rule = ((sse && (inputs(sse).rules as Array<Record<string, unknown>>)) ?? [])[0];
    const byDefault = rule?.applyServerSideEncryptionByDefault as { kmsMasterKeyId?: string; sseAlgorithm?: string } | undefined;
    const objectArn = `arn:aws:s3:::${bucket}/${tenantObjectPrefix(tenant)}isolation-probe.json`;
    const objectKey = byDefault?.sseAlgorithm === "aws:kms" ? keyFor(byDefault.kmsMasterKeyId, `bucket ${bucket} encryption`) : undefined;
    return {
      id: `${tenant}@${env}`,
      tenant,
      env,
      stack: stack.name,
      region,
      accountId,
      roleName,
      roleArn: String(mockOutputs(role.type, role.name, ri, ctx).state.arn),
      trustPolicy: parsePolicy(ri.assumeRolePolicy, `${roleName} trust policy`),
      identityPolicies,
      secrets,
      configArn: arnOf(config),
      platformSecrets,
      bucket,
      bucketPolicy: bp ? parsePolicy(inputs(bp).policy, `${bucket} bucket policy`) : undefined,
      objectArn,
      objectKey,
      // With an S3 Bucket Key the encryption context is the bucket ARN, otherwise the object ARN.
      objectEncryptionContextArn: objectKey ? (rule?.bucketKeyEnabled === true ? `arn:aws:s3:::${bucket}` : objectArn) : undefined,
    };
  });
}

export interface Decision {
  result: "Allowed" | "ExplicitlyDenied" | "ImplicitlyDenied";
}

export interface SimRequest {
  principal: string;
  action: string;
  resource: string;
  accountId: string;
  context: Record<string, string | string[]>;
  identityPolicies: Array<{ name: string; policy: PolicyDocument }>;
  resourcePolicy?: PolicyDocument;
}

/** `kms:EncryptionContext:<context key>`: a variable condition key with a colon separator. */
const ENCRYPTION_CONTEXT_KEY = /^kms:EncryptionContext:(.+)$/i;
const ALIAS_PREFIX = "aws:RequestTag/kms.EncryptionContext.";

/**
 * iam-simulate 0.1.x only recognises variable condition keys of the `prefix/variable` form
 * (aws:RequestTag/<tag>): it drops `kms:EncryptionContext:SecretARN` from the request context as
 * an unknown key, so every condition on it fails. To evaluate those conditions, each
 * `kms:EncryptionContext:<k>` key, in policy conditions and in the request context alike, is
 * renamed to one `prefix/variable` key of the same type (a single string) that no policy here
 * uses otherwise. Operators, values, IfExists and set qualifiers are untouched, so the decision is
 * the one for the original key. Exported for their own test.
 */
export function aliasKey(key: string): string {
  const m = ENCRYPTION_CONTEXT_KEY.exec(key);
  return m ? `${ALIAS_PREFIX}${m[1]}` : key;
}

export function aliasEncryptionContext<T>(value: T): T {
  const rename = aliasKey;
  const walk = (v: unknown, inCondition: boolean): unknown => {
    if (Array.isArray(v)) return v.map((x) => walk(x, inCondition));
    if (!v || typeof v !== "object") return v;
    return Object.fromEntries(
      Object.entries(v).map(([k, x]) => {
        if (k === "Condition") return [k, Object.fromEntries(Object.entries(x as object).map(([op, block]) => [op, Object.fromEntries(Object.entries(block as object).map(([ck, cv]) => [rename(ck), cv]))]))];
        return [inCondition ? rename(k) : k, walk(x, inCondition)];
      }),
    );
  };
  return walk(value, false) as T;
}

/**
 * One simulated request. `runSimulation` validates the policies, the action, the resource ARN
 * against the action's resource types and the context keys; a validation error is thrown (a
 * malformed policy is a bug, not a denial), and so is a context key the simulator would ignore:
 * a silently dropped key could turn a denial into a meaningless one.
 */
export async function simulate(req: SimRequest): Promise<Decision["result"]> {
  const context = Object.fromEntries(Object.entries(req.context).map(([k, v]) => [aliasKey(k), v]));
  const sim: Simulation = {
    request: { principal: req.principal, action: req.action, resource: { resource: req.resource, accountId: req.accountId }, contextVariables: context },
    identityPolicies: req.identityPolicies.map((p) => ({ name: p.name, policy: aliasEncryptionContext(p.policy) })),
    serviceControlPolicies: [],
    resourceControlPolicies: [],
    resourcePolicy: req.resourcePolicy && aliasEncryptionContext(req.resourcePolicy),
  };
  const out = await runSimulation(sim, {});
  if (out.resultType === "error") throw new Error(`simulation of ${req.action} on ${req.resource} failed: ${out.errors.message} ${JSON.stringify(out.errors)}`);
  if (out.resultType !== "single") throw new Error(`simulation of ${req.action} on ${req.resource}: unexpected wildcard resource`);
  const ignored = out.result.ignoredContextKeys ?? [];
  if (ignored.length > 0) throw new Error(`simulation of ${req.action} on ${req.resource}: context keys ${ignored.join(", ")} do not apply to the action; fix the probe`);
  return out.overallResult;
}

function sessionArn(t: TenantIamFacts): string {
  return `arn:aws:sts::${t.accountId}:assumed-role/${t.roleName}/isolation-test`;
}

/** Request context AWS adds for a call by tenant `a`'s role session. */
function principalContext(a: TenantIamFacts): Record<string, string | string[]> {
  return {
    "aws:PrincipalArn": a.roleArn,
    "aws:PrincipalAccount": a.accountId,
    "aws:PrincipalTag/tenant": a.tenant,
    "aws:SecureTransport": "true",
    "aws:RequestedRegion": a.region,
  };
}

interface Probe {
  label: string;
  request: SimRequest;
}

/** Requests `a` makes against `target`'s secrets, keys and objects (target may be `a` itself). */
function dataProbes(a: TenantIamFacts, target: TenantIamFacts): Probe[] {
  const base = { principal: sessionArn(a), accountId: target.accountId, identityPolicies: a.identityPolicies };
  const ctx = principalContext(a);
  const probes: Probe[] = [];
  for (const s of target.secrets) {
    probes.push({ label: `secretsmanager:GetSecretValue ${s.name}`, request: { ...base, action: "secretsmanager:GetSecretValue", resource: s.arn, context: { ...ctx, "aws:ResourceTag/tenant": target.tenant } } });
    probes.push({
      label: `kms:Decrypt via Secrets Manager for ${s.name}`,
      request: {
        ...base,
        action: "kms:Decrypt",
        resource: s.key.arn,
        resourcePolicy: s.key.policy,
        context: { ...ctx, "kms:ViaService": `secretsmanager.${target.region}.amazonaws.com`, "kms:CallerAccount": a.accountId, "kms:EncryptionContext:SecretARN": s.arn, "kms:EncryptionContextKeys": ["SecretARN", "SecretVersionId"] },
      },
    });
  }
  // String parameters: no KMS step, IAM alone decides.
  for (const action of ["ssm:GetParameter", "ssm:GetParameters"]) {
    probes.push({ label: `${action} ${target.configArn}`, request: { ...base, action, resource: target.configArn, context: { ...ctx, "aws:ResourceTag/tenant": target.tenant } } });
  }
  for (const action of ["s3:GetObject", "s3:PutObject"]) {
    probes.push({ label: `${action} ${target.objectArn}`, request: { ...base, action, resource: target.objectArn, resourcePolicy: target.bucketPolicy, context: ctx } });
  }
  if (target.objectKey && target.objectEncryptionContextArn) {
    for (const action of ["kms:Decrypt", "kms:GenerateDataKey"]) {
      probes.push({
        label: `${action} via S3 for ${target.objectArn}`,
        request: {
          ...base,
          action,
          resource: target.objectKey.arn,
          resourcePolicy: target.objectKey.policy,
          context: { ...ctx, "kms:ViaService": `s3.${target.region}.amazonaws.com`, "kms:CallerAccount": a.accountId, "kms:EncryptionContext:aws:s3:arn": target.objectEncryptionContextArn, "kms:EncryptionContextKeys": ["aws:s3:arn"] },
        },
      });
    }
  }
  return probes;
}

/** Tag changes that would move a resource between tenants (ABAC) or relabel a role. */
function tagProbes(a: TenantIamFacts, target: TenantIamFacts, newTenant: string): Probe[] {
  const base = { principal: sessionArn(a), accountId: target.accountId, identityPolicies: a.identityPolicies };
  const tagCtx = { ...principalContext(a), "aws:TagKeys": ["tenant"], "aws:RequestTag/tenant": newTenant, "aws:ResourceTag/tenant": target.tenant };
  const probes: Probe[] = [];
  for (const s of target.secrets) {
    for (const action of ["secretsmanager:TagResource", "secretsmanager:UntagResource"]) {
      probes.push({ label: `${action} tenant on ${s.name}`, request: { ...base, action, resource: s.arn, context: tagCtx } });
    }
  }
  const keyArns = new Map(target.secrets.map((s) => [s.key.arn, s.key]));
  for (const key of keyArns.values()) {
    for (const action of ["kms:TagResource", "kms:UntagResource"]) {
      probes.push({ label: `${action} tenant on ${key.arn}`, request: { ...base, action, resource: key.arn, resourcePolicy: key.policy, context: tagCtx } });
    }
  }
  for (const action of ["iam:TagRole", "iam:UntagRole"]) {
    probes.push({ label: `${action} tenant on ${target.roleName}`, request: { ...base, action, resource: target.roleArn, context: tagCtx } });
  }
  return probes;
}

/**
 * The control plane's own permission to assume tenant roles (its role lives outside these stacks):
 * any tenant role of the app, so that only each tenant role's trust policy decides.
 */
export function controlPlaneIdentity(app: string, accountId: string): Array<{ name: string; policy: PolicyDocument }> {
  return [
    {
      name: "control-plane-assumes-tenant-roles",
      policy: { Version: "2012-10-17", Statement: [{ Effect: "Allow", Action: ["sts:AssumeRole", "sts:TagSession"], Resource: `arn:aws:iam::${accountId}:role/${app}-*-t-*` }] },
    },
  ];
}

async function assumeWithTag(role: TenantIamFacts, principal: string, identity: SimRequest["identityPolicies"], tenantTag: string): Promise<boolean> {
  const ctx = { "aws:PrincipalArn": principal, "aws:PrincipalAccount": role.accountId, "aws:TagKeys": ["tenant"], "aws:RequestTag/tenant": tenantTag };
  // AssumeRole with session tags needs both sts:AssumeRole and sts:TagSession.
  const results = await Promise.all(
    ["sts:AssumeRole", "sts:TagSession"].map((action) =>
      simulate({ principal, action, resource: role.roleArn, accountId: role.accountId, context: ctx, identityPolicies: identity, resourcePolicy: role.trustPolicy }),
    ),
  );
  return results.every((r) => r === "Allowed");
}

export interface IamCheckOptions {
  controlPlaneRoleArn: string;
  controlPlaneIdentity: Array<{ name: string; policy: PolicyDocument }>;
}

/**
 * For every tenant a: its own secrets, key (with the encryption context Secrets Manager and S3
 * send) and objects are allowed; for every other tenant b the same requests are denied; tagging
 * `tenant` is denied everywhere; the control plane may assume a's role only with session tag
 * tenant=a, and b's role may not assume it at all.
 */
export async function checkIamIsolation(facts: readonly TenantIamFacts[], opts: IamCheckOptions): Promise<{ findings: Finding[]; simulations: number }> {
  const findings: Finding[] = [];
  let simulations = 0;
  const expect = async (subject: string, check: string, p: Probe, allowed: boolean) => {
    simulations++;
    const result = await simulate(p.request);
    if ((result === "Allowed") !== allowed) findings.push({ check, subject, detail: `${p.label}: expected ${allowed ? "Allowed" : "denied"}, got ${result}` });
  };
  for (const a of facts) {
    await Promise.all(dataProbes(a, a).map((p) => expect(a.id, "own-access", p, true)));
    // The master credentials of its own database sit in its namespace but are not the tenant's.
    await Promise.all(
      dataProbes({ ...a, secrets: a.platformSecrets }, { ...a, secrets: a.platformSecrets })
        .filter((p) => p.request.action === "secretsmanager:GetSecretValue")
        .map((p) => expect(a.id, "platform-secret", p, false)),
    );
    for (const b of facts) {
      if (b.id === a.id) continue;
      const subject = `${a.id} -> ${b.id}`;
      await Promise.all(dataProbes(a, b).map((p) => expect(subject, "cross-tenant-access", p, false)));
      // Claiming b's resources for a.
      await Promise.all(tagProbes(a, b, a.tenant).map((p) => expect(subject, "tenant-tag", p, false)));
      if (b.tenant === a.tenant) continue; // same tenant, other env: the trust policy pins the tenant, not the env
      simulations += 2;
      if (await assumeWithTag(a, opts.controlPlaneRoleArn, opts.controlPlaneIdentity, b.tenant)) {
        findings.push({ check: "assume-role", subject, detail: `control plane assumed ${a.roleName} with session tag tenant=${b.tenant}` });
      }
      simulations += 2;
      if (await assumeWithTag(a, sessionArn(b), b.identityPolicies, a.tenant)) {
        findings.push({ check: "assume-role", subject, detail: `${b.roleName} assumed ${a.roleName}` });
      }
    }
    // Handing a's resources to another tenant.
    const other = facts.find((f) => f.tenant !== a.tenant)?.tenant ?? "another-tenant";
    await Promise.all(tagProbes(a, a, other).map((p) => expect(a.id, "tenant-tag", p, false)));
    simulations += 2;
    if (!(await assumeWithTag(a, opts.controlPlaneRoleArn, opts.controlPlaneIdentity, a.tenant))) {
      findings.push({ check: "assume-role", subject: a.id, detail: `control plane could not assume ${a.roleName} with session tag tenant=${a.tenant}` });
    }
  }
  return { findings, simulations };
}
