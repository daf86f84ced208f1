import { readFileSync } from "node:fs";
import { join } from "node:path";
import { parse } from "yaml";
import { z } from "zod";
import { isCidr } from "./cidr.ts";
import { DEFAULT_RDS_CA_BUNDLE_PATH, engineVersionProblem } from "./database.ts";
import { APP_NAME_PATTERN } from "./naming.ts";
import { QuotasSchema } from "./quotas.ts";

/** Config key of the platform object in Pulumi.yaml (project config) and under pulumi.Config. */
export const PROJECT = "saas-tenancy";
export const PLATFORM_KEY = "platform";

const cidr = z.string().refine(isCidr, { message: "must be an IPv4 CIDR block with no host bits set (a.b.c.d/n)" });

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
  })
  .strict()
  .superRefine((d, ctx) => {
    const problem = engineVersionProblem(d.dbEngineVersion, d.autoMinorVersionUpgrade);
    if (problem) ctx.addIssue({ code: "custom", path: ["dbEngineVersion"], message: problem });
  });

export const PlatformSchema = z
  .object({
    appName: z.string().regex(APP_NAME_PATTERN, "must be 2-12 lower-case letters, digits or dashes"),
    domain: z.string().regex(/^(?:[a-z0-9-]+\.)+[a-z]{2,}$/, "must be a lower-case DNS name"),
    hostedZoneId: z.string().min(1),
    awsAccountId: z.string().regex(/^\d{12}$/, "must be a 12-digit AWS account id (quote it in YAML)"),
    regions: z.array(z.string().regex(/^[a-z]{2}-[a-z]+-\d$/)).min(1),
    environments: z.array(z.string().regex(/^[a-z]{2,7}$/)).min(1),
    controlPlane: z
      .object({ cidr, vpcId: z.string().min(1), region: z.string().min(1), roleArn: z.string().startsWith("arn:aws:iam::") })
      .strict(),
    dedicatedSupernet: cidr,
    suspensionTarget: z.string().min(1),
    cellDefaults: CellDefaultsSchema,
    /** Path of the RDS CA bundle on the runner: the postgresql provider verifies the server with it (sslmode verify-full). */
    rdsCaBundlePath: z.string().startsWith("/", "must be an absolute path on the runner").default(DEFAULT_RDS_CA_BUNDLE_PATH),
    /** Service quotas of the platform account (infra/model/quotas.ts); absent keys are AWS's defaults. */
    quotas: QuotasSchema,
  })
  .strict();

export type Platform = z.infer<typeof PlatformSchema>;
export type CellDefaults = z.infer<typeof CellDefaultsSchema>;

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
      path: [...yamlPath, ...(i.path as PropertyKey[])],
      message: i.message.replace(/^Invalid input: /, ""),
    }));
    throw new PlatformError(lines.join("\n"), issues);
  }
  return result.data;
}
