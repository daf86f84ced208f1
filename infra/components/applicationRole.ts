import * as aws from "@pulumi/aws";
import * as pulumi from "@pulumi/pulumi";
import { applicationRolePolicy } from "../model/accessPolicies.ts";
import { SHARED_TENANT, applicationRoleName } from "../model/naming.ts";
import { ecsTasksTrustPolicy } from "../model/platformPolicies.ts";
import { componentType, policyJson, tagsFor, type StackContext } from "./context.ts";

export interface ApplicationRoleArgs {
  ctx: StackContext;
  /** The env whose tenants' runtime config and routing document the role reads. */
  env: string;
}

/**
 * The application role of one env (applicationRoleName, docs/runtime-config.md): the task role of
 * the product's own services, which serve every tenant of the env. It reads every tenant's
 * runtime config document and the env's routing document in every platform region; nothing else
 * (no secret, no write). Trusted by ECS tasks of this account; which task may use it is decided
 * by iam:PassRole of whoever deploys the application. IAM is global: the platform stack of the
 * control plane's region creates one per env.
 * Child name: `<name>` (role, inline policy `runtime-config`).
 */
export class ApplicationRole extends pulumi.ComponentResource {
  readonly roleName: string;

  constructor(name: string, args: ApplicationRoleArgs, opts?: pulumi.ComponentResourceOptions) {
    super(componentType("ApplicationRole"), name, {}, opts);
    const { ctx, env } = args;
    this.roleName = applicationRoleName(ctx.app, env);
    const role = new aws.iam.Role(
      name,
      {
        name: this.roleName,
        description: `The application in ${env}: reads its tenants' runtime config and routing documents`,
        assumeRolePolicy: policyJson(ecsTasksTrustPolicy(ctx.accountId)),
        tags: tagsFor(ctx, SHARED_TENANT),
      },
      { parent: this },
    );
    new aws.iam.RolePolicy(
      name,
      { role: role.name, name: "runtime-config", policy: policyJson(applicationRolePolicy({ accountId: ctx.accountId, app: ctx.app, env, regions: ctx.platform.regions })) },
      { parent: this },
    );
    this.registerOutputs({ roleName: this.roleName });
  }
}
