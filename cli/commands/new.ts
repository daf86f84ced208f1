import { existsSync, linkSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { stringify } from "yaml";
import { loadFleet, requireFleet, TENANT_SCHEMA_FILE } from "../../infra/model/fleet.ts";
import { dedicatedStackName } from "../../infra/model/naming.ts";
import { allocateDedicatedCidrs, chooseCell, PlacementError } from "../../infra/model/placement.ts";
import { formatProblem } from "../../infra/model/problems.ts";
import { TenantIdSchema } from "../../infra/model/schema.ts";
import { parseTenantFile } from "../../infra/model/tenantFile.ts";
import { allowedDeployments, defaultDeployment, TIERS, type Deployment, type Tier } from "../../infra/model/tiers.ts";
import { withDedicatedTenant } from "../codeowners.ts";
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

export const SCHEMA_COMMENT = `# yaml-language-server: $schema=./${TENANT_SCHEMA_FILE}`;

/**
 * Writes via a temporary file and a hard link, so a crash never leaves half a file and the file
 * is only created if absent: two concurrent `new` runs for one id cannot overwrite each other.
 */
function writeAtomic(path: string, text: string): void {
  const tmp = `${path}.tmp-${process.pid}`;
  writeFileSync(tmp, text, { flag: "wx" });
  try {
    linkSync(tmp, path);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "EEXIST") throw new UsageError(`${shownPath(path)} already exists; choose another id`);
    throw err;
  } finally {
    rmSync(tmp, { force: true });
  }
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
  const stackFiles: [string, string][] = [];
  try {
    if (deployment === "pooled") {
      doc.placement = Object.fromEntries(envs.map((e) => [e, chooseCell(fleet, e, region).id]));
    } else {
      const cidrs = allocateDedicatedCidrs(fleet, envs.length);
      doc.dedicated = Object.fromEntries(envs.map((e, i) => [e, { cidr: cidrs[i] }]));
      for (const e of envs) {
        const name = dedicatedStackName(id, e);
        stackFiles.push([
          join(fleet.dirs.stacksDir, `Pulumi.${name}.yaml`),
          `# Dedicated stack of tenant ${id} (${e}). Network and sizing are in tenants/${id}.yaml.\n${stringify({ config: { "aws:region": region } })}`,
        ]);
      }
    }
  } catch (err) {
    if (err instanceof PlacementError) {
      throw new ProblemsError([`${shownPath(file)}: ${deployment === "pooled" ? "placement" : "dedicated"}: ${err.message}`]);
    }
    throw err;
  }
  const text = `${SCHEMA_COMMENT}\n${stringify(doc)}`;

  // The file must validate on its own before anything is written...
  const alone = parseTenantFile(file, text, { regions: platform.regions, environments: platform.environments }, id);
  if (Array.isArray(alone)) throw new ProblemsError(alone.map(formatProblem));
  for (const [path] of stackFiles) {
    if (existsSync(path)) throw new UsageError(`${shownPath(path)} already exists; remove it or choose another id`);
  }
  if (opts.dryRun) {
    io.out(text.trimEnd());
    for (const [path, body] of stackFiles) io.out(`--- ${shownPath(path)}\n${body.trimEnd()}`);
    return EXIT.ok;
  }
  const written: string[] = [];
  const codeowners = join(fleet.dirs.projectDir, ".github", "CODEOWNERS");
  let ownersBefore: string | undefined;
  try {
    writeAtomic(file, text);
    written.push(file);
    for (const [path, body] of stackFiles) {
      writeAtomic(path, body);
      written.push(path);
    }
    // ...and the fleet must still validate with it; otherwise nothing stays written.
    const { problems } = loadFleet(dirs);
    if (problems.length > 0) throw new ProblemsError(problems.map(formatProblem));
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
