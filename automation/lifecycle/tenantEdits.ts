/**
 * The tenant-file edits of the lifecycle workflows, as pure functions of the file's text and the
 * fleet: the workflows commit them, `tenantctl` writes them locally. Edits go through the YAML
 * document (automation/tenants/documents.ts), so comments and layout a person wrote survive.
 */
import { type Fleet } from "../../infra/model/fleet.ts";
import { dedicatedStackName } from "../../infra/model/naming.ts";
import { withDedicatedTenant } from "../../cli/codeowners.ts";
import { allocateDedicatedCidrs } from "../../infra/model/placement.ts";
import type { Tenant } from "../../infra/model/schema.ts";
import { stackPath, tenantPath } from "../git/writer.ts";
import { dedicatedStackFileText, editTenantText } from "../tenants/documents.ts";

export type FileSet = Record<string, string | null>;

/** Repository-relative path of the review rules (cli/codeowners.ts). */
export const CODEOWNERS_PATH = ".github/CODEOWNERS";

/** ISO timestamp without milliseconds, as tenant files carry them. */
export function isoSeconds(d: Date): string {
  return d.toISOString().replace(/\.\d{3}Z$/, "Z");
}

export class EditRefusedError extends Error {}

/**
 * Step 1 of the upgrade: tier dedicated (deployment derived), a fresh /16 per env
 * (allocateDedicatedCidrs), VPC peering with the control plane (the copy needs it), the migration block (phase provisioning, from = the old placement)
 * and one stack file per env; with `codeowners` (the current .github/CODEOWNERS text), the tenant
 * file listed there for the platform team's review, as `tenantctl new` does for a dedicated
 * tenant. Throws PlacementError when the supernet is full.
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
    [["dedicated"], networks],
    // The control plane copies the data into the dedicated database: it reaches it only through
    // the peering (the database admits the control-plane CIDR only then).
    [["features", "vpcPeering"], true],
    [["migration"], { phase: "provisioning", from: { ...t.placement }, fromTier: t.tier, startedAt: isoSeconds(now) }],
  ]);
  const files: FileSet = { [tenantPath(t.id)]: edited };
  const stacks = envs.map((e) => dedicatedStackName(t.id, e));
  for (const env of envs) files[stackPath(dedicatedStackName(t.id, env))] = dedicatedStackFileText(t.id, env, t.region);
  const owners = codeowners === undefined ? undefined : withDedicatedTenant(codeowners, t.id);
  if (owners !== undefined) files[CODEOWNERS_PATH] = owners;
  return { files, networks, stacks };
}

/** Suspension or resumption; undefined when the file already says so. Resumption also ends an offboarding. */
export function lifecycleEdit(text: string, t: Tenant, to: "suspended" | "active"): FileSet | undefined {
  if (to === "suspended" && t.lifecycle === "offboarding") throw new EditRefusedError(`tenant ${t.id} is offboarding; suspension does not apply`);
  if (t.lifecycle === to) return undefined;
  const edits = t.lifecycle === "offboarding" ? ([[["lifecycle"], to], [["offboarding"], undefined]] as const) : ([[["lifecycle"], to]] as const);
  return { [tenantPath(t.id)]: editTenantText(text, edits) };
}

/**
 * The offboarding request: lifecycle offboarding, offboarding { requestedAt, graceDays }. A tenant
 * already offboarding keeps its request time and grace (the clock does not restart).
 */
export function offboardRequestEdit(text: string, t: Tenant, now: Date, graceDays: number): { files: FileSet | undefined; requestedAt: string; graceDays: number } {
  if (t.deployment === "dedicated" && t.migration) {
    throw new EditRefusedError(`tenant ${t.id} is migrating to dedicated (phase ${t.migration.phase}); finish or roll back the upgrade before offboarding`);
  }
  if (t.lifecycle === "offboarding" && t.offboarding) {
    return { files: undefined, requestedAt: t.offboarding.requestedAt, graceDays: t.offboarding.graceDays ?? graceDays };
  }
  const requestedAt = isoSeconds(now);
  return {
    files: { [tenantPath(t.id)]: editTenantText(text, [[["lifecycle"], "offboarding"], [["offboarding"], { requestedAt, graceDays }]]) },
    requestedAt,
    graceDays,
  };
}
