/**
 * Bench section `network-reachability` (BENCHMARKS.md, section 7): the reachability analysis
 * (plan/network) over the network of a synthetic fleet, at 1x (10 cells + 100 dedicated stacks,
 * the fleet of `fleet-plan`: its 1,000 pooled tenants live in the cells' schemas and add no
 * network resource), 3x and 10x, over two regions. The fleet's resources come from
 * bench/lib/networkFleet.ts (the program's network resources, mock ids and endpoints).
 */
import { performance } from "node:perf_hooks";
import { declaredPeers, networkFleet, syntheticNetworkSpec } from "../lib/networkFleet.ts";
import { fmtSummary, round, target, type Section } from "../lib/report.ts";
import { summarize } from "../lib/stats.ts";
import { checkNetwork, formatFinding } from "../../plan/network/check.ts";

export async function networkReachability(runs: number, log: (s: string) => void): Promise<Section> {
  const data: Record<string, unknown> = {};
  const rows: string[][] = [];
  const medians = new Map<number, number>();
  for (const k of [1, 3, 10]) {
    const spec = syntheticNetworkSpec({ cells: 10 * k, dedicated: 100 * k, customerEvery: 10, egressEvery: 4 });
    const stacks = networkFleet(spec);
    const resources = stacks.reduce((n, s) => n + s.resources.length, 0);
    log(`network reachability: ${stacks.length} stacks, ${resources} resources x ${runs} (+1 cold)`);
    const t0 = performance.now();
    const peers = declaredPeers(spec);
    const first = checkNetwork(stacks, peers);
    const cold = performance.now() - t0;
    if (first.findings.length > 0) throw new Error(`the synthetic fleet must be clean; first finding: ${formatFinding(first.findings[0]!)}`);
    const samples: number[] = [];
    for (let i = 0; i < runs; i++) {
      const t = performance.now();
      checkNetwork(stacks, peers);
      samples.push(performance.now() - t);
    }
    const s = summarize(samples);
    medians.set(k, s.median);
    data[`x${k}`] = { stacks: stacks.length, resources, coldMs: cold, ...s, proven: first.proven.length, traces: first.counts.traces, tenantVpcs: first.counts.tenantVpcs };
    rows.push([
      `network check, ${10 * k} cells + ${100 * k} dedicated`,
      fmtSummary(s, "ms"),
      `${stacks.length} stacks, ${resources} resources; ${first.proven.length} paths proven, ${first.counts.tenantVpcs} tenant VPCs isolated, ${first.counts.traces} traces; cold first run ${round(cold, 0)} ms`,
    ]);
  }
  const ratio = medians.get(10)! / medians.get(1)!;
  data.ratio_10_1 = ratio;
  rows.push(["network check time ratio 10x / 1x", round(ratio, 2).toString(), "same run; 10x the stacks"]);
  return {
    name: "networkReachability",
    data,
    rows,
    targets: [
      target("network check, 10 cells + 100 dedicated (median)", medians.get(1)!, "ms", "<=", 2000),
      target("network check time ratio 10x / 1x fleet (near-linear)", ratio, "x", "<=", 12),
    ],
  };
}
