import { z } from "zod";
import { isCidr } from "./cidr.ts";
import {
  CELL_ID_PATTERN, RESERVED_IDS, SECRET_NAME_PATTERN, TEAM_NAME_PATTERN, TENANT_ID_MAX, TENANT_ID_PATTERN,
} from "./naming.ts";
import { DEPLOYMENTS, MIN_BACKUP_RETENTION_DAYS, TIERS, allowedDeployments, defaultDeployment } from "./tiers.ts";

/** The platform facts a tenant file is checked against (DESIGN §3: data residency, environments). */
export interface SchemaContext {
  regions: readonly string[];
  environments: readonly string[];
}

export const LIFECYCLES = ["active", "suspended", "offboarding"] as const;
export const MIGRATION_PHASES = ["provisioning", "copying", "cutover", "cleanup"] as const;

const tenantId = z
  .string()
  .max(TENANT_ID_MAX, `must be at most ${TENANT_ID_MAX} characters`)
  .regex(TENANT_ID_PATTERN, "must be a DNS label: lower-case letters, digits and dashes, starting with a letter")
  .refine((id) => !RESERVED_IDS.has(id), { message: "is a reserved word; choose another id" });

const secretName = z
  .string()
  .regex(SECRET_NAME_PATTERN, "must be lower-case letters, digits, _ or -, starting with a letter (no '/', '..' or spaces)");
const teamName = z
  .string()
  .regex(TEAM_NAME_PATTERN, "must be lower-case letters, digits or -, starting with a letter (no '/', '..' or spaces)");
const cellId = z.string().regex(CELL_ID_PATTERN, "must be a cell id like use1-01");
const cidr = z.string().refine(isCidr, { message: "must be an IPv4 CIDR block with no host bits set (a.b.c.d/n)" });
const isoDateTime = z.iso.datetime({ offset: true });

function uniqueList<T extends z.ZodType<string>>(item: T) {
  return z.array(item).superRefine((list, ctx) => {
    const seen = new Set<string>();
    list.forEach((v, i) => {
      if (seen.has(v)) ctx.addIssue({ code: "custom", path: [i], message: `"${v}" is listed twice` });
      seen.add(v);
    });
  });
}

export function makeTenantSchema(ctx: SchemaContext) {
  const region = z.enum(ctx.regions as [string, ...string[]], {
    error: (i) => `region ${JSON.stringify(i.input)} is not allowed; allowed regions: ${ctx.regions.join(", ")}`,
  });
  const env = z.enum(ctx.environments as [string, ...string[]], {
    error: (i) =>
      `environment ${JSON.stringify(i.input)} is not declared by the platform; declared: ${ctx.environments.join(", ")}`,
  });

  const team = z.object({ secrets: uniqueList(secretName).default([]) }).strict();
  const environment = z
    .object({
      /** Teams of this environment, keyed by team name; each may declare its own secrets. */
      teams: z.partialRecord(teamName, team).default({}),
    })
    .strict();

  const limits = z
    .object({
      apiRatePerMinute: z.number().int().positive(),
      storageGb: z.number().int().positive(),
      maxDbConnections: z.number().int().min(1).max(5000),
      statementTimeoutMs: z.number().int().min(100).max(3_600_000),
    })
    .partial()
    .strict();

  const database = z
    .object({
      instanceClass: z.string().regex(/^db\.[a-z0-9]+\.[a-z0-9]+$/, "must look like db.<family>.<size>"),
      allocatedStorageGb: z.number().int().min(20).max(65536),
      multiAz: z.boolean(),
      backupRetentionDays: z.number().int().min(MIN_BACKUP_RETENTION_DAYS).max(35),
    })
    .partial()
    .strict();

  const base = {
    $schema: z.string().optional(),
    id: tenantId,
    displayName: z.string().min(1).max(120),
    tier: z.enum(TIERS, { error: (i) => `tier ${JSON.stringify(i.input)} is not one of ${TIERS.join(", ")}` }),
    region,
    lifecycle: z.enum(LIFECYCLES).default("active"),
    contact: z.object({ email: z.email() }).strict().optional(),
    billing: z
      .object({
        provider: z.enum(["stripe", "manual"]),
        customerId: z.string().min(1),
        subscriptionId: z.string().min(1).optional(),
        priceId: z.string().min(1).optional(),
      })
      .strict()
      .optional(),
    features: z
      .object({
        sso: z.boolean().default(false),
        /** Peering of a dedicated VPC to the control-plane VPC. */
        vpcPeering: z.boolean().default(false),
        customModel: z.boolean().default(false),
        /** Internet egress (public subnets and NAT) for a dedicated VPC. */
        egress: z.boolean().default(false),
      })
      .strict()
      .prefault({}),
    /** Overrides of the tier's limits (infra/model/tiers.ts). */
    limits: limits.optional(),
    /** Tenant secrets, by name; values are set out of band. */
    secrets: uniqueList(secretName).default([]),
    environments: z.partialRecord(env, environment).refine((e) => Object.keys(e).length > 0, {
      message: "must declare at least one environment",
    }),
    /** Present while lifecycle is offboarding: the grace period runs from requestedAt. */
    offboarding: z.object({ requestedAt: isoDateTime, graceDays: z.number().int().min(0).optional() }).strict().optional(),
  };

  const pooled = z
    .object({
      ...base,
      deployment: z.literal("pooled"),
      /** env -> cell id. Written by `tenantctl new`; never changed implicitly (a move is a data migration). */
      placement: z.partialRecord(env, cellId),
    })
    .strict();

  const dedicatedEnv = z
    .object({
      /** The tenant VPC's CIDR in this env, a /16 from the platform's dedicated supernet. */
      cidr,
      /** Private subnets, one per AZ; default 3 in prod, 2 elsewhere. */
      azCount: z.number().int().min(2).max(6).optional(),
      /** Overrides of the tier's RDS sizing for this env. */
      database: database.optional(),
    })
    .strict();

  const dedicated = z
    .object({
      ...base,
      deployment: z.literal("dedicated"),
      /** env -> network and sizing of the tenant's own stack. */
      dedicated: z.partialRecord(env, dedicatedEnv),
      /** A pooled -> dedicated upgrade in progress: the cell each env is leaving. */
      migration: z
        .object({
          phase: z.enum(MIGRATION_PHASES),
          from: z.partialRecord(env, cellId),
          startedAt: isoDateTime,
          /** When cleanup may remove the tenant from its cells. */
          retainUntil: isoDateTime.optional(),
        })
        .strict()
        .optional(),
    })
    .strict();

  return z
    .discriminatedUnion("deployment", [pooled, dedicated])
    .superRefine((t, issue) => {
      if (!allowedDeployments(t.tier).includes(t.deployment)) {
        issue.addIssue({
          code: "custom",
          path: ["deployment"],
          message: `tier ${t.tier} cannot be ${t.deployment}: allowed ${allowedDeployments(t.tier).join(" or ")} (only enterprise may choose)`,
        });
      }
      const envs = Object.keys(t.environments);
      const perEnv = t.deployment === "pooled" ? t.placement : t.dedicated;
      const key = t.deployment === "pooled" ? "placement" : "dedicated";
      for (const e of envs) {
        if (!(e in perEnv)) issue.addIssue({ code: "custom", path: [key], message: `has no entry for environment ${e}` });
      }
      for (const e of Object.keys(perEnv)) {
        if (!envs.includes(e)) {
          issue.addIssue({ code: "custom", path: [key, e], message: `environment ${e} is not declared under environments` });
        }
      }
      if (t.deployment === "pooled" && t.features.vpcPeering) {
        issue.addIssue({ code: "custom", path: ["features", "vpcPeering"], message: "VPC peering needs a dedicated deployment" });
      }
      if ((t.lifecycle === "offboarding") !== (t.offboarding !== undefined)) {
        issue.addIssue({
          code: "custom",
          path: [t.offboarding ? "offboarding" : "lifecycle"],
          message: "lifecycle offboarding and the offboarding block (requestedAt) go together",
        });
      }
    });
}

export type TenantSchema = ReturnType<typeof makeTenantSchema>;
export type Tenant = z.output<TenantSchema>;
export type TenantInput = z.input<TenantSchema>;
export type PooledTenant = Extract<Tenant, { deployment: "pooled" }>;
export type DedicatedTenant = Extract<Tenant, { deployment: "dedicated" }>;
export type TenantEnvironment = Tenant["environments"][string];

/**
 * `deployment` is derived from the tier when the file omits it (dedicated tier -> dedicated,
 * else pooled). Done before the discriminated union sees the object, so the union stays exact.
 */
export function withDerivedDeployment(raw: unknown): unknown {
  if (raw && typeof raw === "object" && !Array.isArray(raw) && !("deployment" in raw)) {
    const tier = (raw as { tier?: unknown }).tier;
    if (typeof tier === "string" && (TIERS as readonly string[]).includes(tier)) {
      return { ...raw, deployment: defaultDeployment(tier as (typeof TIERS)[number]) };
    }
  }
  return raw;
}

export { DEPLOYMENTS };
