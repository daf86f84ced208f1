/**
 * Ownership hand-over of an upgrading tenant (docs/lifecycle.md, "Who manages what during an upgrade"): which of its resources leave the cell
 * stack for the dedicated stack, when, and under which URNs. Pure; used by both stack programs
 * (what each declares in each migration phase), by the upgrade workflow (what it moves with
 * `pulumi state move`), and by the tests that prove the two agree.
 *
 * The tenant's identity resources have the same physical names in both forms of the tenant:
 * IAM role `tenantRoleName()` and its inline policy, the declared and team secrets, the
 * connection document `databaseSecretName()`, the runtime config parameter
 * `runtimeConfigParameterName()`, and (a tenant with its own key in the cell) the KMS
 * key behind `tenantKmsAlias()`. Two stacks cannot both manage them: the dedicated stack's first
 * `up` would fail on "already exists", and a cell `up` that stops declaring them would delete
 * them (a deleted secret also reserves its name for the recovery window).
 *
 * So the cell keeps managing them, serving the tenant from the cell, until cutover; the dedicated
 * stack does not declare them before (it names the role by ARN). At cutover the workflow moves
 * their state (the components below, with their children) from the cell stack to the dedicated
 * stack *before* committing phase cutover, and from that phase on the dedicated program declares
 * them with an alias to the URN the move gave them, so the engine updates them in place.
 *
 * An own key is different: the dedicated stack encrypts its database, bucket and logs with the
 * tenant's key from its first `up`, and every key a dedicated stack uses must be one it manages
 * (policy kms-tenant-key). So the key moves first, before the provisioning commit; from then on
 * the cell finds it by alias for the secrets it still manages.
 *
 * While a migration is in progress both programs mark the moving resources `retainOnDelete`:
 * whatever order two concurrent updates take, neither can delete them (the worst case is an
 * update that fails on "already exists" and stops). A move always precedes the commit that makes
 * the source program stop declaring what moved.
 */
import { cellStackName, componentType as COMPONENT, dedicatedStackName, PROJECT } from "./naming.ts";
import type { Tenant } from "./schema.ts";
import { hasOwnKmsKey, TIERS, type Tier } from "./tiers.ts";

export const POOLED_TENANT_TYPE = COMPONENT("PooledTenant");
export const DEDICATED_TENANT_TYPE = COMPONENT("DedicatedTenant");

/**
 * The components that change hands, by child-name suffix (both builders name the tenant's
 * component `tenant-<id>` and these children `tenant-<id><suffix>`), in the order they are moved.
 */
export const HANDOVER_COMPONENTS = [
  { suffix: "-role", type: COMPONENT("TenantRole") },
  { suffix: "-key", type: COMPONENT("EncryptionKey"), ownKeyOnly: true },
  { suffix: "-database", type: COMPONENT("ConnectionSecret") },
  { suffix: "-secrets", type: COMPONENT("TenantSecrets") },
  { suffix: "-access", type: COMPONENT("TenantRolePolicy") },
  { suffix: "-config", type: COMPONENT("RuntimeConfig") },
] as const;
export type HandoverSuffix = (typeof HANDOVER_COMPONENTS)[number]["suffix"];

/** Top-level component name of a tenant in either stack kind. */
export function tenantComponentName(tenantId: string): string {
  return `tenant-${tenantId}`;
}

/** `urn:pulumi:<stack>::<project>::<qualified type>::<name>` with another stack (what `pulumi state move` does). */
export function renameStackInUrn(urn: string, stack: string): string {
  const m = /^urn:pulumi:[^:]+::(.*)$/.exec(urn);
  if (!m) throw new Error(`not a Pulumi URN: ${urn}`);
  return `urn:pulumi:${stack}::${m[1]}`;
}

export type MigrationPhase = NonNullable<Extract<Tenant, { deployment: "dedicated" }>["migration"]>["phase"];

/** Phases in which the cell still manages the tenant's identity resources. */
export function cellOwnsIdentity(phase: MigrationPhase): boolean {
  return phase === "provisioning" || phase === "copying";
}

/** Whether the tenant had its own KMS key in the cell (the key moves too). */
export function hadOwnKeyInCell(t: Tenant): boolean {
  if (t.deployment === "pooled") return hasOwnKmsKey(t.tier, "pooled");
  return t.migration !== undefined && hasOwnKmsKey(t.migration.fromTier, "pooled");
}

/** The URN of a hand-over component `tenant-<id><suffix>` under the tenant component of type `parentType`. */
function componentUrn(stack: string, parentType: string, type: string, tenantId: string, suffix: string): string {
  return `urn:pulumi:${stack}::${PROJECT}::${parentType}$${type}::${tenantComponentName(tenantId)}${suffix}`;
}

function cellUrns(t: Tenant, env: string, cell: string, which: (c: (typeof HANDOVER_COMPONENTS)[number]) => boolean): string[] {
  return HANDOVER_COMPONENTS.filter(which).map((c) => componentUrn(cellStackName(env, cell), POOLED_TENANT_TYPE, c.type, t.id, c.suffix));
}

/**
 * What moves before the provisioning commit: the tenant's own key in the cell (URNs in the cell
 * stack), or nothing. Works on the pooled tenant (before the commit) and the migrating one.
 */
export function keyHandoverUrns(t: Tenant, env: string, cell: string): string[] {
  return hadOwnKeyInCell(t) ? cellUrns(t, env, cell, (c) => "ownKeyOnly" in c) : [];
}

/** What moves at cutover, before the phase commit: role, connection document, secrets, access policy, runtime config. */
export function identityHandoverUrns(t: Tenant, env: string, cell: string): string[] {
  return cellUrns(t, env, cell, (c) => !("ownKeyOnly" in c));
}

/** Everything the cell hands over for a tenant in one env, key first. */
export function handoverUrns(t: Tenant, env: string, cell: string): string[] {
  return [...keyHandoverUrns(t, env, cell), ...identityHandoverUrns(t, env, cell)];
}

/**
 * Where a rollback finds an own key that moved to the dedicated stack (URNs there): as moved, or
 * as claimed by the dedicated program once it was updated. Nothing for a tenant without one.
 */
export function handbackKeyUrns(tenantId: string, previousTier: string, env: string): string[] {
  if (!(TIERS as readonly string[]).includes(previousTier) || !hasOwnKmsKey(previousTier as Tier, "pooled")) return [];
  const stack = dedicatedStackName(tenantId, env);
  return [POOLED_TENANT_TYPE, DEDICATED_TENANT_TYPE].map((parent) => componentUrn(stack, parent, COMPONENT("EncryptionKey"), tenantId, "-key"));
}

/**
 * The alias the cell's key component declares so a key handed back by a rollback after the
 * dedicated program claimed it (its URN then names DedicatedTenant) is the cell's again.
 */
export function handbackKeyAlias(tenantId: string, cellStack: string): string {
  return componentUrn(cellStack, DEDICATED_TENANT_TYPE, COMPONENT("EncryptionKey"), tenantId, "-key");
}

/**
 * The alias a dedicated-stack component declares for the state the cell handed over: the cell
 * URN with the dedicated stack's name (the move keeps the qualified type; the engine then derives
 * the children's aliases from it, their names sharing the component's prefix in both stacks).
 * Undefined when nothing was handed over for this component (not migrating, or no key in the cell).
 */
export function handoverAlias(t: Tenant, env: string, dedicatedStack: string, suffix: HandoverSuffix): string | undefined {
  if (t.deployment !== "dedicated" || !t.migration) return undefined;
  const cell = t.migration.from[env];
  if (!cell) return undefined;
  const urn = handoverUrns(t, env, cell).find((u) => u.endsWith(`::${tenantComponentName(t.id)}${suffix}`));
  return urn === undefined ? undefined : renameStackInUrn(urn, dedicatedStack);
}
