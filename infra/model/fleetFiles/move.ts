/**
 * The tenant file edits of a cell move (docs/lifecycle.md, "Cell moves"; infra/model/cellMove.ts):
 * the checks that decide whether a pooled tenant may move to a cell, and the text of the commits
 * that start and end a move. Pure; the move workflow and `tenantctl move` call them.
 */
import { cellResidents, type Fleet } from "../fleet.ts";
import { cellStackName } from "../naming.ts";
import type { Tenant } from "../schema.ts";
import { EditRefusedError } from "./edits.ts";
import { tenantPath, type FileSet } from "./paths.ts";
import { editTenantText, isoSeconds } from "./text.ts";

/**
 * Why `t` cannot move to cell `to` in `env` now, or undefined. Refused: a tenant that is not
 * pooled, not active, already moving; an env it does not have; the cell it is in; a cell that
 * does not exist, is in another env or region, is opening (never deployed), draining, or full.
 */
export function moveRefusal(fleet: Pick<Fleet, "cells" | "tenants">, t: Tenant, env: string, to: string): string | undefined {
  if (t.deployment !== "pooled") return `tenant ${t.id} is dedicated${t.migration ? ` (upgrade in phase ${t.migration.phase})` : ""}; only a pooled tenant moves between cells`;
  if (t.lifecycle !== "active") return `tenant ${t.id} is ${t.lifecycle}; resume it before moving it`;
  if (t.move) return `tenant ${t.id} is already moving (from ${JSON.stringify(t.move.from)}, phase ${t.move.phase}, workflow ${t.move.workflowId})`;
  const from = t.placement[env];
  if (!from) return `tenant ${t.id} has no environment ${env} (its environments: ${Object.keys(t.placement).sort().join(", ")})`;
  if (from === to) return `tenant ${t.id} is already in cell ${to} in ${env}`;
  const stack = cellStackName(env, to);
  const cell = fleet.cells.get(stack);
  if (!cell) {
    const other = [...fleet.cells.values()].find((c) => c.id === to);
    const inEnv = [...fleet.cells.values()].filter((c) => c.env === env && c.region === t.region && c.id !== from).map((c) => c.id).sort();
    return other
      ? `cell ${to} is a cell of ${other.env}, not of ${env}; a move stays in its environment (cells of ${env} in ${t.region}: ${inEnv.join(", ") || "none"})`
      : `cell ${to} has no stack file stacks/Pulumi.${stack}.yaml (cells of ${env} in ${t.region}: ${inEnv.join(", ") || "none"})`;
  }
  if (cell.region !== t.region) return `cell ${to} is in ${cell.region} but tenant ${t.id} lives in ${t.region}; data never leaves its region`;
  if (cell.config.opening === true) return `cell ${to} is opening (opening: true in ${cell.file}): its stack has not had its first successful pulumi up`;
  if (cell.config.draining === true) return `cell ${to} is draining (draining: true in ${cell.file}): it takes no tenant`;
  const residents = cellResidents(fleet, cell).length;
  if (residents >= cell.capacity) return `cell ${to} is full: ${residents} tenants for a capacity of ${cell.capacity} (tenants leaving it count until their cleanup)`;
  return undefined;
}

/**
 * The move's first commit: `placement.<env>` names the destination and a `move` block records the
 * cell left, the workflow, the start, and `environments.<env>.movedAt` (from then on the stacks take
 * the database password from the connection document, so the role the destination creates has
 * the one the applications use). Refused (EditRefusedError) when moveRefusal says so.
 */
export function moveStartEdit(fleet: Pick<Fleet, "cells" | "tenants">, text: string, t: Tenant, env: string, to: string, workflowId: string, now: Date): FileSet {
  const refusal = moveRefusal(fleet, t, env, to);
  if (refusal) throw new EditRefusedError(refusal);
  const from = (t as Extract<Tenant, { deployment: "pooled" }>).placement[env]!;
  const at = isoSeconds(now);
  return {
    [tenantPath(t.id)]: editTenantText(text, [
      [["placement", env], to],
      [["move"], { phase: "provisioning", from: { [env]: from }, workflowId, startedAt: at }],
      [["environments", env, "movedAt"], at],
    ]),
  };
}
