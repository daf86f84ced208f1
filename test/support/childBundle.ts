/**
 * Test child processes (a run worker, a control plane that stops, a schema engine: the entry files
 * under test/) started from plain JavaScript instead of `node --import tsx`. tsx compiles and loads
 * the control plane's few hundred modules one by one in every child (about 4 CPU-s each on a
 * 2-core CI machine, and some files start a dozen children); an esbuild bundle of the entry, its
 * packages left external, starts in about half of that. The entry is bundled once per test run,
 * into `.tmp/test-bundles/<run>/` of the project (its package imports resolve from the project's
 * node_modules), which the run's global set-up removes (test/support/runTempDir.ts).
 *
 * A bundle behaves as the sources: every import.meta.url / dirname / filename in a source file is
 * rewritten to name that source file, as bin/build-cli.mjs does for the compiled tenantctl, so
 * files found next to a source (migrations, the project root) are found the same way.
 * What runs in production under tsx (automation/main.ts, `npm run control-plane`) keeps its tsx
 * start in the tests that are about it.
 */
import { randomUUID } from "node:crypto";
import { existsSync, mkdirSync, readFileSync, renameSync, rmSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join, relative, resolve } from "node:path";
import { RUN_TEMP_ENV, runBundleDir } from "./runTempDir.ts";

const require = createRequire(import.meta.url);
const PROJECT = resolve(import.meta.dirname, "..", "..");

/**
 * The JavaScript bundle of `entry` (a TypeScript file's absolute path) for `node <bundle>`: built
 * on first use in the run, reused afterwards. Test files run in parallel processes: each builds to
 * a name of its own and renames it into place, so a reader never sees half a file.
 */
export async function childBundle(entry: string): Promise<string> {
  const runDir = process.env[RUN_TEMP_ENV];
  if (!runDir || !existsSync(runDir)) throw new Error(`childBundle(${entry}): no run directory (${RUN_TEMP_ENV}); start it under vitest, whose global set-up makes one`);
  const out = join(runBundleDir(runDir), `${relative(PROJECT, entry).replace(/\.ts$/, "").replaceAll("/", "__")}.mjs`);
  if (existsSync(out)) return out;
  const outDir = dirname(out);
  mkdirSync(outDir, { recursive: true });
  const tmp = `${out}.${process.pid}-${randomUUID().slice(0, 8)}.tmp`;
  const esbuild = require("esbuild") as typeof import("esbuild");
  try {
    await esbuild.build({
      entryPoints: [entry],
      outfile: tmp,
      bundle: true,
      platform: "node",
      format: "esm",
      target: "node20.19",
      packages: "external",
      logLevel: "error",
      plugins: [sourceLocation(outDir)],
    });
    renameSync(tmp, out);
  } finally {
    rmSync(tmp, { force: true });
  }
  return out;
}

/** As bin/build-cli.mjs: import.meta.url / dirname / filename of a source name that source, reached from the bundle. */
function sourceLocation(outDir: string): import("esbuild").Plugin {
  return {
    name: "source-location",
    setup(build) {
      build.onLoad({ filter: /\.ts$/ }, (args) => {
        if (args.path.includes(`${join("node_modules", "")}`)) return undefined;
        const fromOut = relative(outDir, args.path).split("\\").join("/");
        const dirFromOut = relative(outDir, dirname(args.path)).split("\\").join("/");
        const contents = readFileSync(args.path, "utf8")
          .replaceAll("import.meta.url", `new URL(${JSON.stringify(fromOut)}, import.meta.url).href`)
          .replaceAll("import.meta.dirname", `(import.meta.dirname + ${JSON.stringify(`/${dirFromOut}`)})`)
          .replaceAll("import.meta.filename", `(import.meta.dirname + ${JSON.stringify(`/${fromOut}`)})`);
        return { contents, loader: "ts" };
      });
    },
  };
}
