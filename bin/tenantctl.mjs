#!/usr/bin/env -S node --max-semi-space-size=16
// tenantctl entry point. Runs the compiled CLI (dist/cli, built by bin/build-cli.mjs, which
// `npm ci` runs as its prepare step) when it is at least as new as every source file it was built
// from; otherwise runs the TypeScript sources through tsx (a dependency), which starts slower but
// is always current. A missing build is reported on stderr; a stale one (sources edited since
// the build) only on a terminal, since editing sources is normal and scripts read stderr.
import { readFileSync, statSync } from "node:fs";
import nodeModule from "node:module";

// V8 code cache on disk (Node >= 22.1; under os.tmpdir(), NODE_COMPILE_CACHE overrides): the
// modules of a repeated start are not compiled again.
nodeModule.enableCompileCache?.();

const ROOT = new URL("../", import.meta.url);

/** Why the compiled CLI cannot be used, or undefined when it can. */
function staleReason() {
  let manifest;
  try {
    manifest = JSON.parse(readFileSync(new URL("dist/cli/manifest.json", ROOT), "utf8"));
  } catch {
    return { missing: true, text: "dist/cli is not built (npm ci --ignore-scripts?)" };
  }
  for (const file of manifest.inputs) {
    let mtime;
    try {
      mtime = statSync(new URL(file, ROOT)).mtimeMs;
    } catch {
      return { missing: false, text: `${file} was removed since dist/cli was built` };
    }
    if (mtime > manifest.builtAt) return { missing: false, text: `${file} changed since dist/cli was built` };
  }
  return undefined;
}

const why = process.env.TENANTCTL_FROM_SOURCE ? { missing: false, text: "TENANTCTL_FROM_SOURCE is set" } : staleReason();
let main;
if (why === undefined) {
  ({ main } = await import(new URL("dist/cli/main.mjs", ROOT).href));
} else {
  if (why.missing || process.stderr.isTTY) {
    process.stderr.write(`tenantctl: ${why.text}; running the TypeScript sources through tsx (slower start). \`npm run build\` compiles it.\n`);
  }
  const { register } = await import("tsx/esm/api");
  register();
  ({ main } = await import(new URL("cli/main.ts", ROOT).href));
}
process.exitCode = await main(process.argv.slice(2));
