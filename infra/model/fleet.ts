import { existsSync, readdirSync, readFileSync, statSync } from "node:fs";
import { basename, dirname, join, relative, resolve, sep } from "node:path";
import { formatCidr, contains, overlaps, parseCidr, type Cidr } from "./cidr.ts";
import { loadPlatform, PlatformError, type Platform } from "./platform.ts";
import { fleetLimitProblems } from "./fleetLimits.ts";
import { cellStackName, dedicatedStackName, platformStackName } from "./naming.ts";
import { cellResidents } from "./routes.ts";
import { FleetError, type Problem } from "./problems.ts";
import type { Tenant } from "./schema.ts";
import { parseStackFile, stackNameOfFile, type CellConfig, type StackFile } from "./stackFile.ts";
import { parseTenantFile, type LoadedTenant } from "./tenantFile.ts";
import { parseYamlMap, problemAt, tooLargeProblem, MAX_FILE_BYTES } from "./yamlFile.ts";

export interface FleetDirs {
  /** Directory holding Pulumi.yaml. */
  projectDir: string;
  /** Default `<projectDir>/tenants`. */
  tenantsDir?: string;
  /** Default `<projectDir>/stacks`. */
  stacksDir?: string;
}

export interface Cell {
  id: string;
  env: string;
  stack: string;
  region: string;
  capacity: number;
  config: CellConfig;
  file: string;
}

export interface Fleet {
  platform: Platform;
  dirs: Required<FleetDirs>;
  /** By tenant id, sorted by id. */
  tenants: ReadonlyMap<string, LoadedTenant>;
  /** By stack name, sorted by name. */
  stacks: ReadonlyMap<string, StackFile>;
  /** Cells by stack name. */
  cells: ReadonlyMap<string, Cell>;
}

export const TENANT_SCHEMA_FILE = "tenant.schema.json";

function resolveDirs(dirs: FleetDirs): Required<FleetDirs> {
  return {
    projectDir: dirs.projectDir,
    tenantsDir: dirs.tenantsDir ?? join(dirs.projectDir, "tenants"),
    stacksDir: dirs.stacksDir ?? join(dirs.projectDir, "stacks"),
  };
}

function display(dirs: Required<FleetDirs>, path: string): string {
  const rel = relative(process.cwd(), path);
  return rel.startsWith("..") ? path : rel;
}

function yamlFiles(dir: string, accept: (name: string) => boolean): string[] {
  return readdirSync(dir).filter(accept).sort();
}

/** Reads a tenant or stack file, or says why not. Refuses before reading: a huge file is never loaded. */
function readLimited(path: string, file: string): string | Problem {
  try {
    const st = statSync(path);
    if (!st.isFile()) return { file, path: "", message: "is not a regular file; tenant and stack files are plain YAML files" };
    if (st.size > MAX_FILE_BYTES) return tooLargeProblem(file);
    return readFileSync(path, "utf8");
  } catch (err) {
    return { file, path: "", message: `cannot be read: ${(err as Error).message}` };
  }
}

// In routes.ts (no import of this file there), so the quota check loadFleet runs can use it too.
export { cellResidents };

/** Every stack a tenant has resources in. */
export function stacksOfTenant(tenant: Tenant): string[] {
  const out = new Set<string>();
  for (const env of Object.keys(tenant.environments)) {
    if (tenant.deployment === "pooled") {
      const cell = tenant.placement[env];
      if (cell) out.add(cellStackName(env, cell));
      const from = tenant.move?.from[env];
      if (from) out.add(cellStackName(env, from));
    } else {
      out.add(dedicatedStackName(tenant.id, env));
      const from = tenant.migration?.from[env];
      if (from) out.add(cellStackName(env, from));
    }
  }
  return [...out].sort();
}

/** The tenants a stack renders. */
export function tenantsOfStack(fleet: Fleet, stackName: string): Tenant[] {
  const stack = fleet.stacks.get(stackName);
  if (!stack) return [];
  if (stack.ref.kind === "platform") return [];
  if (stack.ref.kind === "shared") return cellResidents(fleet, { env: stack.ref.env, id: stack.ref.cell });
  const t = fleet.tenants.get(stack.ref.tenant)?.tenant;
  return t ? [t] : [];
}

/** A bad platform object in Pulumi.yaml, as problem lines pointing at its keys. */
function platformProblems(dirs: Required<FleetDirs>, err: PlatformError): Problem[] {
  const path = join(dirs.projectDir, "Pulumi.yaml");
  const file = display(dirs, path);
  const text = existsSync(path) ? readLimited(path, file) : undefined;
  if (typeof text === "string" && err.issues.length > 0) {
    const y = parseYamlMap(file, text);
    if (Array.isArray(y)) return y;
    return err.issues.map((i) => problemAt(y, i.path, `${i.message}; fix the platform settings`));
  }
  return err.message.split("\n").map((m) => ({ file, line: 1, path: "", message: m }));
}

interface LoadResult {
  fleet?: Fleet;
  problems: Problem[];
}

/**
 * Files to load as if they were on disk: resolved absolute path -> content, null for a file deleted. Only
 * files directly in the tenants and stacks directories matter (as on disk). Used to validate a
 * fleet with changes before they are written (infra/model/fleetFiles/overlay.ts).
 */
export interface FleetOverlay {
  files: ReadonlyMap<string, string | null>;
  /** How a tenant or stack file is named in problems (default: relative to the working directory). */
  show?: (absPath: string) => string;
}

/** The YAML file names of `dir`, with the overlay's files of that directory added or removed. */
function listed(dir: string, accept: (name: string) => boolean, overlay: FleetOverlay | undefined): string[] {
  const names = new Set(existsSync(dir) ? yamlFiles(dir, accept) : []);
  for (const [abs, content] of overlay?.files ?? []) {
    if (resolve(dirname(abs)) !== resolve(dir) || !accept(basename(abs))) continue;
    if (content === null) names.delete(basename(abs));
    else names.add(basename(abs));
  }
  return [...names].sort();
}

/** The overlay's content of `path` (absolute: `abs`) if it has one, else the file on disk (readLimited). */
function readOverlaid(path: string, abs: string, file: string, overlay: FleetOverlay | undefined): string | Problem {
  const content = overlay?.files.get(abs);
  if (typeof content !== "string") return readLimited(path, file);
  return Buffer.byteLength(content, "utf8") > MAX_FILE_BYTES ? tooLargeProblem(file) : content;
}

/**
 * Parsed tenant and stack files kept between loads of one fleet, by absolute path, so a second
 * load (`plan --base`: the base revision is the working tree plus the files git says differ)
 * parses only the files it does not take from here. Valid only while the files on disk stay as
 * they were when the entries were added, and for one Pulumi.yaml (regions and environments decide
 * what a file means): a load with a different Pulumi.yaml ignores the entries.
 */
export interface ParsedFiles {
  tenants: Map<string, LoadedTenant>;
  stacks: Map<string, StackFile>;
  /** The regions and environments the entries were parsed against. */
  context?: string;
  /** Files read and parsed by the loads that used this cache, and files taken from it. */
  counts: { parsed: number; reused: number };
}

export function parsedFiles(): ParsedFiles {
  return { tenants: new Map(), stacks: new Map(), counts: { parsed: 0, reused: 0 } };
}

/**
 * Loads and validates every tenant and stack file (with `overlay`, as if its files were written).
 * With `cache`, a file on disk (not in the overlay) that the cache holds is not read again, and
 * the files read from disk are added to it. Never throws for bad input: returns problems.
 */
export function loadFleet(dirsIn: FleetDirs, overlay?: FleetOverlay, cache?: ParsedFiles): LoadResult {
  const dirs = resolveDirs(dirsIn);
  const show = (path: string) => (overlay?.show ? overlay.show(path) : display(dirs, path));
  let platform: Platform;
  try {
    platform = loadPlatform(dirs.projectDir);
  } catch (err) {
    if (err instanceof PlatformError) return { problems: platformProblems(dirs, err) };
    throw err;
  }
  const problems: Problem[] = [];
  const broken: BrokenFiles = { tenants: new Set(), stacks: new Set() };
  for (const [dir, what] of [[dirs.tenantsDir, "tenants"], [dirs.stacksDir, "stacks"]] as const) {
    // Validating changes (an overlay), a directory not created yet is an empty one.
    if (overlay && !existsSync(dir)) continue;
    if (!existsSync(dir) || !statSync(dir).isDirectory()) {
      problems.push({ file: dir, path: "", message: `${what} directory not found; pass --${what} DIR` });
    }
  }
  if (problems.length > 0) return { problems };
  const ctx = { regions: platform.regions, environments: platform.environments };
  const context = JSON.stringify(ctx);
  if (cache && cache.context !== context) {
    cache.tenants.clear();
    cache.stacks.clear();
    cache.context = context;
  }
  /** The cached parse of a file on disk, or undefined when it must be read (overlaid or not cached). */
  const cached = <T>(map: Map<string, T> | undefined, abs: string): T | undefined => {
    if (!map || overlay?.files.has(abs)) return undefined;
    const hit = map.get(abs);
    if (hit !== undefined) cache!.counts.reused++;
    return hit;
  };
  const remember = <T>(map: Map<string, T> | undefined, abs: string, value: T) => {
    if (!map) return;
    cache!.counts.parsed++;
    if (!overlay?.files.has(abs)) map.set(abs, value);
  };

  // Absolute paths (cache and overlay keys) as resolve() gives them, built once per directory:
  // entry names have no slashes. Display names are made only for files read (a cached one has its own).
  const absIn = (dir: string) => {
    const base = resolve(dir);
    return (name: string) => (base.endsWith(sep) ? base + name : base + sep + name);
  };
  const tenantAbs = absIn(dirs.tenantsDir);
  const tenants = new Map<string, LoadedTenant>();
  for (const name of listed(dirs.tenantsDir, (n) => /\.ya?ml$/.test(n), overlay)) {
    const path = join(dirs.tenantsDir, name);
    const abs = tenantAbs(name);
    const id = name.replace(/\.ya?ml$/, "");
    // The file exists but is invalid: rules about its tenant (its stack files) are not checked, so
    // one broken file gives its own problems and not a cascade about a "missing" tenant.
    broken.tenants.add(id);
    let loaded = cached(cache?.tenants, abs) as ReturnType<typeof parseTenantFile> | undefined;
    if (!loaded) {
      const file = show(path);
      const text = readOverlaid(path, abs, file, overlay);
      if (typeof text !== "string") {
        problems.push(text);
        continue;
      }
      loaded = parseTenantFile(file, text, ctx, id);
      if (!Array.isArray(loaded)) remember(cache?.tenants, abs, loaded);
      else if (cache) cache.counts.parsed++;
    }
    if (Array.isArray(loaded)) {
      problems.push(...loaded);
      continue;
    }
    const prior = tenants.get(loaded.tenant.id);
    if (prior) {
      problems.push(
        problemAt(loaded.yaml, ["id"], `duplicate tenant id "${loaded.tenant.id}", also in ${prior.file}; keep one file per tenant and delete the other`),
      );
      continue;
    }
    broken.tenants.delete(id);
    tenants.set(loaded.tenant.id, loaded);
  }

  const stackAbs = absIn(dirs.stacksDir);
  const stacks = new Map<string, StackFile>();
  for (const name of listed(dirs.stacksDir, (n) => /^Pulumi\..+\.ya?ml$/.test(n), overlay)) {
    const path = join(dirs.stacksDir, name);
    const abs = stackAbs(name);
    const stackName = stackNameOfFile(name);
    if (stackName) broken.stacks.add(stackName);
    let parsed = cached(cache?.stacks, abs) as ReturnType<typeof parseStackFile> | undefined;
    if (!parsed) {
      const file = show(path);
      const text = readOverlaid(path, abs, file, overlay);
      if (typeof text !== "string") {
        problems.push(text);
        continue;
      }
      parsed = parseStackFile(file, name, text, platform.environments, platform.regions);
      if (!Array.isArray(parsed)) remember(cache?.stacks, abs, parsed);
      else if (cache) cache.counts.parsed++;
    }
    if (Array.isArray(parsed)) problems.push(...parsed);
    else if (stacks.has(parsed.ref.name)) {
      problems.push(problemAt(parsed.yaml, [], `stack ${parsed.ref.name} has two files (.yaml and .yml); delete one`));
    } else {
      stacks.set(parsed.ref.name, parsed);
      broken.stacks.delete(parsed.ref.name);
    }
  }

  const cells = new Map<string, Cell>();
  for (const s of stacks.values()) {
    if (s.ref.kind === "shared" && s.cell) {
      cells.set(s.ref.name, {
        id: s.ref.cell, env: s.ref.env, stack: s.ref.name, region: s.region, config: s.cell, file: s.file,
        capacity: s.cell.capacity ?? platform.cellDefaults.capacity,
      });
    }
  }
  const fleet: Fleet = { platform, dirs, tenants, stacks, cells };
  problems.push(...crossFileProblems(fleet, broken));
  const pulumiYaml = join(dirs.projectDir, "Pulumi.yaml");
  const pulumiYamlText = readLimited(pulumiYaml, display(dirs, pulumiYaml));
  problems.push(...fleetLimitProblems(fleet, { file: display(dirs, pulumiYaml), text: typeof pulumiYamlText === "string" ? pulumiYamlText : undefined }));
  return problems.length > 0 ? { problems } : { fleet, problems };
}

/** loadFleet for callers that need a valid fleet: throws FleetError listing every problem. */
export function requireFleet(dirs: FleetDirs, cache?: ParsedFiles): Fleet {
  const { fleet, problems } = loadFleet(dirs, undefined, cache);
  if (!fleet) throw new FleetError(problems);
  return fleet;
}

interface NetworkClaim {
  cidr: Cidr;
  what: string;
  report?: { file: LoadedTenant | StackFile; path: PropertyKey[] };
  /** A customer's VPC: outside our supernet by design, and fixed by the customer, not by us. */
  customer?: boolean;
}

/** Tenant ids and stack names whose files exist but did not load (their own problems are reported). */
interface BrokenFiles {
  tenants: Set<string>;
  stacks: Set<string>;
}

/** The cross-file rules of docs/tenant-files.md ("Rules beyond the fields"). */
function crossFileProblems(fleet: Fleet, broken: BrokenFiles): Problem[] {
  const problems: Problem[] = [];
  const { platform, tenants, stacks, cells } = fleet;
  const cellsIn = (env: string) => [...cells.values()].filter((c) => c.env === env).map((c) => c.id).join(", ") || "none";

  // Placement: names an existing cell, in the tenant's region, with room.
  const load = new Map<string, string[]>();
  for (const lt of tenants.values()) {
    const t = lt.tenant;
    const homes: [string, string, PropertyKey[]][] = [];
    if (t.deployment === "pooled") for (const [env, cell] of Object.entries(t.placement)) if (cell) homes.push([env, cell, ["placement", env]]);
    if (t.deployment === "pooled" && t.move) for (const [env, cell] of Object.entries(t.move.from)) if (cell) homes.push([env, cell, ["move", "from", env]]);
    if (t.deployment === "dedicated" && t.migration) {
      for (const [env, cell] of Object.entries(t.migration.from)) if (cell) homes.push([env, cell, ["migration", "from", env]]);
    }
    for (const [env, cellId, path] of homes) {
      const stack = cellStackName(env, cellId);
      const cell = cells.get(stack);
      if (!cell && broken.stacks.has(stack)) continue;
      if (!cell) {
        problems.push(problemAt(lt.yaml, path, `cell ${cellId} has no stack file ${join("stacks", `Pulumi.${stack}.yaml`)}; cells in ${env}: ${cellsIn(env)}`));
        continue;
      }
      if (cell.region !== t.region) {
        problems.push(problemAt(lt.yaml, path, `cell ${cellId} is in ${cell.region} but the tenant's region is ${t.region}; data must stay in its region`));
      }
      if (cell.config.opening === true && path[0] === "placement") {
        problems.push(
          problemAt(
            lt.yaml,
            path,
            `cell ${cellId} is opening (opening: true in ${cell.file}): its stack has not had its first successful pulumi up; ` +
              `place the tenant in an open cell, or remove opening from the stack file once that up has succeeded (docs/cells.md)`,
          ),
        );
      }
      const placed = load.get(stack);
      if (placed) placed.push(lt.tenant.id);
      else load.set(stack, [lt.tenant.id]);
    }
  }
  for (const [stack, ids] of load) {
    const cell = cells.get(stack)!;
    if (ids.length <= cell.capacity) continue;
    // Which tenant is "the new one" is not knowable from files alone; the ones past the capacity
    // in id order are reported, so an over-full cell gives one line per tenant too many.
    for (const id of ids.slice(cell.capacity)) {
      const lt = tenants.get(id)!;
      const path =
        lt.tenant.deployment === "pooled" ? (lt.tenant.move?.from[cell.env] === cell.id ? ["move", "from", cell.env] : ["placement", cell.env]) : ["migration", "from", cell.env];
      problems.push(
        problemAt(
          lt.yaml,
          path,
          `cell ${cell.id} is full: capacity ${cell.capacity}, ${ids.length} tenants placed (${ids.join(", ")}); ` +
            `place this tenant in a cell with room (tenantctl new chooses one), raise capacity in ${cell.file}, or add a cell`,
        ),
      );
    }
  }

  // Every platform region has its platform stack (hub, Transit Gateway, runner): cells and
  // dedicated stacks of the region attach to it and are deployed from its runner.
  for (const region of platform.regions) {
    const name = platformStackName(region);
    if (stacks.has(name) || broken.stacks.has(name)) continue;
    problems.push({
      file: display(fleet.dirs, join(fleet.dirs.stacksDir, `Pulumi.${name}.yaml`)),
      line: 1,
      path: "",
      message: `is missing: region ${region} is a platform region and needs its platform stack (hub network, Transit Gateway, runner); create it with config aws:region: ${region} and saas-tenancy:image`,
    });
  }

  // Dedicated tenants have their stack files; dedicated stack files have their tenant.
  for (const lt of tenants.values()) {
    const t = lt.tenant;
    if (t.deployment !== "dedicated") continue;
    for (const env of Object.keys(t.dedicated)) {
      const name = dedicatedStackName(t.id, env);
      const s = stacks.get(name);
      if (!s && broken.stacks.has(name)) continue;
      if (!s) problems.push(problemAt(lt.yaml, ["dedicated", env], `stack file stacks/Pulumi.${name}.yaml is missing; create it (tenantctl new writes it)`));
      else if (s.region !== t.region) {
        problems.push(problemAt(s.yaml, ["config", "aws:region"], `is ${s.region} but tenant ${t.id} is in ${t.region}`));
      }
    }
  }
  for (const s of stacks.values()) {
    if (s.ref.kind !== "dedicated" || broken.tenants.has(s.ref.tenant)) continue;
    const lt = tenants.get(s.ref.tenant);
    const reason = !lt
      ? `tenant ${s.ref.tenant} has no file tenants/${s.ref.tenant}.yaml`
      : lt.tenant.deployment !== "dedicated"
        ? `tenant ${s.ref.tenant} is ${lt.tenant.deployment}, not dedicated`
        : !(s.ref.env in lt.tenant.dedicated)
          ? `tenant ${s.ref.tenant} does not declare environment ${s.ref.env}`
          : undefined;
    if (reason) problems.push(problemAt(s.yaml, [], `${reason}; remove this stack file (after destroying the stack) or fix the tenant`));
  }

  // Networks: dedicated CIDRs inside the supernet; nothing overlaps anything. One line per
  // offending CIDR, naming everything it collides with.
  const supernet = parseCidr(platform.dedicatedSupernet);
  const claims: NetworkClaim[] = Object.entries(platform.hubs).map(([region, hub]) => ({ cidr: parseCidr(hub.cidr), what: `the ${region} hub` }));
  for (const c of cells.values()) {
    claims.push({ cidr: parseCidr(c.config.cidr), what: `cell ${c.stack}`, report: { file: stacks.get(c.stack)!, path: ["config", "saas-tenancy:cell", "cidr"] } });
  }
  const outside = new Set<NetworkClaim>();
  for (const lt of tenants.values()) {
    const t = lt.tenant;
    if (t.deployment !== "dedicated") continue;
    for (const [env, net] of Object.entries(t.dedicated)) {
      if (!net) continue;
      const claim: NetworkClaim = { cidr: parseCidr(net.cidr), what: `tenant ${t.id} (${env})`, report: { file: lt, path: ["dedicated", env, "cidr"] } };
      if (!contains(supernet, claim.cidr)) outside.add(claim);
      claims.push(claim);
    }
  }
  // Customers' peered VPCs: routed from our VPCs, so they may overlap nothing of ours (nor each
  // other: two customers in one range would be indistinguishable to the reachability analysis).
  for (const lt of tenants.values()) {
    const t = lt.tenant;
    if (t.deployment !== "dedicated") continue;
    for (const [env, net] of Object.entries(t.dedicated)) {
      if (!net?.customerVpc) continue;
      claims.push({
        cidr: parseCidr(net.customerVpc.cidr),
        what: `the customer VPC of tenant ${t.id} (${env})`,
        report: { file: lt, path: ["dedicated", env, "customerVpc", "cidr"] },
        customer: true,
      });
    }
  }
  const collisions = new Map<NetworkClaim, NetworkClaim[]>();
  for (let i = 0; i < claims.length; i++) {
    for (let j = 0; j < i; j++) {
      const a = claims[i]!;
      const b = claims[j]!;
      if (!overlaps(a.cidr, b.cidr)) continue;
      // Reported on the later claim (tenants after cells after the control plane).
      const target = a.report ? a : b.report ? b : undefined;
      if (!target) continue;
      collisions.set(target, [...(collisions.get(target) ?? []), target === a ? b : a]);
    }
  }
  // A customer VPC inside the dedicated supernet would collide with the next tenant tenantctl new places there.
  const supernetClaim: NetworkClaim = { cidr: supernet, what: "the dedicated supernet" };
  for (const claim of claims) {
    if (claim.customer && overlaps(claim.cidr, supernet)) collisions.set(claim, [...(collisions.get(claim) ?? []), supernetClaim]);
  }
  for (const claim of claims) {
    const hits = collisions.get(claim) ?? [];
    if (!claim.report || (hits.length === 0 && !outside.has(claim))) continue;
    const parts: string[] = [];
    if (hits.length > 0) parts.push(`overlaps ${hits.map((h) => `${formatCidr(h.cidr)} of ${h.what}`).join(", ")}`);
    if (outside.has(claim)) parts.push(`is outside the dedicated supernet ${platform.dedicatedSupernet}`);
    const fix = claim.customer
      ? "the customer's VPC range must be disjoint from ours: peer a VPC of theirs that overlaps no hub, cell, dedicated VPC or other customer VPC"
      : "tenant" in claim.report.file
        ? `choose a free /16 inside ${platform.dedicatedSupernet} (tenantctl new allocates one)`
        : "choose a block no cell, tenant or hub uses";
    problems.push(problemAt(claim.report.file.yaml, claim.report.path, `${formatCidr(claim.cidr)} of ${claim.what} ${parts.join(" and ")}; ${fix}`));
  }
  return problems;
}

export function tenantFileName(fleet: Fleet, id: string): string {
  return join(fleet.dirs.tenantsDir, `${id}.yaml`);
}

