import { requireFleet, tenantsOfStack, type Fleet } from "../../infra/model/fleet.ts";
import { renderStack, type RenderOptions } from "../../plan/render/render.ts";
import { allocate, costOfStack, formatUsd, type Allocation, type StackCost } from "../../plan/cost/cost.ts";
import { ASSUMPTION_NOTES, PRICES_AS_OF } from "../../plan/cost/prices.ts";
import { EXIT, UsageError, type Io } from "../io.ts";
import { fleetDirs, type DirOptions } from "../options.ts";
import { table } from "../table.ts";

export interface CostCommandOptions extends DirOptions {
  stack?: string[];
  all?: boolean;
  json?: boolean;
}

export interface CostReport {
  pricesAsOf: string;
  assumptions: readonly string[];
  stacks: StackCost[];
  allocation: Allocation;
  monthlyUsd: number;
}

/** Renders the stacks one at a time (the mock runtime is process-wide) and prices them. */
export async function costReport(fleet: Fleet, names: readonly string[], render: RenderOptions = {}): Promise<CostReport> {
  const stacks: StackCost[] = [];
  for (const name of names) {
    const rendered = await renderStack(fleet, name, { fastPromises: true, ...render });
    stacks.push(costOfStack(rendered, fleet.stacks.get(name)!.region));
  }
  return {
    pricesAsOf: PRICES_AS_OF,
    assumptions: ASSUMPTION_NOTES,
    stacks,
    allocation: allocate(fleet, stacks),
    monthlyUsd: Math.round(stacks.reduce((s, c) => s + c.monthlyUsd, 0) * 10_000) / 10_000,
  };
}

export function selectStacks(fleet: Fleet, opts: { stack?: string[]; all?: boolean }): string[] {
  if (opts.all && opts.stack?.length) throw new UsageError("use either --stack NAME ... or --all, not both");
  const names = opts.stack?.length ? [...new Set(opts.stack)] : [...fleet.stacks.keys()];
  for (const n of names) {
    if (!fleet.stacks.has(n)) {
      throw new UsageError(`unknown stack ${n}: no stacks/Pulumi.${n}.yaml; known stacks: ${[...fleet.stacks.keys()].join(", ")}`);
    }
  }
  return names;
}

/**
 * `tenantctl cost [--stack NAME ...|--all] [--json]`: monthly cost per stack and per tenant from
 * the rendered resources and the dated price table (plan/cost/prices.ts). Without --stack, every stack.
 */
export async function costCommand(opts: CostCommandOptions, io: Io, render: RenderOptions = {}): Promise<number> {
  const fleet = requireFleet(fleetDirs(opts));
  const names = selectStacks(fleet, opts);
  const report = await costReport(fleet, names, render);
  for (const s of report.stacks) {
    for (const u of s.unpriced) io.err(`tenantctl: warning: ${s.stack}: ${u.type} ${u.name} is not counted: ${u.reason}`);
  }
  if (opts.json) {
    io.out(JSON.stringify(report, null, 2));
    return EXIT.ok;
  }
  const flag = (s: StackCost) => (s.unpriced.length ? " (incomplete)" : s.lines.some((l) => l.unverified) ? " *" : "");
  io.out(
    table(
      ["STACK", "KIND", "REGION", "TENANTS", "MONTHLY"],
      [
        ...report.stacks.map((s) => [s.stack, s.kind, s.region, String(tenantsOfStack(fleet, s.stack).length), `${formatUsd(s.monthlyUsd)}${flag(s)}`]),
        ["TOTAL", "", "", "", formatUsd(report.monthlyUsd)],
      ],
    ),
  );
  io.out("");
  io.out(
    table(
      ["TENANT", "STACKS", "OWN", "CELL SHARE", "MONTHLY"],
      report.allocation.tenants.map((t) => [
        t.tenant,
        t.stacks.map((s) => (s.residents > 1 ? `${s.stack} (1/${s.residents})` : s.stack)).join(", "),
        formatUsd(t.stacks.reduce((a, s) => a + s.ownUsd, 0)),
        formatUsd(t.stacks.reduce((a, s) => a + s.shareUsd, 0)),
        formatUsd(t.monthlyUsd),
      ]),
    ),
  );
  for (const u of report.allocation.unallocated) io.out(`unallocated: ${u.stack}: ${formatUsd(u.usd)} (${u.reason})`);
  io.out("");
  io.out(`Prices of ${report.pricesAsOf} (plan/cost/prices.ts); * includes figures marked unverified there.`);
  for (const a of report.assumptions) io.out(`- ${a}`);
  return EXIT.ok;
}
