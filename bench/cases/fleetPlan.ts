/** Bench case: `plan --all` over a whole synthetic fleet (worker processes over the cores). */
import { performance } from "node:perf_hooks";
import { requireFleet } from "../../infra/model/fleet.ts";
import { planStacks } from "../../plan/planStacks.ts";
import { reply } from "../lib/child.ts";

const [dir] = process.argv.slice(2) as [string];
const t0 = performance.now();
const fleet = requireFleet({ projectDir: dir });
const doc = await planStacks(fleet, [...fleet.stacks.keys()]);
const t1 = performance.now();
reply({
  totalMs: t1 - t0,
  stacks: doc.stacks.length,
  resources: doc.stacks.reduce((n, s) => n + s.resources.length, 0),
  violations: doc.stacks.reduce((n, s) => n + s.violations.length, 0),
});
