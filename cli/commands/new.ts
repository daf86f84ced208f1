/**
 * `tenantctl new`: the command's checks and output; what the files say, where they go, the
 * CODEOWNERS line, the atomic writes and the validation come from infra/model/fleetFiles.
 */
import { existsSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { requireFleet } from "../../infra/model/fleet.ts";
import {
  CODEOWNERS_PATH, createAtomic, DocumentError, FileExistsError, fleetPath, planNewTenant, stackPath, tenantPath, validateWithChanges, withDedicatedTenant,
  type FileSet,
} from "../../infra/model/fleetFiles/index.ts";
import { cellsToOpen, type NewCell } from "../../infra/model/cells.ts";
import type { FleetDirs } from "../../infra/model/fleet.ts";
import { formatProblem } from "../../infra/model/problems.ts";
import { TenantIdSchema } from "../../infra/model/schema.ts";
import { parseTenantFile } from "../../infra/model/tenantFile.ts";
import { allowedDeployments, defaultDeployment, TIERS, type Deployment, type Tier } from "../../infra/model/tiers.ts";
import { EXIT, ProblemsError, UsageError, type Io } from "../io.ts";
import { fleetDirs, shownPath, type DirOptions } from "../options.ts";

export interface NewOptions extends DirOptions {
  tier: string;
  region?: string;
  env?: string[];
  name?: string;
  deployment?: string;
  dryRun?: boolean;
}

export function newCommand(id: string, opts: NewOptions, io: Io): number {
  // The id becomes a file name and part of every resource name: check it before anything else.
  const idCheck = TenantIdSchema.safeParse(id);
  if (!idCheck.success) throw new UsageError(`tenant id ${idCheck.error.issues.map((i) => i.message).join("; ")}`);
  const dirs = fleetDirs(opts);
  const fleet = requireFleet(dirs);
  const { platform } = fleet;
  if (!(TIERS as readonly string[]).includes(opts.tier)) {
    throw new UsageError(`--tier ${opts.tier}: allowed values are ${TIERS.join(", ")}`);
  }
  const tier = opts.tier as Tier;
  const deployment = (opts.deployment ?? defaultDeployment(tier)) as Deployment;
  if (!allowedDeployments(tier).includes(deployment)) {
    throw new UsageError(`--deployment ${opts.deployment}: tier ${tier} allows ${allowedDeployments(tier).join(" or ")}`);
  }
  const region = opts.region ?? platform.regions[0]!;
  if (!platform.regions.includes(region)) throw new UsageError(`--region ${region}: allowed regions are ${platform.regions.join(", ")}`);
  const envs = opts.env && opts.env.length > 0 ? [...new Set(opts.env)] : ["prod"];
  for (const e of envs) {
    if (!platform.environments.includes(e)) throw new UsageError(`--env ${e}: declared environments are ${platform.environments.join(", ")}`);
  }
  const tenantsDir = fleet.dirs.tenantsDir;
  const file = join(tenantsDir, `${id}.yaml`);
  if (fleet.tenants.has(id) || existsSync(file) || existsSync(join(tenantsDir, `${id}.yml`))) {
    throw new UsageError(`tenant ${id} already exists (${shownPath(file)}); choose another id or edit the file`);
  }

  const doc: Record<string, unknown> = {
    id,
    displayName: opts.name ?? id,
    tier,
    ...(deployment !== defaultDeployment(tier) ? { deployment } : {}),
    region,
    environments: Object.fromEntries(envs.map((e) => [e, {}])),
  };
  // A region about to fall below its reserve gets a new cell first (docs/cells.md). Its stack file
  // is written beside the tenant's, to be committed on its own; the tenant is never placed in it
  // (it is opening until its first `pulumi up` succeeded).
  const opened = cellsToOpen(fleet, doc);
  const cellFiles: FileSet = Object.fromEntries(opened.map((c) => [stackPath(c.stack), c.text]));
  let placingFleet = fleet;
  if (opened.length > 0) {
    const withCells = validateWithChanges(dirs, [cellFiles], { show: "cwd" });
    if (!withCells.fleet) throw new ProblemsError(withCells.problems);
    placingFleet = withCells.fleet;
  }
  let planned;
  try {
    planned = planNewTenant(placingFleet, doc);
  } catch (err) {
    if (err instanceof DocumentError && err.waitingFor.length > 0) return openOnly(opened, cellFiles, placingFleet.dirs, file, err, opts, io);
    if (err instanceof DocumentError) throw new ProblemsError([`${shownPath(file)}: ${err.path}: ${err.message}`]);
    throw err;
  }
  // The tenant file first, then its stack files (the order they are written and reported in).
  const rel = [tenantPath(id), ...Object.keys(planned.files).filter((p) => p !== tenantPath(id))];
  const files: [string, string][] = rel.map((p) => [fleetPath(fleet.dirs, p), planned.files[p]!]);
  const text = files[0]![1];
  const stackFiles = files.slice(1);

  // The file must validate on its own before anything is written...
  const alone = parseTenantFile(file, text, { regions: platform.regions, environments: platform.environments }, id);
  if (Array.isArray(alone)) throw new ProblemsError(alone.map(formatProblem));
  for (const [path] of stackFiles) {
    if (existsSync(path)) throw new UsageError(`${shownPath(path)} already exists; remove it or choose another id`);
  }
  if (opts.dryRun) {
    io.out(text.trimEnd());
    for (const [path, body] of stackFiles) io.out(`--- ${shownPath(path)}\n${body.trimEnd()}`);
    for (const c of opened) io.out(`--- ${shownPath(fleetPath(fleet.dirs, stackPath(c.stack)))} (new cell)\n${c.text.trimEnd()}`);
    return EXIT.ok;
  }
  // ...and the fleet must validate with it, before anything is written.
  const { problems } = validateWithChanges(dirs, [cellFiles, planned.files], { show: "cwd" });
  if (problems.length > 0) throw new ProblemsError(problems);
  writeCells(opened, fleet.dirs, io);
  const written: string[] = [];
  const codeowners = join(fleet.dirs.projectDir, CODEOWNERS_PATH);
  let ownersBefore: string | undefined;
  try {
    for (const [path, body] of files) {
      try {
        createAtomic(path, body);
      } catch (err) {
        if (err instanceof FileExistsError) throw new UsageError(`${shownPath(path)} already exists; choose another id`);
        throw err;
      }
      written.push(path);
    }
    // A dedicated tenant needs the platform team's review from its first pull request on.
    if (deployment === "dedicated" && existsSync(codeowners)) {
      const before = readFileSync(codeowners, "utf8");
      const after = withDedicatedTenant(before, id);
      if (after !== undefined) {
        writeFileSync(codeowners, after);
        ownersBefore = before;
        io.out(`listed tenants/${id}.yaml in ${shownPath(codeowners)} (platform team review)`);
      }
    }
  } catch (err) {
    for (const path of written) rmSync(path, { force: true });
    if (ownersBefore !== undefined) writeFileSync(codeowners, ownersBefore);
    throw err;
  }
  for (const path of written) io.out(`wrote ${shownPath(path)}`);
  return EXIT.ok;
}

/** Writes the opened cells' stack files (created, never overwritten) and says what to do with them. */
function writeCells(opened: readonly NewCell[], dirs: FleetDirs, io: Io): void {
  for (const c of opened) {
    const path = fleetPath(dirs, stackPath(c.stack));
    try {
      createAtomic(path, c.text);
    } catch (err) {
      if (err instanceof FileExistsError) throw new UsageError(`${shownPath(path)} already exists; validate the fleet (tenantctl validate) and retry`);
      throw err;
    }
    io.out(
      `opened cell ${c.id} (${c.env}/${c.region}, ${c.config.cidr}, ${c.config.azs.join(", ")}): wrote ${shownPath(path)} with opening: true; ` +
        `commit it on its own and run its first pulumi up; once that succeeded remove opening: true, and tenants are placed there (docs/cells.md)`,
    );
  }
}

/**
 * No open cell had room: the cells are opened (their files written) but the tenant is not
 * created, since its file may not name a cell that has not been deployed. Exit 1.
 */
function openOnly(opened: readonly NewCell[], cellFiles: FileSet, dirs: FleetDirs, file: string, err: DocumentError, opts: NewOptions, io: Io): number {
  if (opts.dryRun) {
    for (const c of opened) io.out(`--- ${shownPath(fleetPath(dirs, stackPath(c.stack)))} (new cell)\n${c.text.trimEnd()}`);
  } else if (Object.keys(cellFiles).length > 0) writeCells(opened, dirs, io);
  io.err(`${shownPath(file)}: ${err.path}: ${err.message}; nothing written for the tenant: run tenantctl new again then`);
  return EXIT.problems;
}
