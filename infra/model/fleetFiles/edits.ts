/**
 * The tenant edits every writer makes (tenantctl, the HTTP API, billing, the lifecycle workflows),
 * as pure functions of a file's text, the tenant and the fleet: a new tenant, a tier change,
 * suspension and resumption, the offboarding request and the upgrade's provisioning step. The
 * writers only decide when; what the files then say is decided here, once.
 */
import type { Fleet } from "../fleet.ts";
import { dedicatedStackName } from "../naming.ts";
import { allocateDedicatedCidrs, CellOpeningError, chooseCell, PlacementError } from "../placement.ts";
import type { Tenant } from "../schema.ts";
import { defaultDeployment, TIERS, type Tier } from "../tiers.ts";
import { withDedicatedTenant } from "./codeowners.ts";
import { CODEOWNERS_PATH, stackPath, tenantPath, type FileSet } from "./paths.ts";
import { dedicatedStackFileText, editTenantText, isoSeconds, renderTenantText, type Edit } from "./text.ts";

export interface PlannedFiles {
  /** Repository-relative path -> content: the stack files (dedicated), then the tenant file. */
  files: Record<string, string>;
  /** "pooled in shared-prod-use1-02" / "dedicated (dedicated-acme-prod)" */
  where: string;
}

/** A new tenant's document cannot be completed (no cell with room, supernet full). */
export class DocumentError extends Error {
  constructor(
    /** The YAML key that could not be filled: "placement" or "dedicated". */
    readonly path: string,
    message: string,
    /** Stacks of the cells still opening the tenant waits for (no open cell had room; docs/cells.md). */
    readonly waitingFor: readonly string[] = [],
  ) {
    super(message);
  }
}

/** The file says something an edit must not change now (mid-upgrade, already dedicated, ...). */
export class EditRefusedError extends Error {}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

/**
 * Completes a new tenant document: placement for pooled tenants (chooseCell), network for
 * dedicated ones (allocateDedicatedCidrs), each only when the document leaves it out, and one
 * stack file per dedicated env. Shape errors are left to the zod model, which reports them with
 * paths when the file is validated.
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
    if (err instanceof CellOpeningError) throw new DocumentError("placement", err.message, [err.cell.stack]);
    if (err instanceof PlacementError) throw new DocumentError(deployment === "pooled" ? "placement" : "dedicated", err.message);
    throw err;
  }
  files[tenantPath(id)] = renderTenantText(doc);
  return { files, where };
}

/** A tier change within the tenant's deployment; an enterprise tenant that is dedicated stays so explicitly. */
export function tierChangeEdits(t: Tenant, tier: Tier): Edit[] {
  const edits: Edit[] = [[["tier"], tier]];
  // Enterprise may be either: a dedicated tenant keeps its deployment explicitly.
  if (t.deployment === "dedicated" && tier === "enterprise") edits.push([["deployment"], "dedicated"]);
  return edits;
}

/** Suspension or resumption of the file's lifecycle; resumption also ends an offboarding. */
export function lifecycleEdits(t: Tenant, to: "suspended" | "active"): Edit[] {
  return t.lifecycle === "offboarding" ? [[["lifecycle"], to], [["offboarding"], undefined]] : [[["lifecycle"], to]];
}

/** Suspension or resumption; undefined when the file already says so. Resumption also ends an offboarding. */
export function lifecycleEdit(text: string, t: Tenant, to: "suspended" | "active"): FileSet | undefined {
  if (to === "suspended" && t.lifecycle === "offboarding") throw new EditRefusedError(`tenant ${t.id} is offboarding; suspension does not apply`);
  if (t.lifecycle === to) return undefined;
  return { [tenantPath(t.id)]: editTenantText(text, lifecycleEdits(t, to)) };
}

/** The offboarding request in a tenant file: lifecycle offboarding, offboarding { requestedAt[, graceDays] }. */
export function offboardEdits(requestedAt: string, graceDays?: number): Edit[] {
  return [[["lifecycle"], "offboarding"], [["offboarding"], { requestedAt, ...(graceDays !== undefined ? { graceDays } : {}) }]];
}

/**
 * The offboarding's record that every env's final backup exists (`offboarding.finalBackupAt`,
 * infra/model/destroy.ts): from then on the tenant's dedicated stacks let a destroy finish; with
 * `objectsAt`, that every env's bucket objects are copied too (`offboarding.objectBackupAt`): the
 * destroy then empties the bucket. Undefined when the file already says so (the first record stands).
 */
export function finalBackupEdit(text: string, t: Tenant, at: Date, objectsAt?: Date): FileSet | undefined {
  if (t.lifecycle !== "offboarding" || !t.offboarding) throw new EditRefusedError(`tenant ${t.id} is ${t.lifecycle}, not offboarding; no final backup is recorded in its file`);
  const edits: Edit[] = [];
  if (t.offboarding.finalBackupAt === undefined) edits.push([["offboarding", "finalBackupAt"], isoSeconds(at)]);
  if (objectsAt !== undefined && t.offboarding.objectBackupAt === undefined) edits.push([["offboarding", "objectBackupAt"], isoSeconds(objectsAt)]);
  if (edits.length === 0) return undefined;
  return { [tenantPath(t.id)]: editTenantText(text, edits) };
}

/**
 * The offboarding request of the lifecycle workflow. A tenant already offboarding keeps its
 * request time and grace (the clock does not restart).
 */
export function offboardRequestEdit(text: string, t: Tenant, now: Date, graceDays: number): { files: FileSet | undefined; requestedAt: string; graceDays: number } {
  if (t.deployment === "dedicated" && t.migration) {
    throw new EditRefusedError(`tenant ${t.id} is migrating to dedicated (phase ${t.migration.phase}); finish or roll back the upgrade before offboarding`);
  }
  if (t.lifecycle === "offboarding" && t.offboarding) {
    return { files: undefined, requestedAt: t.offboarding.requestedAt, graceDays: t.offboarding.graceDays ?? graceDays };
  }
  const requestedAt = isoSeconds(now);
  return { files: { [tenantPath(t.id)]: editTenantText(text, offboardEdits(requestedAt, graceDays)) }, requestedAt, graceDays };
}

/**
 * Step 1 of the upgrade: tier dedicated (deployment derived), a fresh /16 per env
 * (allocateDedicatedCidrs), VPC peering with the control plane (the copy needs it), the migration
 * block (phase provisioning, from = the old placement) and one stack file per env; with
 * `codeowners` (the current .github/CODEOWNERS text), the tenant file listed there for the
 * platform team's review, as `tenantctl new` does for a dedicated tenant. Throws PlacementError
 * when the supernet is full.
 */
export function upgradeProvisionEdit(
  fleet: Fleet,
  text: string,
  t: Tenant,
  now: Date,
  codeowners?: string,
): { files: FileSet; networks: Record<string, { cidr: string }>; stacks: string[] } {
  if (t.deployment !== "pooled") throw new EditRefusedError(`tenant ${t.id} is already dedicated`);
  if (t.lifecycle !== "active") throw new EditRefusedError(`tenant ${t.id} is ${t.lifecycle}; only an active tenant is upgraded`);
  const envs = Object.keys(t.environments).sort();
  const cidrs = allocateDedicatedCidrs(fleet, envs.length);
  const networks = Object.fromEntries(envs.map((e, i) => [e, { cidr: cidrs[i]! }]));
  const edited = editTenantText(text, [
    [["tier"], "dedicated"],
    [["deployment"], undefined],
    [["placement"], undefined],
    // No peering: the copy runs on the region's runner, which reaches the cell and the new
    // dedicated database over the Transit Gateway like every spoke (docs/network.md).
    // features.vpcPeering is the customer's own VPC, set only when they ask for it.
    [["dedicated"], networks],
    [["migration"], { phase: "provisioning", from: { ...t.placement }, fromTier: t.tier, startedAt: isoSeconds(now) }],
  ]);
  const files: FileSet = { [tenantPath(t.id)]: edited };
  const stacks = envs.map((e) => dedicatedStackName(t.id, e));
  for (const env of envs) files[stackPath(dedicatedStackName(t.id, env))] = dedicatedStackFileText(t.id, env, t.region);
  const owners = codeowners === undefined ? undefined : withDedicatedTenant(codeowners, t.id);
  if (owners !== undefined) files[CODEOWNERS_PATH] = owners;
  return { files, networks, stacks };
}
