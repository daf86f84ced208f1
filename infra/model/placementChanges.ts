/**
 * A pooled tenant's `placement` compared with a base revision (docs/cells.md, "Placement is
 * stable"). Pure: both fleets are loaded by the caller (`tenantctl validate --base`, `affected`,
 * `plan --base`).
 *
 * Why a hand edit is refused: the cell a tenant leaves deletes its IAM role, secrets and KMS alias
 * on its next `up`, while the cell it enters creates the same names on its own. Whichever runs
 * first, one fails: the new cell cannot create a role or alias the old one still holds, and a
 * deleted secret's name stays taken for its recovery window (up to 30 days). Its data would not
 * follow either (the schema stays in the old cell's database). A move is a data migration, done by
 * a workflow that copies the data and hands the resources over; the control plane does not offer
 * one yet, so every placement change of an existing env is refused.
 */
import type { Fleet } from "./fleet.ts";
import type { Problem } from "./problems.ts";

/** One problem per env of a pooled tenant whose cell differs between `base` and `head`. */
export function placementChanges(base: Pick<Fleet, "tenants">, head: Pick<Fleet, "tenants">, baseRef: string): Problem[] {
  const problems: Problem[] = [];
  for (const [id, loaded] of head.tenants) {
    const after = loaded.tenant;
    const before = base.tenants.get(id)?.tenant;
    // A new tenant, an env added or removed, an upgrade to dedicated or its rollback: not a move.
    if (!before || before.deployment !== "pooled" || after.deployment !== "pooled") continue;
    for (const [env, cell] of Object.entries(after.placement)) {
      const was = before.placement[env];
      if (was === undefined || cell === undefined || was === cell) continue;
      problems.push({
        file: loaded.file,
        ...(loaded.yaml.lineOf(["placement", env]) !== undefined ? { line: loaded.yaml.lineOf(["placement", env])! } : {}),
        path: `placement.${env}`,
        message:
          `changed from ${was} (at ${baseRef}) to ${cell}: a pooled tenant changes cells only through a move, a data migration ` +
          `(edited by hand, cell ${was} would delete the tenant's IAM role, secrets and key alias while ${cell} tries to create the same names, and the data would stay behind); ` +
          `put ${was} back (the control plane has no move workflow yet)`,
      });
    }
  }
  return problems;
}
