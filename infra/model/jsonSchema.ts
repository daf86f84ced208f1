/**
 * The editor schema of tenant files (`tenants/tenant.schema.json`), generated from the zod schema
 * so the two can never disagree: `npx tenantctl schema --write` regenerates it, and a test fails
 * when the committed file is stale. Pure: the platform's regions and environments come in as a
 * SchemaContext (read from Pulumi.yaml by the caller).
 */
import { z } from "zod";
import { RESERVED_IDS } from "./naming.ts";
import { makeTenantSchema, type SchemaContext } from "./schema.ts";
import { allowedDeployments, TIERS } from "./tiers.ts";

export type JsonSchema = z.core.JSONSchema.JSONSchema;

export const TENANT_SCHEMA_TITLE = "saas-tenancy tenant file";

/**
 * The tenant file's JSON schema (draft 2020-12, input side: fields with defaults are optional).
 * Beyond what zod emits: `deployment` is not required (it is derived from the tier), each branch
 * only admits the tiers that may have its deployment, and reserved ids are excluded.
 */
export function tenantJsonSchema(ctx: SchemaContext): JsonSchema {
  const generated = z.toJSONSchema(makeTenantSchema(ctx), { io: "input" });
  const branches = generated.oneOf ?? [];
  if (branches.length === 0) throw new Error("tenant schema: expected a oneOf of the deployment branches");
  for (const branch of branches) {
    branch.required = (branch.required ?? []).filter((k) => k !== "deployment");
    const props = branch.properties ?? {};
    const deployment = props.deployment;
    if (typeof deployment === "object" && (deployment.const === "pooled" || deployment.const === "dedicated")) {
      const d = deployment.const;
      const tier = props.tier;
      if (typeof tier === "object") tier.enum = TIERS.filter((t) => allowedDeployments(t).includes(d));
    }
    const id = props.id;
    if (typeof id === "object") id.not = { enum: [...RESERVED_IDS].sort() };
  }
  const { $schema, ...rest } = generated;
  return {
    $schema,
    title: TENANT_SCHEMA_TITLE,
    description:
      "One tenant of the saas-tenancy platform (tenants/<id>.yaml). Pooled tenants have `placement`, dedicated tenants `dedicated`.",
    $comment: "Generated from infra/model/schema.ts by `npx tenantctl schema --write`; do not edit by hand.",
    ...rest,
  };
}

/** The file's text: stable key order, two-space indent, trailing newline. */
export function tenantJsonSchemaText(ctx: SchemaContext): string {
  return `${JSON.stringify(tenantJsonSchema(ctx), null, 2)}\n`;
}
