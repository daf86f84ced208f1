import { readFileSync } from "node:fs";
import { join } from "node:path";
import { parse } from "yaml";
import { z } from "zod";
import { isCidr, overlaps, parseCidr } from "./cidr.ts";
import { DEFAULT_RDS_CA_BUNDLE_PATH, engineVersionProblem } from "./database.ts";
import { APP_NAME_PATTERN, PROJECT, ssmAppNameProblem } from "./naming.ts";
import { QuotasSchema } from "./quotas.ts";

/** Config key of the platform object in Pulumi.yaml (project config) and under pulumi.Config. */
export { PROJECT };
export const PLATFORM_KEY = "platform";

/** Parameter Store tiers the documents may use (Intelligent-Tiering is a default-tier setting of the account, not a parameter's tier here). */
export const SSM_PARAMETER_TIERS = ["Standard", "Advanced"] as const;

const cidr = z.string().refine(isCidr, { message: "must be an IPv4 CIDR block with no host bits set (a.b.c.d/n)" });

/** Headroom (percent of capacity) an env and region keep before a new cell is opened (docs/cells.md). */
export const DEFAULT_CELL_RESERVE_PERCENT = 20;

export const CellDefaultsSchema = z
  .object({
    /** Most pooled tenants one cell may hold, per env. */
    capacity: z.number().int().positive(),
    /** Private subnets (one per AZ) in a cell VPC; at least 2 for RDS subnet groups. */
    azCount: z.number().int().min(2).max(6),
    /** PostgreSQL major version ("16"); RDS picks and upgrades the minor (docs/stacks.md). */
    dbEngineVersion: z.string().min(1),
    /**
     * RDS upgrades minor versions in the maintenance window. On (the default), dbEngineVersion must
     * be a major only: a pinned minor would be "downgraded" back by the next refreshed up.
     */
    autoMinorVersionUpgrade: z.boolean().default(true),
    dbInstanceClass: z.string().regex(/^db\.[a-z0-9]+\.[a-z0-9]+$/, "must look like db.<family>.<size>"),
    dbAllocatedStorageGb: z.number().int().min(20).max(65536),
    /**
     * Headroom kept free per env and region, in percent of its cells' capacity: when placing a
     * tenant would leave less, a new cell is opened first (infra/model/cells.ts, docs/cells.md).
     * @default 20
     */
    reservePercent: z.number().int().min(0).max(90).default(DEFAULT_CELL_RESERVE_PERCENT),
  })
  .strict()
  .superRefine((d, ctx) => {
    const problem = engineVersionProblem(d.dbEngineVersion, d.autoMinorVersionUpgrade);
    if (problem) ctx.addIssue({ code: "custom", path: ["dbEngineVersion"], message: problem });
  });

/** One region's hub VPC: a /16, private subnets in the listed AZs (at least 2). */
export const HubSchema = z
  .object({
    cidr: cidr.refine((c) => c.endsWith("/16"), "a hub VPC is a /16 (the hub layout, infra/model/hub.ts, carves it)"),
    azs: z.array(z.string().regex(/^[a-z]{2}-[a-z]+-\d[a-z]$/, "must be an AZ name like us-east-1a")).min(2),
  })
  .strict();

export const PlatformSchema = z
  .object({
    appName: z
      .string()
      .regex(APP_NAME_PATTERN, "must be 2-12 lower-case letters, digits or dashes")
      .superRefine((app, issue) => {
        const problem = ssmAppNameProblem(app);
        if (problem) issue.addIssue({ code: "custom", message: problem });
      }),
    domain: z.string().regex(/^(?:[a-z0-9-]+\.)+[a-z]{2,}$/, "must be a lower-case DNS name"),
    hostedZoneId: z.string().min(1),
    awsAccountId: z.string().regex(/^\d{12}$/, "must be a 12-digit AWS account id (quote it in YAML)"),
    regions: z.array(z.string().regex(/^[a-z]{2}-[a-z]+-\d$/)).min(1),
    environments: z.array(z.string().regex(/^[a-z]{2,7}$/)).min(1),
    /** The hub network of every platform region (the `platform-<region>` stacks); see docs/network.md. */
    hubs: z.record(z.string(), HubSchema),
    controlPlane: z
      .object({
        /** The region whose platform stack runs the control plane (its ECS service, ALB and database). */
        region: z.string().min(1),
        /**
         * Where operators reach `/api/*` and `/console/*` from (office, VPN egress). Only
         * `/webhooks/stripe` is public; nothing may list the whole internet here.
         */
        operatorCidrs: z.array(cidr.refine((c) => !c.endsWith("/0"), "must not be the whole internet; list the operators' networks")).min(1),
      })
      .strict(),
    dedicatedSupernet: cidr,
    suspensionTarget: z.string().min(1),
    cellDefaults: CellDefaultsSchema,
    /** Path of the RDS CA bundle on the runner: the postgresql provider verifies the server with it (sslmode verify-full). */
    rdsCaBundlePath: z.string().startsWith("/", "must be an absolute path on the runner").default(DEFAULT_RDS_CA_BUNDLE_PATH),
    /**
     * Tier of every SSM document the stacks write (runtime config, routing pages; docs/runtime-config.md).
     * Standard: free, 4 KB, 10,000 per account and region. Advanced: 8 KB, 100,000, charged per
     * parameter-month. Standard -> Advanced changes the parameters in place; Advanced never goes back.
     * @default Standard
     */
    ssmParameterTier: z.enum(SSM_PARAMETER_TIERS).default("Standard"),
    /** Service quotas of the platform account (infra/model/quotas.ts); absent keys are AWS's defaults. */
    quotas: QuotasSchema,
  })
  .strict()
  .superRefine((p, issue) => {
    // An empty region list is reported by itself; every check below would only echo it.
    if (p.regions.length === 0) return;
    // Every region has a hub and a platform stack; a hub of a region the platform does not serve is a typo.
    for (const region of p.regions) {
      if (!(region in p.hubs)) issue.addIssue({ code: "custom", path: ["hubs"], message: `region ${region} has no hub; add hubs.${region}: { cidr: <a free /16>, azs: [<2+ AZs of ${region}>] }` });
    }
    for (const [region, hub] of Object.entries(p.hubs)) {
      if (!p.regions.includes(region)) issue.addIssue({ code: "custom", path: ["hubs", region], message: `is not a platform region (${p.regions.join(", ")}); remove it or add the region` });
      hub.azs.forEach((az, i) => {
        if (!az.startsWith(region)) issue.addIssue({ code: "custom", path: ["hubs", region, "azs", i], message: `${az} is not in ${region}` });
      });
    }
    const hubs = Object.entries(p.hubs);
    for (let i = 0; i < hubs.length; i++) {
      for (let j = 0; j < i; j++) {
        const [ra, a] = hubs[i]!;
        const [rb, b] = hubs[j]!;
        if (isCidr(a.cidr) && isCidr(b.cidr) && overlaps(parseCidr(a.cidr), parseCidr(b.cidr))) {
          issue.addIssue({ code: "custom", path: ["hubs", ra, "cidr"], message: `${a.cidr} overlaps the ${rb} hub ${b.cidr}; hubs are routed to each other and need disjoint blocks` });
        }
      }
    }
    if (!p.regions.includes(p.controlPlane.region)) {
      issue.addIssue({ code: "custom", path: ["controlPlane", "region"], message: `${p.controlPlane.region} is not a platform region (${p.regions.join(", ")})` });
    }
  });

export type Platform = z.infer<typeof PlatformSchema>;
export type CellDefaults = z.infer<typeof CellDefaultsSchema>;
export type Hub = z.infer<typeof HubSchema>;

/** The hub of a region; the schema guarantees every platform region has one. */
export function hubOf(platform: Pick<Platform, "hubs">, region: string): Hub {
  const hub = platform.hubs[region];
  if (!hub) throw new Error(`region ${region} has no hub in Pulumi.yaml (config.saas-tenancy:platform.value.hubs.${region})`);
  return hub;
}

/**
 * The env the platform stacks belong to (their tags and the `global` secret namespace of the
 * control plane): prod when the platform has it, else its first environment. The platform
 * serves every env; it is production infrastructure.
 */
export function platformEnv(platform: Pick<Platform, "environments">): string {
  return platform.environments.includes("prod") ? "prod" : platform.environments[0]!;
}

/** The DNS domain of an environment: prod serves on the root domain, others on `<env>.<domain>`. */
export function envDomain(platform: Pick<Platform, "domain">, env: string): string {
  return env === "prod" ? platform.domain : `${env}.${platform.domain}`;
}

/** One problem of the platform object, with its YAML path inside Pulumi.yaml. */
export interface PlatformIssue {
  path: PropertyKey[];
  message: string;
}

export class PlatformError extends Error {
  constructor(
    message: string,
    /** Structured form of the message, for tools that point at lines (empty when Pulumi.yaml could not be read). */
    readonly issues: readonly PlatformIssue[] = [],
  ) {
    super(message);
  }
}

/** Reads the platform object from Pulumi.yaml's project config (`config.saas-tenancy:platform.value`). */
export function loadPlatform(projectDir: string): Platform {
  const file = join(projectDir, "Pulumi.yaml");
  let doc: unknown;
  try {
    doc = parse(readFileSync(file, "utf8"));
  } catch (err) {
    throw new PlatformError(`${file}: ${(err as Error).message}`);
  }
  const config = (doc as { config?: Record<string, unknown> } | null)?.config ?? {};
  const key = `${PROJECT}:${PLATFORM_KEY}` in config ? `${PROJECT}:${PLATFORM_KEY}` : PLATFORM_KEY;
  const entry = config[key];
  const wrapped = Boolean(entry && typeof entry === "object" && "value" in entry);
  const value = wrapped ? (entry as { value: unknown }).value : entry;
  return parsePlatform(value, `${file}: config.${PROJECT}:${PLATFORM_KEY}`, ["config", key, ...(wrapped ? ["value"] : [])]);
}

export function parsePlatform(value: unknown, where: string, yamlPath: readonly PropertyKey[] = []): Platform {
  const result = PlatformSchema.safeParse(value);
  if (!result.success) {
    const lines = result.error.issues.map((i) => `${where}.${i.path.join(".")}: ${i.message}`);
    const issues = result.error.issues.map((i) => ({
      path: [...yamlPath, ...i.path],
      message: i.message.replace(/^Invalid input: /, ""),
    }));
    throw new PlatformError(lines.join("\n"), issues);
  }
  return result.data;
}
