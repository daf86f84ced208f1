/**
 * `tenantctl db migrate|status|rollback|show|resume|abort`: the tenant schemas' application
 * migrations through the control plane (docs/schema-migrations.md). `migrate` rolls the
 * migrations out ring by ring (`--dry-run` shows what each schema would get, `--follow` waits
 * and exits 0 only when every schema succeeded); `rollback` takes one tenant back with its down
 * files; `status` lists every schema's version, the outdated and the failed ones.
 */
import { controlPlaneClient, type ControlPlaneClient } from "../controlPlane/client.ts";
import { EXIT, UsageError, type Io } from "../io.ts";
import { table } from "../table.ts";

interface SchemaView { stack: string; tenant: string; state: string; fromVersion: number | null; toVersion: number | null; error: string | null; attempts: number }
interface MigrationView {
  migration: { id: string; action: string; targetVersion: number; state: string; wave: number; haltReason: string | null };
  waves: { index: number; ring: string; counts: Record<string, number>; schemas: SchemaView[] }[];
}
interface DryRun { dryRun: { action: string; to: number; schemas: { stack: string; tenant: string; wave: number; current: number | null; versions: number[]; error?: string }[] } }
interface Status { templateVersion: number; head: number; schemas: { stack: string; tenant: string; version: number | null; outdated: boolean; lastError: string | null; error?: string }[] }

export interface DbOptions {
  to?: string;
  tenant?: string;
  dryRun?: boolean;
  follow?: boolean;
  json?: boolean;
  /** rollback-wave: the wave, 1-based as printed. @default the migration's current wave */
  wave?: string;
  /** Milliseconds between polls with --follow. @default 5000 */
  pollMs?: number;
}

const ENDED = new Set(["succeeded", "aborted", "halted"]);

function version(v: string | undefined, flag: string): number | undefined {
  if (v === undefined) return undefined;
  if (!/^\d+$/.test(v)) throw new UsageError(`${flag} "${v}" is not a migration version (a number, e.g. 3)`);
  return Number(v);
}

function printMigration(v: MigrationView, io: Io): void {
  const m = v.migration;
  io.out(`schema migration ${m.id} (${m.action} to ${m.targetVersion}): ${m.state}${m.state === "running" ? `, wave ${m.wave + 1} of ${v.waves.length}` : ""}`);
  if (m.haltReason) io.out(`halted: ${m.haltReason}`);
  const states = ["succeeded", "running", "failed", "pending", "skipped"];
  io.out(table(["wave", "ring", "schemas", ...states], v.waves.map((w) => [String(w.index + 1), w.ring, String(w.schemas.length), ...states.map((s) => String(w.counts[s] ?? 0))])));
  for (const s of v.waves.flatMap((w) => w.schemas).filter((s) => s.state === "failed" || s.state === "skipped")) io.out(`${s.state}: ${s.tenant} (${s.stack}): ${s.error ?? s.state}`);
}

async function follow(client: ControlPlaneClient, id: string, io: Io, pollMs: number): Promise<MigrationView> {
  let last = "";
  for (;;) {
    const v = await client.request<MigrationView>("GET", `/api/db-migrations/${id}`);
    const line = `${v.migration.state} wave ${v.migration.wave + 1}: ${v.waves.map((w) => `${w.ring} ${w.counts.succeeded ?? 0}/${w.schemas.length}`).join(", ")}`;
    if (line !== last) io.err(line);
    last = line;
    if (ENDED.has(v.migration.state)) return v;
    await new Promise((r) => setTimeout(r, pollMs));
  }
}

export async function dbCommand(action: string, arg: string | undefined, opts: DbOptions, io: Io, env: NodeJS.ProcessEnv = process.env): Promise<number> {
  const client = controlPlaneClient(env);
  if (action === "migrate" || action === "rollback") {
    const to = version(opts.to, "--to");
    const tenant = action === "rollback" ? arg : opts.tenant;
    if (action === "rollback" && (!tenant || to === undefined)) throw new UsageError("db rollback needs the tenant and --to VERSION (e.g. tenantctl db rollback acme --to 2)");
    const body = { action, ...(to !== undefined ? { to } : {}), ...(tenant ? { tenant } : {}), ...(opts.dryRun ? { dryRun: true } : {}) };
    if (opts.dryRun) {
      const { dryRun } = await client.request<DryRun>("POST", "/api/db-migrations", body);
      if (opts.json) {
        io.out(JSON.stringify(dryRun, null, 2));
        return EXIT.ok;
      }
      io.out(`dry run: ${dryRun.action} to ${dryRun.to}; nothing was changed`);
      io.out(table(["wave", "stack", "tenant", "now", "would apply"], dryRun.schemas.map((s) => [String(s.wave + 1), s.stack, s.tenant, s.current === null ? "?" : String(s.current), s.error ?? (s.versions.join(", ") || "-")])));
      return dryRun.schemas.some((s) => s.error) ? EXIT.problems : EXIT.ok;
    }
    const v = await client.request<MigrationView>("POST", "/api/db-migrations", body);
    printMigration(v, io);
    if (!opts.follow) return EXIT.ok;
    const end = await follow(client, v.migration.id, io, opts.pollMs ?? 5000);
    printMigration(end, io);
    return end.migration.state === "succeeded" && end.waves.every((w) => (w.counts.failed ?? 0) === 0) ? EXIT.ok : EXIT.problems;
  }
  if (action === "status") {
    const s = await client.request<Status>("GET", `/api/db-schemas${opts.tenant ? `?tenant=${encodeURIComponent(opts.tenant)}` : ""}`);
    if (opts.json) {
      io.out(JSON.stringify(s, null, 2));
      return EXIT.ok;
    }
    io.out(`template version ${s.templateVersion}, head ${s.head}`);
    io.out(table(["stack", "tenant", "version", "state"], s.schemas.map((r) => [r.stack, r.tenant, r.version === null ? "?" : String(r.version), r.error ?? (r.lastError ? `failed: ${r.lastError}` : r.outdated ? "outdated" : "current")])));
    const outdated = s.schemas.filter((r) => r.outdated).length;
    const failed = s.schemas.filter((r) => r.lastError || r.error).length;
    io.out(`${s.schemas.length} schemas: ${outdated} outdated, ${failed} failed or unreadable`);
    return failed > 0 ? EXIT.problems : EXIT.ok;
  }
  if (action === "rollback-wave") {
    if (!arg) throw new UsageError("db rollback-wave needs the schema migration's id (printed by db migrate)");
    const wave = version(opts.wave, "--wave");
    if (wave === 0) throw new UsageError("--wave counts from 1 (the first wave), as db show prints them");
    const v = await client.request<MigrationView>("POST", `/api/db-migrations/${arg}/rollback-wave`, wave !== undefined ? { wave: wave - 1 } : {});
    printMigration(v, io);
    if (!opts.follow) return EXIT.ok;
    const end = await follow(client, v.migration.id, io, opts.pollMs ?? 5000);
    printMigration(end, io);
    return end.migration.state === "succeeded" ? EXIT.ok : EXIT.problems;
  }
  if (action === "show" || action === "resume" || action === "abort") {
    if (!arg) throw new UsageError(`db ${action} needs the schema migration's id (printed by db migrate)`);
    printMigration(await client.request<MigrationView>(action === "show" ? "GET" : "POST", `/api/db-migrations/${arg}${action === "show" ? "" : `/${action}`}`), io);
    return EXIT.ok;
  }
  throw new UsageError(`unknown db action "${action}"; one of migrate, status, rollback, rollback-wave, show, resume, abort`);
}
