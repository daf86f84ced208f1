/** Bench case: resources per second through the real analyzer handlers, over a rendered fleet. */
import { performance } from "node:perf_hooks";
import { requireFleet } from "../../infra/model/fleet.ts";
import { renderStack } from "../../plan/render/render.ts";
import { fleetAnalyzer } from "../../plan/planStacks.ts";
import type { RenderedStack } from "../../plan/types.ts";
import { reply } from "../lib/child.ts";

const [dir, runsArg] = process.argv.slice(2) as [string, string];
const fleet = requireFleet({ projectDir: dir });
const stacks: RenderedStack[] = [];
for (const name of fleet.stacks.keys()) stacks.push(await renderStack(fleet, name, { fastPromises: true }));
const resources = stacks.reduce((n, s) => n + s.resources.length, 0);
const analyze = fleetAnalyzer(fleet);
const samples: number[] = [];
let violations = 0;
for (let i = 0; i < Number(runsArg); i++) {
  const t0 = performance.now();
  violations = 0;
  for (const s of stacks) violations += (await analyze(s)).length;
  samples.push(resources / ((performance.now() - t0) / 1000));
}
reply({ resources, stacks: stacks.length, violations, perSecond: samples });
