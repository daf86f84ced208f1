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
 * a workflow that copies the data and hands the resources over: the control plane's move workflow
 * (`tenantctl move`, docs/lifecycle.md "Cell moves"). Its commits are the only placement changes
 * accepted, recognised by what they carry: the commit that starts a move writes the new cell into
 * `placement` together with a `move` block in phase `provisioning` naming the cell left in
 * `move.from` and the workflow's id; a commit that ends a move before its switch (a rollback)
 * puts back the cell the base's `move.from` names. Any other placement change is refused. A
 * move block written by hand passes this check but moves nothing: no workflow of that id exists,
 * the destination cell only creates an empty schema without LOGIN, and the tenant keeps being
 * served, with its data, by the cell it names in `move.from` (infra/model/cellMove.ts).
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
      // The move workflow's first commit, or the rollback of a move that had not switched.
      const starts = after.move?.from[env] === was && after.move.phase === "provisioning" && before.move?.from[env] === undefined;
      const rolledBack = before.move?.from[env] === cell && before.move.phase !== "cutover" && before.move.phase !== "cleanup" && after.move?.from[env] === undefined;
      if (starts || rolledBack) continue;
      problems.push({
        file: loaded.file,
        ...(loaded.yaml.lineOf(["placement", env]) !== undefined ? { line: loaded.yaml.lineOf(["placement", env])! } : {}),
        path: `placement.${env}`,
        message:
          `changed from ${was} (at ${baseRef}) to ${cell}: a pooled tenant changes cells only through a move, a data migration ` +
          `(edited by hand, cell ${was} would delete the tenant's IAM role, secrets and key alias while ${cell} tries to create the same names, and the data would stay behind); ` +
          `put ${was} back and move the tenant with \`tenantctl move ${id} --env ${env} --to ${cell}\` (the control plane's move workflow copies the data and commits the change)`,
      });
    }
  }
  return problems;
}
