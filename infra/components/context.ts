/**
 * What every component needs to know about the stack it is in: platform facts, env, stack name,
 * region. Built once per stack by the builders (infra/stacks/), passed down unchanged.
 */
import * as aws from "@pulumi/aws";
import * as pulumi from "@pulumi/pulumi";
import { tags, type Tags } from "../model/naming.ts";
import type { Platform } from "../model/platform.ts";

export interface StackContext {
  platform: Platform;
  app: string;
  env: string;
  /** The Pulumi stack name (the `stack` tag). */
  stack: string;
  /** The stack's region (the default provider's `aws:region`); ARNs are built from it. */
  region: string;
  accountId: string;
}

export function stackContext(platform: Platform, env: string, stack: string, region: string): StackContext {
  return { platform, app: platform.appName, env, stack, region, accountId: platform.awsAccountId };
}

/** The tags of docs/stacks.md for a resource owned by `tenant` (a tenant id, or SHARED_TENANT). */
export function tagsFor(ctx: StackContext, tenant: string): Tags {
  return tags(tenant, ctx.env, ctx.stack);
}

export { componentType } from "../model/naming.ts";

/** Serialises a policy document; keeps Outputs (key ARNs) as Outputs, never resolved inside an apply that creates resources. */
export function policyJson(doc: unknown): pulumi.Output<string> {
  return pulumi.jsonStringify(doc);
}

/**
 * The stack's AWS provider: the stack's region and `allowedAccountIds` pinned to the platform
 * account, so credentials of another account fail before anything is read or built. Every
 * top-level component gets it (`providers: [provider]`) and passes it down through `parent`;
 * no resource uses the default provider. Named `aws` in every stack kind, so a state move
 * between stacks carries a provider of the same name and config (the engine asks the
 * provider's DiffConfig on a provider change: same region and account, no replacement).
 */
export function awsProvider(ctx: StackContext): aws.Provider {
  return new aws.Provider("aws", { region: ctx.region as aws.Region, allowedAccountIds: [ctx.accountId] });
}
