/**
 * The CLI test double (fakePulumiCli.ts) handed to the Automation API: in process, through
 * LocalWorkspace's `pulumiCommand` option, or as an executable `<root>/bin/pulumi` for
 * TENANCY_PULUMI_ROOT / PATH (then PulumiCommand.get() and the library's own process handling run).
 */
import { randomUUID } from "node:crypto";
import { mkdirSync, rmSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { join } from "node:path";
import type { PulumiCommand } from "@pulumi/pulumi/automation/index.js";
import { SemVer } from "semver";
import { runFakePulumi, SDK_VERSION, type FakePulumiOptions } from "./fakePulumiCli.ts";

export * from "./fakePulumiCli.ts";

const require = createRequire(import.meta.url);

interface CommandResultLike {
  stdout: string;
  stderr: string;
  code: number;
}
// Internal (but exported) helpers the real PulumiCommand.run uses to report results and errors.
const { CommandResult } = require("@pulumi/pulumi/automation/cmd.js") as {
  CommandResult: new (stdout: string, stderr: string, code: number, err?: Error) => CommandResultLike;
};
const { createCommandError } = require("@pulumi/pulumi/automation/errors.js") as {
  createCommandError: (result: CommandResultLike) => Error;
};

/** What PulumiCommand.run returns for a CLI's answer, or throws (the Automation API's own error classes). */
export function commandResult(r: CommandResultLike): CommandResultLike {
  const result = new CommandResult(r.stdout, r.stderr, r.code);
  if (r.code !== 0) throw createCommandError(result);
  return result;
}

/**
 * In-process CLI for LocalWorkspace's `pulumiCommand` option. PulumiCommand's constructor is
 * private and its `run` is marked internal in the typings, though `pulumiCommand` is the
 * documented way to supply a CLI: hence the single cast in asPulumiCommand().
 */
export class FakePulumiCommand {
  readonly command = "pulumi (saas-tenancy test double)";
  readonly version: SemVer;

  constructor(readonly options: FakePulumiOptions) {
    this.version = new SemVer(options.version ?? SDK_VERSION);
  }

  async run(
    args: string[],
    cwd: string,
    _additionalEnv: Record<string, string>,
    onOutput?: (data: string) => void,
    _onError?: (data: string) => void,
    signal?: AbortSignal,
  ): Promise<CommandResultLike> {
    return commandResult(await runFakePulumi(args, cwd, this.options, { ...(signal ? { signal } : {}), ...(onOutput ? { onOutput } : {}) }));
  }

  asPulumiCommand(): PulumiCommand {
    return this;
  }
}

const PROJECT = join(import.meta.dirname, "..", "..", "..");

/**
 * Writes `<root>/bin/pulumi`, an executable running this double, for TENANCY_PULUMI_ROOT / PATH.
 * The double is bundled to plain JavaScript first (esbuild, which tsx brings along) so each CLI
 * call starts in a fraction of a second; the bundle lives under the project's .tmp/ (gitignored)
 * so its package imports resolve from the project's node_modules.
 */
export function installFakePulumiBinary(root: string, options: FakePulumiOptions): { bin: string; dispose(): void } {
  mkdirSync(join(root, "bin"), { recursive: true });
  const optionsFile = join(root, "fake-pulumi.json");
  writeFileSync(optionsFile, JSON.stringify(options));
  // One bundle per installation: two in one process (tests running concurrently) must not share
  // it, since each removes its own on dispose.
  const bundle = bundleDouble("fakePulumiMain.ts", "main");
  const bin = join(root, "bin", "pulumi");
  writeFileSync(bin, `#!/bin/sh\nFAKE_PULUMI_OPTIONS='${optionsFile}' exec "${process.execPath}" '${bundle}' "$@"\n`, { mode: 0o755 });
  return { bin, dispose: () => rmSync(bundle, { force: true }) };
}

/**
 * One of this folder's entry files bundled to plain JavaScript under the project's .tmp/ (so its
 * package imports resolve from node_modules): a process or thread starts it without a TypeScript
 * loader. The caller removes the file.
 */
export function bundleDouble(entry: string, tag: string): string {
  const bundle = join(PROJECT, ".tmp", "fake-pulumi", `${tag}-${process.pid}-${randomUUID().slice(0, 8)}.mjs`);
  const esbuild = require("esbuild") as typeof import("esbuild");
  esbuild.buildSync({
    entryPoints: [join(import.meta.dirname, entry)],
    outfile: bundle,
    bundle: true,
    platform: "node",
    format: "esm",
    target: "node20",
    packages: "external",
    logLevel: "error",
  });
  return bundle;
}
