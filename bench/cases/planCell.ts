/** Bench case: plan one stack (render under the mock runtime + the policy pack) in a fresh process. */
import { performance } from "node:perf_hooks";
import { requireFleet } from "../../infra/model/fleet.ts";
import { renderStack } from "../../plan/render/render.ts";
import { fleetAnalyzer } from "../../plan/planStacks.ts";
import { reply } from "../lib/child.ts";

const [dir, stack, fast] = process.argv.slice(2) as [string, string, string];
const t0 = performance.now();
const fleet = requireFleet({ projectDir: dir });
const t1 = performance.now();
const rendered = await renderStack(fleet, stack, { fastPromises: fast === "fast" });
const t2 = performance.now();
const violations = await fleetAnalyzer(fleet)(rendered);
const t3 = performance.now();
reply({
  loadMs: t1 - t0,
  renderMs: t2 - t1,
  analyzeMs: t3 - t2,
  totalMs: t3 - t0,
  resources: rendered.resources.length,
  violations: violations.length,
});
