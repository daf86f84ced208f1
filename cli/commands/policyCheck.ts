import { readFileSync } from "node:fs";
import { resolve } from "node:path";
import { loadPlatform } from "../../infra/model/platform.ts";
import type { PlanDocument } from "../../plan/types.ts";
import { EXIT, UsageError, type Io } from "../io.ts";
import { fleetDirs, type DirOptions } from "../options.ts";
import type { Analyzer } from "../../plan/planStacks.ts";
import { importStacks, StateFormatError } from "../../plan/stateImport.ts";
import { formatViolation, hasMandatory, summaryTable } from "../plan/summary.ts";

/** `tenantctl policy check FILE`: the pack over a plan JSON or a `pulumi stack export`. */
export async function policyCheckCommand(file: string, opts: DirOptions, io: Io, analyzer?: Analyzer): Promise<number> {
  const path = resolve(file);
  let json: unknown;
  try {
    json = JSON.parse(readFileSync(path, "utf8"));
  } catch (err) {
    throw new UsageError(`${file}: cannot read JSON: ${(err as Error).message}`);
  }
  const platform = loadPlatform(fleetDirs(opts).projectDir);
  let stacks;
  try {
    stacks = importStacks(json, platform.environments);
  } catch (err) {
    if (err instanceof StateFormatError) throw new UsageError(`${file}: ${err.message}`);
    throw err;
  }
  const analyze = analyzer ?? (await import("../../plan/analyze.ts")).analyzeStack;
  const doc: PlanDocument = { stacks: [] };
  for (const s of stacks) doc.stacks.push({ ...s, violations: await analyze(s) });
  io.out(summaryTable(doc));
  for (const s of doc.stacks) for (const v of s.violations) io.out(formatViolation(v));
  return hasMandatory(doc) ? EXIT.problems : EXIT.ok;
}
