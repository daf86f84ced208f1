import * as aws from "@pulumi/aws";
import * as pulumi from "@pulumi/pulumi";
import type { RoutingParameter } from "../model/routingDocument.ts";
import { componentType, tagsFor, type StackContext } from "./context.ts";

export interface RoutingShareArgs {
  ctx: StackContext;
  /** The tenant tag: `shared` for a cell's pages, the tenant for a dedicated stack's share. */
  owner: string;
  /** cellRoutingParameters / dedicatedRoutingParameter (infra/model/routingDocument.ts). */
  parameters: readonly RoutingParameter[];
}

/**
 * This stack's share of the routing document of its env and region (docs/runtime-config.md): SSM
 * String parameters (tier `ssmParameterTier`, Standard by default) under `/<app>/<env>/routing/<region>/`, which only this
 * stack writes. Child names: `<name>-<nn>` (one per page, numbered from 00; a dedicated stack has
 * one). Never rename: the page number is part of the URN and of the parameter name.
 */
export class RoutingShare extends pulumi.ComponentResource {
  constructor(name: string, args: RoutingShareArgs, opts?: pulumi.ComponentResourceOptions) {
    super(componentType("RoutingShare"), name, {}, opts);
    const { ctx } = args;
    args.parameters.forEach((p, i) => {
      new aws.ssm.Parameter(
        `${name}-${String(i).padStart(2, "0")}`,
        {
          name: p.name,
          description: `Routing of ${ctx.env} in ${ctx.region}: the share of ${ctx.stack}`,
          type: "String",
          tier: ctx.platform.ssmParameterTier,
          dataType: "text",
          insecureValue: p.value,
          tags: tagsFor(ctx, args.owner),
        },
        { parent: this },
      );
    });
    this.registerOutputs({ parameters: args.parameters.map((p) => p.name) });
  }
}
