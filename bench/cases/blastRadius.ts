/**
 * Bench case: what tenant N+1 touches. Cells of bounded capacity versus one stack holding every
 * pooled tenant (same renderer, one unlimited cell). Counts, not times: deterministic.
 */
import { rmSync } from "node:fs";
import { requireFleet } from "../../infra/model/fleet.ts";
import { cellStackName } from "../../infra/model/naming.ts";
import { chooseCell } from "../../infra/model/placement.ts";
import { renderStack } from "../../plan/render/render.ts";
import { diffPlans } from "../../plan/diff.ts";
import { reply } from "../lib/child.ts";
import { writePooled, writeSyntheticFleet } from "../lib/fleetGen.ts";

const [nArg, layout, capacityArg] = process.argv.slice(2) as [string, "cells" | "single", string];
const n = Number(nArg);
const capacity = Number(capacityArg);
const cells = layout === "single" ? 1 : Math.ceil((n + 1) / capacity);
const synthetic = writeSyntheticFleet({ pooled: n, cells, dedicated: 0, capacity: layout === "single" ? n + 1 : capacity });
const before = requireFleet({ projectDir: synthetic.dir });
// Tenant N+1 goes where `tenantctl new` would put it.
const cell = chooseCell(before, "prod", "us-east-1");
const stack = cellStackName("prod", cell.id);
const planBefore = { ...(await renderStack(before, stack, { fastPromises: true })), violations: [] };
writePooled(synthetic.dir, "newcomer", "standard", cell.id);
const after = requireFleet({ projectDir: synthetic.dir });
const planAfter = { ...(await renderStack(after, stack, { fastPromises: true })), violations: [] };
const d = diffPlans(planBefore, planAfter);
// The synthetic fleet is this case's alone: it left one directory in the temp dir per case.
rmSync(synthetic.dir, { recursive: true, force: true });
reply({
  n,
  layout,
  stacks: cells,
  touchedStacks: 1,
  added: d.counts.create,
  changed: d.counts.update + d.counts.replace,
  deleted: d.counts.delete,
  touchedStackResources: planAfter.resources.filter((r) => r.custom).length,
});
