#!/usr/bin/env node
// Builds the compiled tenantctl (`npm run build`; `npm ci` and `npm install` run it as the
// `prepare` step): cli/main.ts and the plan renderer worker (plan/worker.ts) bundled by esbuild
// into dist/cli/ (gitignored), ES modules for the Node version in .nvmrc. Packages stay external
// (loaded from node_modules as under tsx); each command the CLI imports lazily becomes its own
// chunk, so `validate` loads only what it uses. dist/cli/manifest.json lists the source files
// the build read and when it started: bin/tenantctl.mjs runs the sources through tsx instead when
// one of them changed since. See docs/architecture.md (compiled CLI).
import { existsSync, mkdirSync, readFileSync, realpathSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { dirname, join, relative, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const OUT = join(ROOT, "dist", "cli");

// A dependencies-only install (the image's deps stage copies package.json, the lockfile and this
// script, nothing else): there is nothing to compile. esbuild may still be there (tsx depends on
// it), so its absence is not the sign.
if (!existsSync(join(ROOT, "cli", "main.ts"))) {
  console.error("build-cli: no cli/main.ts here (a dependencies-only install, as the image's deps stage); nothing to build");
  process.exit(0);
}

let esbuild;
try {
  esbuild = await import("esbuild");
} catch {
  // Installed without devDependencies (npm ci --omit=dev): no compiled CLI, tenantctl runs through tsx.
  console.error("build-cli: esbuild is not installed (devDependencies omitted); tenantctl will run its TypeScript sources through tsx");
  process.exit(0);
}

/**
 * In a bundle, import.meta.url is the chunk's URL. The sources find files next to themselves
 * (policy/package.json, the SQL migrations, the project root, createRequire), so every
 * import.meta.url / dirname / filename in a source file is rewritten to name that source file,
 * reached from the chunk (all chunks sit in dist/cli/, two levels below the root).
 */
const sourceLocation = {
  name: "source-location",
  setup(build) {
    build.onLoad({ filter: /\.ts$/ }, (args) => {
      if (args.path.includes(`${join("node_modules", "")}`)) return undefined;
      const fromOut = relative(OUT, args.path).split("\\").join("/");
      const dirFromOut = relative(OUT, dirname(args.path)).split("\\").join("/");
      const contents = readFileSync(args.path, "utf8")
        .replaceAll("import.meta.url", `new URL(${JSON.stringify(fromOut)}, import.meta.url).href`)
        .replaceAll("import.meta.dirname", `(import.meta.dirname + ${JSON.stringify(`/${dirFromOut}`)})`)
        .replaceAll("import.meta.filename", `(import.meta.dirname + ${JSON.stringify(`/${fromOut}`)})`);
      return { contents, loader: "ts" };
    });
  },
};

/** Every dependency but BUNDLED, with its subpaths. */
function externals() {
  const pkg = JSON.parse(readFileSync(join(ROOT, "package.json"), "utf8"));
  const names = Object.keys({ ...pkg.dependencies, ...pkg.devDependencies }).filter((n) => !BUNDLED.includes(n));
  return names.flatMap((n) => [n, `${n}/*`]);
}
const BUNDLED = ["commander", "yaml", "zod"];

const builtAt = Date.now();
const tmp = `${OUT}.tmp-${process.pid}`;
rmSync(tmp, { recursive: true, force: true });
const result = await esbuild.build({
  absWorkingDir: ROOT,
  entryPoints: { main: "cli/main.ts", worker: "plan/worker.ts" },
  outdir: tmp,
  bundle: true,
  splitting: true,
  format: "esm",
  platform: "node",
  target: "node20.19",
  // Packages load from node_modules, except the three every command uses (bundled: one file to
  // read and compile instead of a few hundred small modules).
  external: externals(),
  outExtension: { ".js": ".mjs" },
  chunkNames: "chunk-[hash]",
  sourcemap: "linked",
  // yaml and commander are CommonJS for Node; inside an ES module bundle their require() of Node
  // builtins needs a real require.
  banner: { js: 'import { createRequire as __tenantctlCreateRequire } from "node:module";\nconst require = __tenantctlCreateRequire(import.meta.url);' },
  metafile: true,
  logLevel: "warning",
  // The renderer worker the compiled planner forks (plan/planStacks.ts): relative to the
  // rewritten import.meta.url of plan/planStacks.ts (its real path), i.e. from plan/ to dist/cli/.
  define: { TENANTCTL_COMPILED_WORKER: JSON.stringify(relative(realpathSync(join(ROOT, "plan")), join(OUT, "worker.mjs")).split("\\").join("/")) },
  plugins: [sourceLocation],
});
const inputs = Object.keys(result.metafile.inputs)
  .filter((p) => !p.startsWith("node_modules/"))
  .sort();
writeFileSync(join(tmp, "manifest.json"), `${JSON.stringify({ builtAt, inputs }, null, 2)}\n`);
// Swap in the new build by renames: a tenantctl starting in between finds no manifest and runs
// the sources through tsx.
mkdirSync(dirname(OUT), { recursive: true });
const old = `${OUT}.old-${process.pid}`;
try {
  renameSync(OUT, old);
} catch {
  // no previous build
}
renameSync(tmp, OUT);
rmSync(old, { recursive: true, force: true });
console.error(`build-cli: dist/cli built from ${inputs.length} source files in ${Date.now() - builtAt} ms`);
