/**
 * Tenant file text, written the way `tenantctl new` writes it (cli/commands/new.ts): the schema
 * comment, placement chosen by chooseCell, dedicated CIDRs by allocateDedicatedCidrs, one stack
 * file per dedicated env. Edits of an existing file go through the YAML document so comments and
 * layout a person wrote survive.
 */
import { parseDocument, stringify } from "yaml";
import { SCHEMA_COMMENT } from "../../cli/commands/new.ts";
import type { Fleet } from "../../infra/model/fleet.ts";
import { dedicatedStackName } from "../../infra/model/naming.ts";
import { allocateDedicatedCidrs, chooseCell, PlacementError } from "../../infra/model/placement.ts";
import { defaultDeployment, TIERS, type Tier } from "../../infra/model/tiers.ts";
import { stackPath, tenantPath } from "../git/writer.ts";

export interface PlannedFiles {
  files: Record<string, string>;
  /** "pooled in shared-prod-use1-02" / "dedicated, 10.65.0.0/16" */
  where: string;
}

export class DocumentError extends Error {
  constructor(
    readonly path: string,
    message: string,
  ) {
    super(message);
  }
}

export function renderTenantText(doc: Record<string, unknown>): string {
  return `${SCHEMA_COMMENT}\n${stringify(doc)}`;
}

export function dedicatedStackFileText(tenantId: string, env: string, region: string): string {
  return `# Dedicated stack of tenant ${tenantId} (${env}). Network and sizing are in tenants/${tenantId}.yaml.\n${stringify({ config: { "aws:region": region } })}`;
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

/**
 * Completes a new tenant document: placement for pooled tenants, network for dedicated ones
 * (each only when the document leaves it out), and the stack files. Shape errors are left to the
 * zod model, which reports them with paths when the writer stages the file.
 */
export function planNewTenant(fleet: Fleet, docIn: Record<string, unknown>): PlannedFiles {
  const doc: Record<string, unknown> = { ...docIn };
  const id = typeof doc.id === "string" ? doc.id : "";
  const tier = typeof doc.tier === "string" && (TIERS as readonly string[]).includes(doc.tier) ? (doc.tier as Tier) : undefined;
  const deployment = doc.deployment ?? (tier ? defaultDeployment(tier) : undefined);
  const region = typeof doc.region === "string" ? doc.region : undefined;
  const envs = isRecord(doc.environments) ? Object.keys(doc.environments) : [];
  const files: Record<string, string> = {};
  let where = "";
  const usable = region !== undefined && fleet.platform.regions.includes(region) && envs.every((e) => fleet.platform.environments.includes(e));
  try {
    if (deployment === "pooled" && doc.placement === undefined && usable && envs.length > 0) {
      doc.placement = Object.fromEntries(envs.map((e) => [e, chooseCell(fleet, e, region).id]));
      where = `pooled in ${envs.map((e) => `shared-${e}-${(doc.placement as Record<string, string>)[e]}`).join(", ")}`;
    } else if (deployment === "pooled" && isRecord(doc.placement)) {
      where = `pooled in ${Object.entries(doc.placement).map(([e, c]) => `shared-${e}-${String(c)}`).join(", ")}`;
    }
    if (deployment === "dedicated") {
      if (doc.dedicated === undefined && usable && envs.length > 0) {
        const cidrs = allocateDedicatedCidrs(fleet, envs.length);
        doc.dedicated = Object.fromEntries(envs.map((e, i) => [e, { cidr: cidrs[i] }]));
      }
      const dedicatedEnvs = isRecord(doc.dedicated) ? Object.keys(doc.dedicated) : [];
      for (const e of dedicatedEnvs) {
        if (region && id) files[stackPath(dedicatedStackName(id, e))] = dedicatedStackFileText(id, e, region);
      }
      where = `dedicated (${dedicatedEnvs.map((e) => dedicatedStackName(id, e)).join(", ")})`;
    }
  } catch (err) {
    if (err instanceof PlacementError) throw new DocumentError(deployment === "pooled" ? "placement" : "dedicated", err.message);
    throw err;
  }
  files[tenantPath(id)] = renderTenantText(doc);
  return { files, where };
}

export type Edit = readonly [path: readonly (string | number)[], value: unknown];

/** Applies edits to a tenant file's text; undefined deletes the key. Comments are kept. */
export function editTenantText(text: string, edits: readonly Edit[]): string {
  const doc = parseDocument(text);
  for (const [path, value] of edits) {
    if (value === undefined) doc.deleteIn(path);
    else doc.setIn(path, value);
  }
  return doc.toString();
}
