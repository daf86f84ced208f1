/**
 * Which stacks a change touches, from the git diff of the fleet between two revisions.
 * Reused by `tenantctl affected`, `tenantctl plan --base` and the control plane.
 *
 * Rules (docs/pr-onboarding.md, "Affected stacks"):
 * - a changed tenant file touches stacksOfTenant(before) ∪ stacksOfTenant(after), so a removed
 *   tenant touches the cells it leaves and a re-placed tenant touches both cells;
 * - a changed stack file touches that stack;
 * - a cell's stack file added, removed or re-addressed touches its region's platform stack too
 *   (the hub routes to every cell of the region: platformsRoutingChangedCells);
 * - a change under infra/ or policy/, or to Pulumi.yaml or package-lock.json, touches every
 *   stack of both revisions (the program, the pack, the platform or a provider version changed).
 */
import { existsSync, readdirSync } from "node:fs";
import { basename, join, relative, resolve } from "node:path";
import { loadFleet, parsedFiles, stacksOfTenant, type Fleet, type ParsedFiles } from "../../infra/model/fleet.ts";
import { hubDestinations } from "../../infra/model/hub.ts";
import { parseStackName, platformStackName } from "../../infra/model/naming.ts";
import { placementChanges } from "../../infra/model/placementChanges.ts";
import { FleetError, type Problem } from "../../infra/model/problems.ts";
import { stackNameOfFile } from "../../infra/model/stackFile.ts";
import { changedFiles, contentsAt, filesAt, repoInfo, resolveCommit, type ChangedFile } from "./git.ts";
import { withFleetSnapshot } from "./worktree.ts";

/** Paths whose change touches every stack. Directories end with "/". */
export const GLOBAL_PATHS: readonly string[] = ["infra/", "policy/", "Pulumi.yaml", "package-lock.json"];

export interface AffectedStack {
  name: string;
  /** Why, one line per changed file, e.g. "tenants/acme.yaml modified". */
  reasons: string[];
  /** Whether the stack has a stack file at the base revision / at the head. */
  inBase: boolean;
  inHead: boolean;
}

export interface Revision {
  ref: string;
  /** Commit id; undefined for the working tree. */
  commit?: string;
}

export interface AffectedResult {
  base: Revision & { commit: string };
  head: Revision;
  /** Every changed file of the project (not only the fleet's). */
  changed: ChangedFile[];
  /** Names of the affected stacks, sorted. */
  stacks: string[];
  /** The same stacks with the reasons, sorted by name. */
  details: AffectedStack[];
  /** Things the reader must know (a base fleet that does not load, counted conservatively). */
  warnings: string[];
  /**
   * Changed files under GLOBAL_PATHS: a program, policy or platform change, which reaches the
   * fleet as a rollout (docs/rollouts.md) instead of straight to its stacks.
   */
  programPaths: string[];
  /**
   * Placement edits of existing pooled tenants (infra/model/placementChanges.ts): a cell change
   * only a move may make. The commands (affected, plan --base, validate --base) refuse them.
   */
  placementChanges: Problem[];
}

type FileKind = { kind: "tenant"; id: string } | { kind: "stack"; stack: string } | { kind: "global" } | { kind: "other" };

export function classifyPath(path: string): FileKind {
  const tenant = /^tenants\/([^/]+)\.ya?ml$/.exec(path);
  if (tenant) return { kind: "tenant", id: tenant[1]! };
  const stackFile = /^stacks\/([^/]+)$/.exec(path);
  if (stackFile) {
    const stack = stackNameOfFile(stackFile[1]!);
    if (stack) return { kind: "stack", stack };
  }
  if (GLOBAL_PATHS.some((g) => (g.endsWith("/") ? path.startsWith(g) : path === g))) return { kind: "global" };
  return { kind: "other" };
}

interface Side {
  fleet?: Fleet;
  /** Stack names of this side (from the fleet, or from the stack file names when it does not load). */
  stackNames: Set<string>;
  /** Why the fleet does not load; files of a snapshot are shown as `<ref>:<path>`. */
  problems: Problem[];
}

async function stackNamesFromFiles(projectDir: string, commit: string): Promise<Set<string>> {
  const files = await filesAt(projectDir, commit, ["stacks"]);
  return new Set(files.map((f) => stackNameOfFile(f.replace(/^stacks\//, ""))).filter((n): n is string => n !== undefined));
}

/** A fleet file loadFleet reads: directly in tenants/ or stacks/. */
const FLEET_FILE = /^(tenants\/[^/]+\.ya?ml|stacks\/Pulumi\.[^/]+\.ya?ml)$/;

/**
 * The fleet at `commit` as the working tree's plus what git says differs: the tenant and stack
 * files changed since `commit` are overlaid with their content there (or removed when added since),
 * and every other file is the working tree's own, taken already parsed from `cache` (filled by the
 * head's load). Only the changed files are read and parsed, however large the fleet. Undefined when
 * Pulumi.yaml changed (it decides what every file means) or the head was not loaded with `cache`.
 */
async function baseFromWorkingTree(projectDir: string, rev: Revision & { commit: string }, changed: readonly ChangedFile[], cache: ParsedFiles): Promise<Side | undefined> {
  if (changed.some((c) => c.path === "Pulumi.yaml") || cache.tenants.size + cache.stacks.size === 0) return undefined;
  const overlay = new Map<string, string | null>();
  const atBase = changed.filter((c) => FLEET_FILE.test(c.path) && c.status !== "added").map((c) => c.path);
  // One repoInfo for both git reads below (each would ask git again).
  const info = await repoInfo(projectDir);
  const texts = await contentsAt(projectDir, rev.commit, atBase, info);
  atBase.forEach((p, i) => overlay.set(resolve(projectDir, p), texts[i]!));
  for (const c of changed) if (FLEET_FILE.test(c.path) && c.status === "added") overlay.set(resolve(projectDir, c.path), null);
  // Files on disk that git does not track (ignored ones: untracked files are "added" above) are not
  // at the base either.
  const tracked = new Set(await filesAt(projectDir, rev.commit, ["tenants", "stacks"], info));
  for (const dir of ["tenants", "stacks"]) {
    if (!existsSync(join(projectDir, dir))) continue;
    for (const name of readdirSync(join(projectDir, dir))) {
      const path = `${dir}/${name}`;
      const abs = resolve(projectDir, path);
      if (FLEET_FILE.test(path) && !tracked.has(path) && !overlay.has(abs)) overlay.set(abs, null);
    }
  }
  const shown = (abs: string) => `${rev.ref}:${relative(projectDir, abs)}`;
  const { fleet, problems } = loadFleet({ projectDir }, { files: overlay, show: shown }, cache);
  if (!fleet) return undefined;
  return { fleet, stackNames: new Set(fleet.stacks.keys()), problems };
}

async function loadSide(projectDir: string, rev: Revision, cache?: ParsedFiles): Promise<Side> {
  const load = (dir: string, label?: string): Side => {
    const { fleet, problems } = loadFleet({ projectDir: dir }, undefined, label ? undefined : cache);
    const shown = label
      ? problems.map((p) => ({ ...p, file: p.file.startsWith(dir) ? `${label}:${relative(dir, p.file)}` : p.file }))
      : problems;
    return { ...(fleet ? { fleet } : {}), stackNames: new Set(fleet ? fleet.stacks.keys() : []), problems: shown };
  };
  const commit = rev.commit;
  if (!commit) return load(projectDir);
  const side = await withFleetSnapshot(projectDir, commit, async (dir) => load(dir, rev.ref));
  if (!side.fleet) side.stackNames = await stackNamesFromFiles(projectDir, commit);
  return side;
}

/** The cells a region's platform stack routes to through its hub (name and CIDR of each). */
function cellRoutes(fleet: Fleet, region: string): string {
  return JSON.stringify(hubDestinations(fleet.platform, fleet.cells.values(), region).filter((d) => d.via === "cell"));
}

function isCellStack(name: string, environments: readonly string[]): boolean {
  try {
    return parseStackName(name, environments).kind === "shared";
  } catch {
    return false;
  }
}

/**
 * A platform stack routes to every cell of its region (infra/model/hub.ts, hubDestinations: the
 * hub's and the runner's routes to each cell's CIDR), so a cell's stack file added, removed or
 * re-addressed changes the platform stack's render although no file of it changed. Touched when
 * those routes differ between the two fleets; every platform stack when the base fleet does not
 * load and a cell's stack file changed. A cell change that moves no route (its capacity) does not.
 */
function platformsRoutingChangedCells(
  base: Side, head: Fleet, relevant: readonly (ChangedFile & { what: FileKind })[],
): { stack: string; why: string }[] {
  const cellFiles = relevant.filter((k) => k.what.kind === "stack" && isCellStack(k.what.stack, head.platform.environments));
  if (cellFiles.length === 0) return [];
  const regions = [...new Set([...(base.fleet?.platform.regions ?? []), ...head.platform.regions])].sort();
  const regionOf = (name: string) => head.cells.get(name)?.region ?? base.fleet?.cells.get(name)?.region;
  const out: { stack: string; why: string }[] = [];
  for (const region of regions) {
    const stack = platformStackName(region);
    if (!base.stackNames.has(stack) && !head.stacks.has(stack)) continue;
    if (base.fleet && cellRoutes(base.fleet, region) === cellRoutes(head, region)) continue;
    const files = cellFiles.filter((k) => k.what.kind === "stack" && (!base.fleet || regionOf(k.what.stack) === region));
    out.push({ stack, why: `${files.map((k) => `${k.path} ${k.status}`).join(", ")}: ${stack} routes to every cell of ${region} (its hub and runner reach each cell's CIDR)` });
  }
  return out;
}

/**
 * The stacks touched between `baseRef` and `headRef` (a commit-ish), or between `baseRef` and the
 * working tree (including untracked files) when `headRef` is omitted.
 * Throws GitError for a bad ref or a directory outside git, FleetError when the head fleet is invalid.
 */
export async function affectedStacks(projectDir: string, baseRef: string, headRef?: string): Promise<AffectedResult> {
  return (await affectedWithFleets(projectDir, baseRef, headRef)).result;
}

export interface AffectedFleets {
  result: AffectedResult;
  /** The fleets compared, when they loaded (none when no fleet file changed). */
  base?: Fleet;
  head?: Fleet;
  /** The parsed files of the loads (counts: how many were parsed and how many reused). */
  cache: ParsedFiles;
}

/**
 * affectedStacks, also returning the fleets it loaded. With the working tree as the head, the
 * head's files are parsed once (or taken from `opts.head`, loaded with `opts.cache`) and the base
 * fleet is the working tree's plus the files that differ (baseFromWorkingTree).
 */
export async function affectedWithFleets(
  projectDir: string, baseRef: string, headRef?: string, opts: { head?: Fleet; cache?: ParsedFiles; baseCommit?: string } = {},
): Promise<AffectedFleets> {
  const cache = opts.cache ?? parsedFiles();
  // `opts.baseCommit`: what baseRef resolves to, when the caller resolved it already (one git process less).
  const baseCommit = opts.baseCommit ?? (await resolveCommit(projectDir, baseRef));
  const headCommit = headRef === undefined ? undefined : await resolveCommit(projectDir, headRef);
  const changed = await changedFiles(projectDir, baseCommit, headCommit);
  const warnings: string[] = [];

  const kinds = changed.map((c) => ({ ...c, what: classifyPath(c.path) }));
  const relevant = kinds.filter((k) => k.what.kind !== "other");
  const result: AffectedResult = {
    base: { ref: baseRef, commit: baseCommit },
    head: { ref: headRef ?? "working tree", ...(headCommit ? { commit: headCommit } : {}) },
    changed,
    stacks: [],
    details: [],
    warnings,
    programPaths: kinds.filter((k) => k.what.kind === "global").map((k) => k.path),
    placementChanges: [],
  };
  if (relevant.length === 0) return { result, cache };

  // The head must be valid (validate reports the same problems); the base may predate a schema change.
  const head: Side = opts.head && !headCommit
    ? { fleet: opts.head, stackNames: new Set(opts.head.stacks.keys()), problems: [] }
    : await loadSide(projectDir, result.head, cache);
  if (!head.fleet) throw new FleetError(head.problems);
  const sameDirs = resolve(head.fleet.dirs.tenantsDir) === resolve(projectDir, "tenants") && resolve(head.fleet.dirs.stacksDir) === resolve(projectDir, "stacks");
  const base = (!headCommit && sameDirs ? await baseFromWorkingTree(projectDir, result.base, changed, cache) : undefined) ?? (await loadSide(projectDir, result.base));
  if (!base.fleet) {
    warnings.push(
      `the fleet at ${baseRef} does not load with this code (${base.problems.length} problems); ` +
        `a tenant changed since then is counted in every stack of ${baseRef}`,
    );
  }

  if (base.fleet) {
    // A head at a commit was loaded from a snapshot: name its files as `<ref>:<path>`, like its problems.
    result.placementChanges = placementChanges(base.fleet, head.fleet, baseRef).map((p) =>
      headCommit ? { ...p, file: `${headRef}:tenants/${basename(p.file)}` } : p,
    );
  }

  const reasons = new Map<string, string[]>();
  const touch = (stack: string, why: string) => {
    const list = reasons.get(stack) ?? [];
    if (!list.includes(why)) list.push(why);
    reasons.set(stack, list);
  };

  const globals = relevant.filter((k) => k.what.kind === "global");
  if (globals.length > 0) {
    const shown = globals.slice(0, 3).map((g) => g.path).join(", ") + (globals.length > 3 ? `, +${globals.length - 3} more` : "");
    const why = `${shown} changed (infra/, policy/, Pulumi.yaml and package-lock.json touch every stack)`;
    for (const s of new Set([...base.stackNames, ...head.stackNames])) touch(s, why);
  }
  for (const k of relevant) {
    const why = `${k.path} ${k.status}`;
    if (k.what.kind === "stack") touch(k.what.stack, why);
    if (k.what.kind !== "tenant") continue;
    const id = k.what.id;
    const before = base.fleet ? base.fleet.tenants.get(id)?.tenant : undefined;
    const after = head.fleet.tenants.get(id)?.tenant;
    const stacks = new Set<string>([...(before ? stacksOfTenant(before) : []), ...(after ? stacksOfTenant(after) : [])]);
    if (!base.fleet && k.status !== "added") for (const s of base.stackNames) stacks.add(s);
    for (const s of stacks) touch(s, why);
  }

  for (const { stack, why } of platformsRoutingChangedCells(base, head.fleet, relevant)) touch(stack, why);

  result.details = [...reasons.keys()].sort().map((name) => ({
    name,
    reasons: reasons.get(name)!,
    inBase: base.stackNames.has(name),
    inHead: head.stackNames.has(name),
  }));
  result.stacks = result.details.map((d) => d.name);
  return { result, ...(base.fleet ? { base: base.fleet } : {}), head: head.fleet, cache };
}
