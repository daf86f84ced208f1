import { readFileSync } from "node:fs";
import { resolve } from "node:path";
import { requireFleet } from "../../infra/model/fleet.ts";
import { declaredPeersOf } from "../../plan/network/declared.ts";
import { checkNetwork, formatFinding, type NetworkReport } from "../../plan/network/check.ts";
import { importStacks, StateFormatError } from "../../plan/stateImport.ts";
import { EXIT, UsageError, type Io } from "../io.ts";
import { fleetDirs, type DirOptions } from "../options.ts";

export interface NetworkCheckOptions extends DirOptions {
  /** Also print every proven runner-to-database path, hop by hop. */
  verbose?: boolean;
}

/** The one-line summary of a network check (also printed by `plan --all`). */
export function networkSummary(report: NetworkReport): string {
  const c = report.counts;
  return `network: ${report.proven.length} runner -> database paths proven (${c.providers} postgresql providers, ${c.runners} runners), ${c.tenantVpcs} tenant VPCs checked for isolation; ${report.findings.length} finding(s)`;
}

/**
 * `tenantctl network check FILE`: the reachability analysis (plan/network, docs/network.md) over
 * a plan JSON (`plan --all --json`) or a `pulumi stack export` of every stack. Exit 0 when every
 * property holds, 1 with one line per finding, 2 on usage errors.
 */
export function networkCheckCommand(file: string, opts: NetworkCheckOptions, io: Io): number {
  const path = resolve(file);
  let json: unknown;
  try {
    json = JSON.parse(readFileSync(path, "utf8"));
  } catch (err) {
    throw new UsageError(`${file}: cannot read JSON: ${(err as Error).message}`);
  }
  // The fleet's files declare what the resources cannot say (customer VPCs' CIDRs).
  const fleet = requireFleet(fleetDirs(opts));
  let stacks;
  try {
    stacks = importStacks(json, fleet.platform.environments);
  } catch (err) {
    if (err instanceof StateFormatError) throw new UsageError(`${file}: ${err.message}`);
    throw err;
  }
  const report = checkNetwork(stacks, declaredPeersOf(fleet));
  if (opts.verbose) {
    for (const p of report.proven) {
      io.out(`${p.stack}: ${p.source} -> ${p.destination}:${p.port}: reachable`);
      for (const h of p.hops) io.out(`  ${h}`);
    }
  }
  for (const f of report.findings) io.out(formatFinding(f));
  io.err(networkSummary(report));
  return report.findings.length > 0 ? EXIT.problems : EXIT.ok;
}
