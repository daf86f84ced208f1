import * as aws from "@pulumi/aws";
import * as pulumi from "@pulumi/pulumi";
import { runtimeConfigParameter } from "../model/runtimeConfig.ts";
import type { Tenant } from "../model/schema.ts";
import { componentType, tagsFor, type StackContext } from "./context.ts";

export interface RuntimeConfigArgs {
  ctx: StackContext;
  tenant: Tenant;
  /** While the tenant's resources change hands between stacks (infra/model/handover.ts): never deleted by an update. */
  retainOnDelete?: boolean;
}

/**
 * The tenant's runtime configuration document (infra/model/runtimeConfig.ts,
 * docs/runtime-config.md): an SSM String parameter in the tier `ssmParameterTier` of Pulumi.yaml (Standard by default). Plain text on purpose:
 * it holds no secret (the connection document is named, not copied), and a plan shows its changes
 * (`insecureValue`, not the provider's secret `value`). Read access is IAM only: the tenant's role
 * (tenantAccessPolicy) and the application role of the env (applicationRolePolicy).
 *
 * Part of the tenant's identity hand-over (infra/model/handover.ts): the stack that serves the
 * tenant declares it, so exactly one stack manages the parameter at every step of an upgrade.
 * Child name: `<name>`.
 */
export class RuntimeConfig extends pulumi.ComponentResource {
  readonly parameterName: string;

  constructor(name: string, args: RuntimeConfigArgs, opts?: pulumi.ComponentResourceOptions) {
    super(componentType("RuntimeConfig"), name, {}, opts);
    const { ctx, tenant } = args;
    const p = runtimeConfigParameter(ctx.platform, tenant, ctx.env);
    if (p.document.stack !== ctx.stack) {
      throw new Error(`runtime config of ${tenant.id} (${ctx.env}) belongs to stack ${p.document.stack}, which serves the tenant, not to ${ctx.stack}`);
    }
    this.parameterName = p.name;
    new aws.ssm.Parameter(
      name,
      {
        name: p.name,
        description: `Runtime configuration of tenant ${tenant.id} (${ctx.env})`,
        type: "String",
        tier: ctx.platform.ssmParameterTier,
        dataType: "text",
        insecureValue: p.value,
        tags: tagsFor(ctx, tenant.id),
      },
      { parent: this, ...(args.retainOnDelete ? { retainOnDelete: true } : {}) },
    );
    this.registerOutputs({ parameterName: this.parameterName });
  }
}
