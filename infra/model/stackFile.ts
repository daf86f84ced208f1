import { z } from "zod";
import { isCidr } from "./cidr.ts";
import { PROJECT } from "./platform.ts";
import { parseStackName, StackNameError, type StackRef } from "./naming.ts";
import type { Problem } from "./problems.ts";
import { issuesToProblems } from "./tenantFile.ts";
import { parseYamlMap, problemAt, type YamlFile } from "./yamlFile.ts";

/** Config key of a cell's settings in its stack file. */
export const CELL_KEY = `${PROJECT}:cell`;

export const CellConfigSchema = z
  .object({
    /** The cell VPC's CIDR; must not overlap other cells, dedicated tenants or the control plane. */
    cidr: z.string().refine(isCidr, { message: "must be an IPv4 CIDR block with no host bits set" }),
    /** AZ names for the cell's private subnets (one subnet each, at least 2). Appending is safe; reordering is not. */
    azs: z.array(z.string().regex(/^[a-z]{2}-[a-z]+-\d[a-z]$/, "must be an AZ name like us-east-1a")).min(2),
    /** Host name of the cell's ingress (load balancer); pooled tenants' DNS names point here. */
    ingressHostname: z.string().min(1),
    /** Overrides of the platform cellDefaults. */
    capacity: z.number().int().positive().optional(),
    dbInstanceClass: z.string().optional(),
    dbEngineVersion: z.string().optional(),
    dbAllocatedStorageGb: z.number().int().min(20).optional(),
    /**
     * A cell opened (tenantctl new, the control plane) whose stack has not had its first successful
     * `pulumi up`: no tenant may be placed in it. Removed once that up succeeded (docs/cells.md).
     */
    opening: z.boolean().optional(),
    /**
     * A cell being emptied (retired, or rebalanced): no tenant is placed in it and no move goes
     * to it; its residents leave by `tenantctl move` (docs/cells.md). Not read by the program.
     */
    draining: z.boolean().optional(),
  })
  .strict();
export type CellConfig = z.infer<typeof CellConfigSchema>;

/** Config key of a platform stack's container image (the control plane's image; the runner runs it too). */
export const IMAGE_KEY = `${PROJECT}:image`;
/**
 * A pinned image reference: registry/repository with a tag or a digest. `latest` is refused: a
 * runner replaced by ECS must start the same code as its siblings.
 */
export const IMAGE_PATTERN = /^[a-z0-9.-]+(?::\d+)?\/[a-z0-9._/-]+(?::(?!latest$)[A-Za-z0-9_.-]{1,128}|@sha256:[a-f0-9]{64})$/;

export interface StackFile {
  ref: StackRef;
  file: string;
  region: string;
  /** Present for shared stacks. */
  cell?: CellConfig;
  /** Present for platform stacks: the container image of the control plane and the runner. */
  image?: string;
  /** Every config key of the file, as Pulumi would see it (used to render offline). */
  config: Record<string, unknown>;
  yaml: YamlFile;
}

const FILE_RE = /^Pulumi\.(.+)\.ya?ml$/;

export function stackNameOfFile(baseName: string): string | undefined {
  return FILE_RE.exec(baseName)?.[1];
}

export function parseStackFile(
  file: string,
  baseName: string,
  text: string,
  environments: readonly string[],
  regions: readonly string[],
): StackFile | Problem[] {
  const name = stackNameOfFile(baseName);
  if (!name) return [{ file, line: 1, path: "", message: "stack files are named Pulumi.<stack>.yaml" }];
  let ref: StackRef;
  try {
    ref = parseStackName(name, environments);
  } catch (err) {
    if (err instanceof StackNameError) return [{ file, line: 1, path: "", message: `${err.message}; rename the file` }];
    throw err;
  }
  const y = parseYamlMap(file, text);
  if (Array.isArray(y)) return y;
  const config = (y.value as { config?: unknown }).config;
  if (!config || typeof config !== "object" || Array.isArray(config)) {
    return [problemAt(y, ["config"], "is required: a mapping with at least aws:region")];
  }
  const cfg = config as Record<string, unknown>;
  const problems: Problem[] = [];
  const region = cfg["aws:region"];
  if (typeof region !== "string" || !regions.includes(region)) {
    problems.push(problemAt(y, ["config", "aws:region"], `must be one of the platform regions: ${regions.join(", ")} (got ${JSON.stringify(region)})`));
  }
  let cell: CellConfig | undefined;
  let image: string | undefined;
  if (ref.kind === "platform" && typeof region === "string" && regions.includes(region) && region !== ref.region) {
    problems.push(problemAt(y, ["config", "aws:region"], `is ${region} but the stack is the platform stack of ${ref.region}; they must be equal`));
  }
  if (ref.kind === "platform" && !regions.includes(ref.region)) {
    problems.push(problemAt(y, [], `${ref.region} is not a platform region (${regions.join(", ")}); add it to Pulumi.yaml or remove this stack file`));
  }
  if (ref.kind === "platform") {
    const raw = cfg[IMAGE_KEY];
    if (typeof raw === "string" && IMAGE_PATTERN.test(raw)) image = raw;
    else {
      problems.push(
        problemAt(
          y,
          raw === undefined ? ["config"] : ["config", IMAGE_KEY],
          `${IMAGE_KEY} ${raw === undefined ? "is required" : `is ${JSON.stringify(raw)}`}: the control plane's image, pinned by tag or digest ` +
            `(e.g. 111111111111.dkr.ecr.us-east-1.amazonaws.com/tenancy-control-plane:1.4.2; not :latest)`,
        ),
      );
    }
  }
  if (ref.kind === "shared") {
    const parsed = CellConfigSchema.safeParse(cfg[CELL_KEY]);
    if (parsed.success) cell = parsed.data;
    else {
      problems.push(...issuesToProblems(y, parsed.error.issues, ["config", CELL_KEY], CellConfigSchema));
    }
    if (cell && typeof region === "string" && cell.azs.some((az) => !az.startsWith(region))) {
      problems.push(problemAt(y, ["config", CELL_KEY, "azs"], `every AZ must be in ${region}`));
    }
  } else if (CELL_KEY in cfg) {
    problems.push(problemAt(y, ["config", CELL_KEY], "only shared-<env>-<cell> stacks have cell settings"));
  }
  if (problems.length > 0) return problems;
  return { ref, file, region: region as string, config: cfg, yaml: y, ...(cell ? { cell } : {}), ...(image ? { image } : {}) };
}
