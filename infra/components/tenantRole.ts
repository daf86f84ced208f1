/**
 * A tenant's IAM role (one per tenant and env) and its access policy. Two components because a
 * tenant KMS key sits between them: the key policy names the role (KMS rejects a principal that
 * does not exist yet), and the access policy names the key. Order: role -> key -> policy.
 */
import * as aws from "@pulumi/aws";
import * as pulumi from "@pulumi/pulumi";
import { roleArn, tenantAccessPolicy, tenantTrustPolicy, type TenantAccessArgs } from "../model/accessPolicies.ts";
import { controlPlaneRoleName, tenantRoleName } from "../model/naming.ts";
import { componentType, policyJson, tagsFor, type StackContext } from "./context.ts";

/** One hour: sessions of the control plane acting for a tenant are short. */
export const TENANT_SESSION_SECONDS = 3600;

export interface TenantRoleArgs {
  ctx: StackContext;
  tenant: string;
  /** While the tenant's resources change hands between stacks (infra/model/handover.ts): never deleted by an update. */
  retainOnDelete?: boolean;
}

/**
 * Role `tenantRoleName(app, env, id)`, assumable only by the control-plane role with the session
 * tag `tenant=<id>`. Child name: `<name>`.
 */
export class TenantRole extends pulumi.ComponentResource {
  readonly role: aws.iam.Role;
  readonly arn: pulumi.Output<string>;
  readonly roleName: string;

  constructor(name: string, args: TenantRoleArgs, opts?: pulumi.ComponentResourceOptions) {
    super(componentType("TenantRole"), name, {}, opts);
    const { ctx, tenant } = args;
    this.roleName = tenantRoleName(ctx.app, ctx.env, tenant);
    this.role = new aws.iam.Role(
      name,
      {
        name: this.roleName,
        description: `Tenant ${tenant} in ${ctx.env}: its secrets, key and objects only`,
        assumeRolePolicy: policyJson(tenantTrustPolicy(roleArn(ctx.accountId, controlPlaneRoleName(ctx.app)), tenant)),
        maxSessionDuration: TENANT_SESSION_SECONDS,
        tags: tagsFor(ctx, tenant),
      },
      { parent: this, ...(args.retainOnDelete ? { retainOnDelete: true } : {}) },
    );
    this.arn = this.role.arn;
    this.registerOutputs({ arn: this.arn, roleName: this.roleName });
  }
}

export interface TenantRolePolicyArgs {
  ctx: StackContext;
  tenant: string;
  role: aws.iam.Role;
  access: Omit<TenantAccessArgs<pulumi.Input<string>>, "region" | "accountId" | "app" | "env" | "tenant">;
  /** While the tenant's resources change hands between stacks (infra/model/handover.ts): never deleted by an update. */
  retainOnDelete?: boolean;
}

/**
 * The tenant role's one inline policy (tenantAccessPolicy): its secrets, the key protecting
 * them, its objects. Child name: `<name>`; the policy is named `tenant-access`.
 */
export class TenantRolePolicy extends pulumi.ComponentResource {
  constructor(name: string, args: TenantRolePolicyArgs, opts?: pulumi.ComponentResourceOptions) {
    super(componentType("TenantRolePolicy"), name, {}, opts);
    const { ctx } = args;
    const doc = tenantAccessPolicy<pulumi.Input<string>>({
      region: ctx.region,
      accountId: ctx.accountId,
      app: ctx.app,
      env: ctx.env,
      tenant: args.tenant,
      ...args.access,
    });
    new aws.iam.RolePolicy(name, { role: args.role.name, name: "tenant-access", policy: policyJson(doc) }, { parent: this, ...(args.retainOnDelete ? { retainOnDelete: true } : {}) });
    this.registerOutputs({});
  }
}
