import { z } from "zod";
import { isCidr } from "./cidr.ts";
import {
  CELL_ID_PATTERN, RESERVED_IDS, RESERVED_SECRET_NAMES, SECRET_NAME_PATTERN, TEAM_NAME_PATTERN, TENANT_ID_MAX, TENANT_ID_PATTERN,
} from "./naming.ts";
import { DEPLOYMENTS, MIN_BACKUP_RETENTION_DAYS, TIERS, allowedDeployments, defaultDeployment } from "./tiers.ts";

/** The platform facts a tenant file is checked against (docs/tenant-files.md: data residency, environments). */
export interface SchemaContext {
  regions: readonly string[];
  environments: readonly string[];
}

export const LIFECYCLES = ["active", "suspended", "offboarding"] as const;
export const MIGRATION_PHASES = ["provisioning", "copying", "cutover", "cleanup"] as const;

/** Quotes a received value for a message: `"Free_Bie"`, `42`, `undefined`. */
function shown(input: unknown): string {
  return input === undefined ? "undefined" : JSON.stringify(input) ?? String(input);
}

const tenantId = z
  .string()
  // abort: a too-long id is reported once, not also as "not a DNS label" (the pattern caps the length too).
  .max(TENANT_ID_MAX, { abort: true, error: (i) => `${shown(i.input)} is longer than ${TENANT_ID_MAX} characters; DNS-safe resource names need ids of at most ${TENANT_ID_MAX}` })
  .regex(TENANT_ID_PATTERN, {
    error: (i) =>
      `${shown(i.input)} is not a DNS label: use lower-case letters, digits and dashes, starting with a letter, not ending with a dash, no "--"`,
  })
  .refine((id) => !RESERVED_IDS.has(id), {
    error: (i) => `${shown(i.input)} is reserved (it collides with a platform host name or word); choose another id`,
  })
  .refine((id) => !CELL_ID_PATTERN.test(id), {
    error: (i) =>
      `${shown(i.input)} has the shape of a cell id (<region code><n>-<nn>): its RDS identifier, bucket and parameter group would equal a cell's; choose another id`,
  });

/** A tenant id on its own (DNS label, length, reserved words), for tools that take one as input. */
export const TenantIdSchema = tenantId;

// Secret and team names become path segments of Secrets Manager names (docs/stacks.md): nothing that
// could climb out of the tenant's namespace ('/', '..') or differ only by case may pass.
const NAME_RULE = "lower-case letters, digits";
const secretName = z.string().regex(SECRET_NAME_PATTERN, {
  error: (i) =>
    `secret name ${shown(i.input)} must be ${NAME_RULE}, _ or -, starting with a letter (no '/', '..', spaces or upper case): it becomes part of a Secrets Manager name under <app>/<env>/tenants/<tenant>/`,
});
/** A tenant's own secret: not one of the names the program uses in the tenant's namespace. */
const tenantSecretName = secretName.refine((n) => !RESERVED_SECRET_NAMES.has(n), {
  error: (i) =>
    `secret name ${shown(i.input)} is reserved: the program keeps its own ${shown(i.input)} document under <app>/<env>/tenants/<tenant>/ (reserved: ${[...RESERVED_SECRET_NAMES].join(", ")}); choose another name`,
});

const teamName = z.string().regex(TEAM_NAME_PATTERN, {
  error: (i) =>
    `team name ${shown(i.input)} must be ${NAME_RULE} or -, starting with a letter (no '/', '..', spaces or upper case): it becomes part of <app>/<env>/tenants/<tenant>/teams/<team>/`,
});
const cellId = z.string().regex(CELL_ID_PATTERN, { error: (i) => `cell id ${shown(i.input)} must look like use1-01 (<region code><n>-<nn>)` });
const cidr = z.string().refine(isCidr, {
  error: (i) => `${shown(i.input)} must be an IPv4 CIDR block with no host bits set (a.b.c.d/n, e.g. 10.64.0.0/16)`,
});
const isoDateTime = z.iso.datetime({ offset: true });

function uniqueList<T extends z.ZodType<string>>(item: T) {
  return z.array(item).superRefine((list, ctx) => {
    const seen = new Set<string>();
    list.forEach((v, i) => {
      if (seen.has(v)) ctx.addIssue({ code: "custom", path: [i], message: `"${v}" is listed twice; remove the duplicate` });
      seen.add(v);
    });
  });
}

export function makeTenantSchema(ctx: SchemaContext) {
  const region = z.enum(ctx.regions as [string, ...string[]], {
    error: (i) =>
      i.input === undefined
        ? `is required; allowed regions: ${ctx.regions.join(", ")}`
        : `${shown(i.input)} is not allowed; allowed regions: ${ctx.regions.join(", ")}`,
  });
  /**
   * Key of the per-environment maps. A string check rather than an enum so an undeclared
   * environment gets its own message instead of zod's "unrecognized key"; the enum is kept
   * for editors through the JSON schema's propertyNames.
   */
  const env = z
    .string()
    .refine((e) => ctx.environments.includes(e), {
      error: (i) =>
        `environment ${shown(i.input)} is not declared by the platform (Pulumi.yaml); declared: ${ctx.environments.join(", ")}`,
    })
    .meta({ enum: [...ctx.environments] });

  const team = z
    .object({ secrets: uniqueList(secretName).default([]).describe("Team secret names, created at `<app>/<env>/tenants/<tenant>/teams/<team>/<name>`; values are set out of band.") })
    .strict();
  const environment = z
    .object({
      /** Teams of this environment, keyed by team name; each may declare its own secrets. */
      teams: z.partialRecord(teamName, team).default({}).describe("Teams of this environment, keyed by team name (lower-case letters, digits, -)."),
      /**
       * Written by the credential rotation (docs/lifecycle.md): from then on the stacks take the
       * tenant's database password from its connection document instead of their own random one.
       */
      credentialsRotatedAt: isoDateTime
        .optional()
        .describe("When the tenant's database password in this environment was last rotated (written by `tenantctl rotate`'s workflow; do not edit). Set: the stacks keep the rotated password."),
      /**
       * Written by the cell move (docs/lifecycle.md, "Cell moves") and at the end of an upgrade to
       * dedicated stacks: the role in the new cell or dedicated database was created with the
       * password of the connection document, which the stacks then keep, as after a rotation.
       */
      movedAt: isoDateTime
        .optional()
        .describe("When the tenant's move to another cell, or its upgrade to a dedicated stack, in this environment started (written by those workflows; do not edit). Set: the stacks take the database password from the connection document, as after a rotation."),
    })
    .strict();

  const limits = z
    .object({
      apiRatePerMinute: z.number().int().positive().describe("API requests per minute at the gateway."),
      storageGb: z.number().int().positive().describe("Object storage quota in GiB."),
      maxDbConnections: z.number().int().min(1).max(5000).describe("Postgres CONNECTION LIMIT of the tenant's role."),
      statementTimeoutMs: z.number().int().min(100).max(3_600_000).describe("Postgres statement_timeout of the tenant's role, in milliseconds."),
    })
    .partial()
    .strict();

  const database = z
    .object({
      instanceClass: z
        .string()
        .regex(/^db\.[a-z0-9]+\.[a-z0-9]+$/, { error: (i) => `instance class ${shown(i.input)} must look like db.<family>.<size>, e.g. db.r6g.large` })
        .describe("RDS instance class."),
      allocatedStorageGb: z.number().int().min(20).max(65536).describe("RDS allocated storage in GiB."),
      maxAllocatedStorageGb: z.number().int().min(20).max(65536).describe("Storage autoscaling ceiling in GiB (RDS grows storage up to it; at least allocatedStorageGb)."),
      multiAz: z.boolean().describe("RDS Multi-AZ standby."),
      backupRetentionDays: z.number().int().min(MIN_BACKUP_RETENTION_DAYS).max(35).describe(`Automated backup retention in days (${MIN_BACKUP_RETENTION_DAYS}-35).`),
    })
    .partial()
    .strict();

  const base = {
    $schema: z.string().optional().describe("Editor hint (JSON schema location); ignored."),
    id: tenantId.describe(
      "Tenant id: a DNS label of at most 24 characters, not a reserved word, equal to the file name. Part of every resource name: never change it.",
    ),
    displayName: z.string().min(1).max(120).describe("Human-readable name for dashboards and invoices."),
    tier: z
      .enum(TIERS, {
        error: (i) =>
          i.input === undefined ? `is required; one of ${TIERS.join(", ")}` : `${shown(i.input)} is not one of ${TIERS.join(", ")}`,
      })
      .describe("Commercial tier: decides the default limits and, for dedicated, the deployment."),
    region: region.describe("Data residency: the AWS region holding the tenant's data (one of the platform regions)."),
    lifecycle: z
      .enum(LIFECYCLES)
      .default("active")
      .describe("active; suspended (data kept, database login revoked, DNS to the suspension page); offboarding (with the offboarding block)."),
    rolloutRing: z
      .string()
      .regex(/^[a-z][a-z0-9-]{0,30}$/, "must name a rollout ring declared in Pulumi.yaml (saas-tenancy:rollouts)")
      .optional()
      .describe("Pins the tenant's stacks to this rollout ring or a later one (customers who want changes last); never earlier than the ring they would get."),
    contact: z.object({ email: z.email().describe("Technical contact e-mail.") }).strict().optional().describe("Who to tell about maintenance and incidents."),
    billing: z
      .object({
        provider: z.enum(["stripe", "manual"]).describe("Billing system."),
        customerId: z.string().min(1).describe("Customer id in the billing system."),
        subscriptionId: z.string().min(1).optional().describe("Subscription id (Stripe)."),
        priceId: z.string().min(1).optional().describe("Price id; the control plane maps it to a tier."),
      })
      .strict()
      .optional()
      .describe("Billing reference; the control plane matches webhooks to tenants by it."),
    features: z
      .object({
        sso: z.boolean().default(false).describe("Single sign-on (SAML/OIDC) for the tenant's users."),
        /** Peering of a dedicated VPC to the customer's own VPC (dedicated.<env>.customerVpc). */
        vpcPeering: z.boolean().default(false).describe("Private connectivity to the customer's own VPC: a VPC peering per environment to dedicated.<env>.customerVpc (dedicated only)."),
        customModel: z.boolean().default(false).describe("A custom (fine-tuned) model for the tenant."),
        /** Internet egress (public subnets and NAT) for a dedicated VPC. */
        egress: z.boolean().default(false).describe("Internet egress (public subnets and a NAT gateway) for the dedicated VPC."),
      })
      .strict()
      .prefault({})
      .describe("Feature switches."),
    /** Overrides of the tier's limits (infra/model/tiers.ts). */
    limits: limits.optional().describe("Overrides of the tier's limits (defaults: the tier table below)."),
    /** Tenant secrets, by name; values are set out of band. */
    secrets: uniqueList(tenantSecretName)
      .default([])
      .describe("Tenant secret names, created at `<app>/<env>/tenants/<tenant>/<name>` in every environment; values are set out of band."),
    environments: z
      .partialRecord(env, environment)
      .refine((e) => Object.keys(e).length > 0, { message: "must declare at least one environment, e.g. prod: {}" })
      .describe("Environments the tenant exists in (declared by the platform), each with its teams."),
    /** Present while lifecycle is offboarding: the grace period runs from requestedAt. */
    offboarding: z
      .object({
        requestedAt: isoDateTime.describe("When offboarding was requested (ISO 8601 with offset)."),
        graceDays: z.number().int().min(0).optional().describe("Days the data is kept after requestedAt."),
        /** Written by the offboarding workflow only (infra/model/destroy.ts): from then on a dedicated stack may be destroyed. */
        finalBackupAt: isoDateTime
          .optional()
          .describe(
            "Written by the offboarding workflow once the final backup of every environment is recorded (never by hand): from then on the tenant's dedicated stacks let a destroy finish (the DNS zones are emptied, RDS deletion protection is off; the bucket is kept with its data unless objectBackupAt is written too).",
          ),
        /** Written by the offboarding workflow only (infra/model/destroy.ts): from then on a dedicated stack's destroy empties its bucket. */
        objectBackupAt: isoDateTime
          .optional()
          .describe(
            "Written by the offboarding workflow, with finalBackupAt, once every current object version of the tenant's buckets is copied to the final backup and the copy is recorded (never by hand): from then on a destroy of the tenant's dedicated stacks empties and deletes the bucket (forceDestroy) instead of keeping it.",
          ),
      })
      .strict()
      .optional()
      .describe("Present exactly while lifecycle is offboarding."),
  };

  const pooled = z
    .object({
      ...base,
      deployment: z.literal("pooled").describe("Derived from the tier when omitted (dedicated tier: dedicated, others: pooled); only enterprise may choose."),
      /** env -> cell id. Written by `tenantctl new`; never changed implicitly (a move is a data migration). */
      placement: z
        .partialRecord(env, cellId)
        .describe("Pooled only: env -> cell id (e.g. use1-01), one per environment. Written by tenantctl new; never changed implicitly (a move is a data migration)."),
      /** A cell move in progress (written by the move workflow only; infra/model/cellMove.ts). `placement` names the destination. */
      move: z
        .object({
          phase: z.enum(MIGRATION_PHASES).describe("provisioning, copying, cutover, cleanup."),
          from: z.partialRecord(env, cellId).describe("env -> the cell the tenant is leaving (placement names the cell it moves to)."),
          workflowId: z.uuid().describe("The control plane's move workflow that writes this block."),
          startedAt: isoDateTime.describe("When the move started (ISO 8601 with offset)."),
          retainUntil: isoDateTime.optional().describe("When cleanup may remove the tenant from the cell it left."),
        })
        .strict()
        .optional()
        .describe("A cell move in progress (written by the control plane's move workflow, `tenantctl move`; never by hand)."),
    })
    .strict();

  const dedicatedEnv = z
    .object({
      /** The tenant VPC's CIDR in this env, a /16 from the platform's dedicated supernet. */
      cidr: cidr.describe("The tenant VPC's CIDR, a /16 from the platform's dedicated supernet; chosen by tenantctl new."),
      /** Private subnets, one per AZ; default 3 in prod, 2 elsewhere. */
      azCount: z.number().int().min(2).max(6).optional().describe("Private subnets, one per AZ (default 3 in prod, 2 elsewhere)."),
      /** Overrides of the tier's RDS sizing for this env. */
      database: database.optional().describe("Overrides of the dedicated RDS sizing for this environment (defaults: the sizing table below)."),
      /** With features.vpcPeering: the customer's own VPC this env peers with (docs/network.md). */
      customerVpc: z
        .object({
          accountId: z.string().regex(/^\d{12}$/, "must be the customer's 12-digit AWS account id (quote it in YAML)").describe("The customer's AWS account id (it accepts the peering)."),
          vpcId: z.string().regex(/^vpc-[0-9a-f]{8,17}$/, "must be a VPC id like vpc-0123456789abcdef0").describe("The customer's VPC id."),
          cidr: cidr.describe("The customer VPC's CIDR; must not overlap anything of ours (hubs, cells, dedicated VPCs, other customers)."),
        })
        .strict()
        .optional()
        .describe("With features.vpcPeering: the customer's VPC this environment peers with (requester side here; the customer accepts)."),
    })
    .strict();

  const dedicated = z
    .object({
      ...base,
      deployment: z.literal("dedicated").describe("Derived from the tier when omitted (dedicated tier: dedicated, others: pooled); only enterprise may choose."),
      /** env -> network and sizing of the tenant's own stack. */
      dedicated: z.partialRecord(env, dedicatedEnv).describe("Dedicated only: env -> network and sizing of the tenant's own stack `dedicated-<id>-<env>`."),
      /** A pooled -> dedicated upgrade in progress: the cell each env is leaving. */
      migration: z
        .object({
          phase: z.enum(MIGRATION_PHASES).describe("provisioning, copying, cutover, cleanup."),
          from: z.partialRecord(env, cellId).describe("env -> the cell the tenant is leaving."),
          /** The tier it had in the cell: the cell keeps serving it with that tier's limits and key until cutover. */
          fromTier: z.enum(TIERS).describe("The tier the tenant had in its cell (its limits and own-key rule apply there until cutover)."),
          startedAt: isoDateTime.describe("When the upgrade started (ISO 8601 with offset)."),
          /** When cleanup may remove the tenant from its cells. */
          retainUntil: isoDateTime.optional().describe("When cleanup may remove the tenant from its cells."),
        })
        .strict()
        .optional()
        .describe("A pooled -> dedicated upgrade in progress (written by the control plane)."),
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
        if (!(e in perEnv)) {
          const fix = t.deployment === "pooled" ? `${e}: <cell id> (tenantctl new chooses one)` : `${e}: { cidr: <a free /16> }`;
          issue.addIssue({ code: "custom", path: [key], message: `has no entry for environment ${e}, which environments declares; add ${fix}` });
        }
      }
      for (const e of Object.keys(perEnv)) {
        if (!envs.includes(e)) {
          issue.addIssue({ code: "custom", path: [key, e], message: `environment ${e} is not declared under environments; add it there or remove this entry` });
        }
      }
      if (t.deployment === "pooled" && t.move) {
        for (const [e, from] of Object.entries(t.move.from)) {
          if (from === undefined) continue;
          if (!(e in t.placement)) issue.addIssue({ code: "custom", path: ["move", "from", e], message: `environment ${e} has no placement to move to` });
          else if (t.placement[e] === from) issue.addIssue({ code: "custom", path: ["move", "from", e], message: `the tenant moves from ${from} to the same cell; a move names another cell in placement` });
        }
        if (Object.keys(t.move.from).length === 0) issue.addIssue({ code: "custom", path: ["move", "from"], message: "a move names at least one environment it leaves a cell in" });
      }
      if (t.deployment === "pooled" && t.features.vpcPeering) {
        issue.addIssue({ code: "custom", path: ["features", "vpcPeering"], message: "VPC peering needs a dedicated deployment; set it to false or make the tenant dedicated" });
      }
      if (t.deployment === "dedicated") {
        for (const [e, net] of Object.entries(t.dedicated)) {
          if (!net) continue;
          if (t.features.vpcPeering && !net.customerVpc) {
            issue.addIssue({ code: "custom", path: ["dedicated", e], message: "features.vpcPeering is on but this environment has no customerVpc; add customerVpc: { accountId: <12 digits>, vpcId: vpc-..., cidr: <their CIDR> }" });
          }
          if (!t.features.vpcPeering && net.customerVpc) {
            issue.addIssue({ code: "custom", path: ["dedicated", e, "customerVpc"], message: "is set but features.vpcPeering is off; turn the feature on or remove customerVpc" });
          }
        }
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

const schemaCache = new Map<string, TenantSchema>();

/**
 * makeTenantSchema, memoized per platform context. Building the schema (and zod's compiled fast
 * path on first use) costs milliseconds; a fleet has many files and the control plane validates
 * on every request. Schemas are immutable, so sharing one is safe.
 */
export function tenantSchemaFor(ctx: SchemaContext): TenantSchema {
  const key = JSON.stringify([ctx.regions, ctx.environments]);
  let schema = schemaCache.get(key);
  if (!schema) {
    schema = makeTenantSchema(ctx);
    schemaCache.set(key, schema);
  }
  return schema;
}
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
