import * as aws from "@pulumi/aws";
import * as pulumi from "@pulumi/pulumi";
import { teamSecretName, tenantSecretName, tenantSecretPrefix } from "../model/naming.ts";
import type { Tenant } from "../model/schema.ts";
import { componentType, tagsFor, type StackContext } from "./context.ts";

export interface TenantSecretsArgs {
  ctx: StackContext;
  tenant: Tenant;
  kmsKeyArn: pulumi.Input<string>;
  /** While the tenant's resources change hands between stacks (infra/model/handover.ts): never deleted by an update. */
  retainOnDelete?: boolean;
}

/** The names of the secrets a tenant declares in an env: its own, then its teams'. Sorted, stable. */
export function declaredSecretNames(ctx: Pick<StackContext, "app" | "env">, t: Tenant): string[] {
  const own = t.secrets.map((s) => tenantSecretName(ctx.app, ctx.env, t.id, s));
  const teams = Object.entries(t.environments[ctx.env]?.teams ?? {}).flatMap(([team, def]) =>
    (def?.secrets ?? []).map((s) => teamSecretName(ctx.app, ctx.env, t.id, team, s)),
  );
  return [...own, ...teams].sort();
}

/**
 * One Secrets Manager secret per declared tenant secret and team secret of the env, encrypted
 * with the tenant's secrets key. Only the secret: values are set out of band (by the tenant's
 * operators), so no SecretVersion with a placeholder that could pass for a real value.
 *
 * Child names: `<name>/<path inside the tenant namespace>`, e.g. `tenant-acme-secrets/teams/sales/webhook_secret`,
 * unique because secret names are.
 */
export class TenantSecrets extends pulumi.ComponentResource {
  readonly names: string[];

  constructor(name: string, args: TenantSecretsArgs, opts?: pulumi.ComponentResourceOptions) {
    super(componentType("TenantSecrets"), name, {}, opts);
    const { ctx, tenant } = args;
    const prefix = tenantSecretPrefix(ctx.app, ctx.env, tenant.id);
    this.names = declaredSecretNames(ctx, tenant);
    for (const secretName of this.names) {
      new aws.secretsmanager.Secret(
        `${name}/${secretName.slice(prefix.length)}`,
        { name: secretName, description: `Declared by tenant ${tenant.id}; value set out of band`, kmsKeyId: args.kmsKeyArn, tags: tagsFor(ctx, tenant.id) },
        { parent: this, ...(args.retainOnDelete ? { retainOnDelete: true } : {}) },
      );
    }
    this.registerOutputs({ names: this.names });
  }
}
