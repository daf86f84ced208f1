/**
 * A pooled tenant moving from one cell to another (docs/lifecycle.md, "Cell moves"): what each of
 * the two cell stacks declares of it in each phase of the move, and which resources change hands
 * at the switch. Pure; used by the cell program (PooledTenant), the model of logins, the move
 * workflow (what it hands over with `pulumi state move`) and the tests.
 *
 * During a move the tenant file says `placement.<env>: <destination>` and `move.from.<env>: <source>`.
 *
 * - The source cell ("leaving") keeps serving the tenant until the switch: its identity (IAM role
 *   and policy, secrets, connection document, own KMS key, DNS name) stays there, marked
 *   `retainOnDelete`; from phase cutover on it keeps only the role (without LOGIN) and the schema,
 *   until cleanup drops them after the final dump.
 * - The destination cell ("arriving") gets the tenant's role (without LOGIN) and empty schema from
 *   the start, so the copy has somewhere to go; from phase cutover on it declares the identity too.
 *
 * The identity resources have the same AWS names in both cells, so only one stack may manage them
 * at a time (a second creation fails on "already exists"; a stack that stops declaring them would
 * delete them). Both cells render the tenant as the same component type (`PooledTenant`) under the
 * same name, so a `pulumi state move` from the source stack to the destination stack gives them
 * exactly the URNs the destination program declares: no alias is needed. The workflow moves the
 * state before it commits phase cutover, as the upgrade does (infra/model/handover.ts).
 */
import { HANDOVER_COMPONENTS, POOLED_TENANT_TYPE, tenantComponentName } from "./handover.ts";
import { cellStackName, PROJECT } from "./naming.ts";
import type { Tenant } from "./schema.ts";
import { hasOwnKmsKey } from "./tiers.ts";

/** How a cell holds a pooled tenant in one env: its home, the cell it is leaving, or the cell it is moving to. */
export type CellPart = "resident" | "leaving" | "arriving";

export type MovePhase = NonNullable<Extract<Tenant, { deployment: "pooled" }>["move"]>["phase"];

/** Phases in which the source cell still serves the tenant (before the switch). */
export function sourceServes(phase: MovePhase): boolean {
  return phase === "provisioning" || phase === "copying";
}

/** What cell `cell` of `env` holds of pooled tenant `t`, if anything. */
export function cellPartOf(t: Tenant, env: string, cell: string): CellPart | undefined {
  if (t.deployment !== "pooled") return undefined;
  const from = t.move?.from[env];
  if (from === cell) return "leaving";
  if (t.placement[env] !== cell) return undefined;
  return from !== undefined ? "arriving" : "resident";
}

/**
 * Whether the cell declares the tenant's identity (IAM role and policy, secrets, connection
 * document, own key, DNS name): always as its home, before the switch as the cell being left,
 * from the switch on as the cell moved to. Exactly one of the two cells of a move declares it.
 */
export function cellDeclaresIdentity(t: Tenant & { deployment: "pooled" }, part: CellPart): boolean {
  if (part === "resident" || !t.move) return true;
  return part === "leaving" ? sourceServes(t.move.phase) : !sourceServes(t.move.phase);
}

/** The cell each env of a moving tenant leaves (empty when it does not move). */
export function moveSources(t: Tenant): Record<string, string> {
  const out: Record<string, string> = {};
  if (t.deployment !== "pooled" || !t.move) return out;
  for (const [env, cell] of Object.entries(t.move.from)) if (cell) out[env] = cell;
  return out;
}

/** The URN of the tenant's DNS record in a cell stack (a direct child of PooledTenant). */
function dnsUrn(stack: string, tenantId: string): string {
  return `urn:pulumi:${stack}::${PROJECT}::${POOLED_TENANT_TYPE}$aws:route53/record:Record::${tenantComponentName(tenantId)}-dns`;
}

/**
 * What the switch of a move hands over from the source cell stack to the destination cell stack,
 * before it commits phase cutover (URNs in the source stack; the move renames only the stack):
 * the identity components (infra/model/handover.ts), the own key of a tenant that has one in its
 * cell, and the DNS record (Route 53 refuses a second record of the same name and type).
 */
export function moveHandoverUrns(t: Tenant, env: string, fromCell: string): string[] {
  const stack = cellStackName(env, fromCell);
  const ownKey = hasOwnKmsKey(t.tier, "pooled");
  const components = HANDOVER_COMPONENTS.filter((c) => ownKey || !("ownKeyOnly" in c)).map(
    (c) => `urn:pulumi:${stack}::${PROJECT}::${POOLED_TENANT_TYPE}$${c.type}::${tenantComponentName(t.id)}${c.suffix}`,
  );
  return [...components, dnsUrn(stack, t.id)];
}
