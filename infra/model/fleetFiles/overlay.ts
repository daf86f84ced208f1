/**
 * "Validate the fleet with these changes": the fleet loader run over the files on disk with
 * changes laid over them in memory (FleetOverlay in ../fleet.ts), before anything is written.
 * tenantctl new, the control plane's git writer and the lifecycle's local repository all check
 * a change this way.
 */
import { join, relative, resolve, sep } from "node:path";
import { loadFleet, type Fleet, type FleetDirs } from "../fleet.ts";
import { formatProblem } from "../problems.ts";
import { STACKS_DIR, TENANTS_DIR } from "./paths.ts";

export type FileChanges = Readonly<Record<string, string | null>>;

function withDefaults(dirs: FleetDirs): Required<FleetDirs> {
  return {
    projectDir: dirs.projectDir,
    tenantsDir: dirs.tenantsDir ?? join(dirs.projectDir, TENANTS_DIR),
    stacksDir: dirs.stacksDir ?? join(dirs.projectDir, STACKS_DIR),
  };
}

/** The file of a repository-relative path (`tenants/...` and `stacks/...` follow the fleet's directories). */
export function fleetPath(dirs: FleetDirs, path: string): string {
  const d = withDefaults(dirs);
  if (path.startsWith(`${TENANTS_DIR}/`)) return join(d.tenantsDir, path.slice(TENANTS_DIR.length + 1));
  if (path.startsWith(`${STACKS_DIR}/`)) return join(d.stacksDir, path.slice(STACKS_DIR.length + 1));
  return join(d.projectDir, path);
}

export interface ValidateOptions {
  /**
   * How problems name tenant and stack files: "repo" (default) as repository-relative paths
   * (`tenants/acme.yaml`, what the control plane reports), "cwd" relative to the working
   * directory (what tenantctl prints).
   */
  show?: "repo" | "cwd";
}

/**
 * Loads the fleet with `layers` (repository-relative path -> content, null deletes) applied in
 * order over the files on disk. Returns the resulting fleet, or its problems one line each.
 */
export function validateWithChanges(dirs: FleetDirs, layers: readonly FileChanges[], opts: ValidateOptions = {}): { fleet?: Fleet; problems: string[] } {
  const d = withDefaults(dirs);
  const files = new Map<string, string | null>();
  for (const layer of layers) for (const [p, content] of Object.entries(layer)) files.set(resolve(fleetPath(d, p)), content);
  const show = (path: string): string => {
    const abs = resolve(path);
    for (const [dir, name] of [[resolve(d.tenantsDir), TENANTS_DIR], [resolve(d.stacksDir), STACKS_DIR]] as const) {
      if (abs.startsWith(dir + sep)) return `${name}/${relative(dir, abs).split(sep).join("/")}`;
    }
    return path;
  };
  const { fleet, problems } = loadFleet(dirs, { files, ...(opts.show === "cwd" ? {} : { show }) });
  return fleet ? { fleet, problems: [] } : { problems: problems.map(formatProblem) };
}
