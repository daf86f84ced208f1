/**
 * `tenantctl drift [--stack S | --tenant T] [--check S]`: the control plane's latest drift verdict
 * per stack, with what differs (docs/drift.md), or a check of one stack now. Exit 0 when nothing
 * shown drifted or failed, 1 otherwise (so a script can alert on it).
 */
import { controlPlaneClient } from "../controlPlane/client.ts";
import { EXIT, type Io } from "../io.ts";
import { table } from "../table.ts";

interface DriftRow {
  stack: string;
  state: string;
  previous: string | null;
  checkedAt: string | null;
  tenants: string[];
  error: string | null;
  resources: { urn: string; op: string; diffs: string[] }[];
}

export interface DriftOptions {
  stack?: string;
  tenant?: string;
  check?: string;
  json?: boolean;
}

export async function driftCommand(opts: DriftOptions, io: Io, env: NodeJS.ProcessEnv = process.env): Promise<number> {
  const client = controlPlaneClient(env);
  if (opts.check) {
    await client.request("POST", `/api/drift/${encodeURIComponent(opts.check)}/check`);
    io.out(`drift check of ${opts.check} queued; see it with: tenantctl drift --stack ${opts.check}`);
    return EXIT.ok;
  }
  const q = opts.stack ? `?stack=${encodeURIComponent(opts.stack)}` : opts.tenant ? `?tenant=${encodeURIComponent(opts.tenant)}` : "";
  const { stacks } = await client.request<{ stacks: DriftRow[] }>("GET", `/api/drift${q}`);
  if (opts.json) io.out(JSON.stringify(stacks, null, 2));
  else {
    io.out(table(["STACK", "STATE", "CHECKED", "TENANTS", "DIFFERS"], stacks.map((s) => [
      s.stack,
      s.state === "checking" && s.previous ? `checking (was ${s.previous})` : s.state,
      s.checkedAt ?? "-",
      s.tenants.join(",") || "-",
      s.state === "failed" || (s.state === "checking" && s.previous === "failed") ? `check failed: ${(s.error ?? "").split("\n")[0]}` : s.resources.map((r) => `${r.urn.split("::").at(-1)} (${r.op}: ${r.diffs.join(", ") || "?"})`).join("; ") || "-",
    ])));
  }
  // A stack being checked again still has its last verdict.
  const bad = stacks.some((s) => [s.state, s.state === "checking" ? s.previous : null].some((v) => v === "drifted" || v === "failed"));
  return bad ? EXIT.problems : EXIT.ok;
}
