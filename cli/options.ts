import { existsSync } from "node:fs";
import { relative, resolve } from "node:path";
import type { FleetDirs } from "../infra/model/fleet.ts";
import { UsageError } from "./io.ts";

export interface DirOptions {
  tenants?: string;
  stacks?: string;
  project?: string;
}

/** The project is the directory holding Pulumi.yaml: --project, else the nearest from cwd, else this package. */
export function fleetDirs(opts: DirOptions): FleetDirs {
  const projectDir = resolve(opts.project ?? findProject(process.cwd()) ?? defaultProjectDir());
  if (!existsSync(resolve(projectDir, "Pulumi.yaml"))) {
    throw new UsageError(`no Pulumi.yaml in ${projectDir}; pass --project DIR`);
  }
  return {
    projectDir,
    ...(opts.tenants ? { tenantsDir: resolve(opts.tenants) } : {}),
    ...(opts.stacks ? { stacksDir: resolve(opts.stacks) } : {}),
  };
}

function findProject(from: string): string | undefined {
  let dir = from;
  for (;;) {
    if (existsSync(resolve(dir, "Pulumi.yaml"))) return dir;
    const up = resolve(dir, "..");
    if (up === dir) return undefined;
    dir = up;
  }
}

/** A path as tenantctl prints it: relative to the working directory when inside it, else absolute. */
export function shownPath(path: string): string {
  const rel = relative(process.cwd(), path);
  return rel === "" || rel.startsWith("..") ? path : rel;
}

export function defaultProjectDir(): string {
  return resolve(import.meta.dirname, "..");
}
