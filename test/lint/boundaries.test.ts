/**
 * The layer rules of docs/architecture.md are checked, not hoped for: dependency-cruiser runs
 * with .dependency-cruiser.cjs exactly as `npm run lint:deps` runs it. Each rule is shown to fire
 * on a deliberately forbidden import in a fixture tree (its name in the output, exit code non-zero),
 * and the allowed directions pass; the real tree passes too.
 */
import { execFile } from "node:child_process";
import { cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, describe, expect, it } from "vitest";

const REPO = join(dirname(fileURLToPath(import.meta.url)), "../..");
const DEPCRUISE = join(REPO, "node_modules/dependency-cruiser/bin/dependency-cruise.mjs");

/** The arguments of `npm run lint:deps`, so the test checks the command CI runs. */
function lintDepsArgs(): string[] {
  const pkg = JSON.parse(readFileSync(join(REPO, "package.json"), "utf8")) as { scripts: Record<string, string> };
  const script = pkg.scripts["lint:deps"];
  if (!script) throw new Error("package.json has no lint:deps script");
  const [bin, ...args] = script.split(/\s+/);
  expect(bin).toBe("depcruise");
  return args;
}

/** Runs the lint command in `cwd` (asynchronously: a cruise of the real tree takes seconds). */
function cruise(cwd: string): Promise<{ status: number | null; out: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [DEPCRUISE, ...lintDepsArgs()], { cwd, encoding: "utf8", timeout: 120_000 }, (err, stdout, stderr) => {
      resolve({ status: err ? (typeof err.code === "number" ? err.code : null) : 0, out: `${stdout}${stderr}` });
    });
  });
}

const dirs: string[] = [];
afterAll(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));

/** A fixture project: the real config and tsconfig, the real node_modules, and the given files. */
function fixture(files: Record<string, string>): string {
  const dir = mkdtempSync(join(tmpdir(), "boundaries-"));
  dirs.push(dir);
  cpSync(join(REPO, ".dependency-cruiser.cjs"), join(dir, ".dependency-cruiser.cjs"));
  cpSync(join(REPO, "tsconfig.json"), join(dir, "tsconfig.json"));
  cpSync(join(REPO, "package.json"), join(dir, "package.json"));
  symlinkSync(join(REPO, "node_modules"), join(dir, "node_modules"), "dir");
  // Every folder the lint command names must exist.
  for (const top of lintDepsArgs().filter((a) => !a.startsWith("-") && !a.endsWith(".cjs"))) {
    mkdirSync(join(dir, top), { recursive: true });
    writeFileSync(join(dir, top, "placeholder.ts"), "export const placeholder = 1;\n");
  }
  for (const [path, text] of Object.entries(files)) {
    mkdirSync(dirname(join(dir, path)), { recursive: true });
    writeFileSync(join(dir, path), text);
  }
  return dir;
}

/** The lower layers every fixture has, importing nothing forbidden. */
const BASE: Record<string, string> = {
  "infra/model/naming.ts": `export const name = "n";\n`,
  "infra/program.ts": `import * as pulumi from "@pulumi/pulumi";\nimport { name } from "./model/naming.ts";\nexport const program = [pulumi.getStack, name];\n`,
  "policy/pack.ts": `import { name } from "../infra/model/naming.ts";\nexport const pack = name;\n`,
  "plan/render.ts": `import { program } from "../infra/program.ts";\nimport { pack } from "../policy/pack.ts";\nexport const render = [program, pack];\n`,
  "automation/service.ts": `import { render } from "../plan/render.ts";\nexport const service = render;\n`,
  "cli/main.ts": `import { service } from "../automation/service.ts";\nimport { render } from "../plan/render.ts";\nimport { name } from "../infra/model/naming.ts";\nexport const main = [service, render, name];\n`,
  "bench/run.ts": `import { service } from "../automation/service.ts";\nexport const bench = service;\n`,
};

/** A path of a resolved package: relative to the fixture, node_modules is the repository's (a symlink). */
const PKG = (name: string): string => `\\S*node_modules/${name.replace("/", "\\/")}/\\S*`;

describe("dependency-cruiser boundary rules", () => {
  it("pass on imports that go down the layers (negative control)", async () => {
    const r = await cruise(fixture(BASE));
    expect(r.out).toMatch(/no dependency violations found/);
    expect(r.status).toBe(0);
  });

  it("fail each forbidden import with the rule's name, and exit non-zero", async () => {
    const cases: { rule: string; file: string; text: string; to: string }[] = [
      { rule: "model-is-pure", file: "infra/model/pulumiTypes.ts", text: `import type { Output } from "@pulumi/pulumi";\nexport type O = Output<string>;\n`, to: PKG("@pulumi/pulumi") },
      { rule: "model-is-pure", file: "infra/model/aws.ts", text: `import { S3Client } from "@aws-sdk/client-s3";\nexport const c = S3Client;\n`, to: PKG("@aws-sdk/client-s3") },
      { rule: "model-is-pure", file: "infra/model/planUser.ts", text: `import { render } from "../../plan/render.ts";\nexport const r = render;\n`, to: "plan/render\\.ts" },
      { rule: "model-is-pure", file: "infra/model/automationUser.ts", text: `import { service } from "../../automation/service.ts";\nexport const s = service;\n`, to: "automation/service\\.ts" },
      { rule: "model-is-pure", file: "infra/model/cliUser.ts", text: `import { main } from "../../cli/main.ts";\nexport const m = main;\n`, to: "cli/main\\.ts" },
      { rule: "infra-is-what-pulumi-up-loads", file: "infra/components/usesAutomation.ts", text: `import { service } from "../../automation/service.ts";\nexport const s = service;\n`, to: "automation/service\\.ts" },
      { rule: "infra-is-what-pulumi-up-loads", file: "infra/stacks/usesPlan.ts", text: `import { render } from "../../plan/render.ts";\nexport const r = render;\n`, to: "plan/render\\.ts" },
      { rule: "infra-is-what-pulumi-up-loads", file: "infra/usesCli.ts", text: `import { main } from "../cli/main.ts";\nexport const m = main;\n`, to: "cli/main\\.ts" },
      { rule: "policy-stands-alone", file: "policy/analyzer.ts", text: `import { render } from "../plan/render.ts";\nexport const r = render;\n`, to: "plan/render\\.ts" },
      { rule: "policy-stands-alone", file: "policy/usesAutomation.ts", text: `import type { service } from "../automation/service.ts";\nexport type S = typeof service;\n`, to: "automation/service\\.ts" },
      { rule: "policy-stands-alone", file: "policy/usesCli.ts", text: `import { main } from "../cli/main.ts";\nexport const m = main;\n`, to: "cli/main\\.ts" },
      { rule: "plan-below-automation-and-cli", file: "plan/usesCli.ts", text: `import { main } from "../cli/main.ts";\nexport const m = main;\n`, to: "cli/main\\.ts" },
      { rule: "plan-below-automation-and-cli", file: "plan/usesAutomation.ts", text: `import { service } from "../automation/service.ts";\nexport const s = service;\n`, to: "automation/service\\.ts" },
      { rule: "automation-never-imports-cli", file: "automation/operator.ts", text: `import { main } from "../cli/main.ts";\nexport const m = main;\n`, to: "cli/main\\.ts" },
    ];
    const files = Object.fromEntries(cases.map((c) => [c.file, c.text]));
    const r = await cruise(fixture({ ...BASE, ...files }));
    for (const c of cases) {
      expect(r.out).toMatch(new RegExp(`error ${c.rule}: ${c.file.replace(/\./g, "\\.")} → ${c.to}\n`));
    }
    // Exactly one violation per case: the imports above make no cycle, and no rule reports twice.
    expect(r.out).toContain(`x ${cases.length} dependency violations (${cases.length} errors, 0 warnings)`);
    expect(r.status).not.toBe(0);
  });

  it("pass on the real tree: no import crosses a layer upwards, no import cycle", async () => {
    const r = await cruise(REPO);
    expect(r.out).toMatch(/no dependency violations found \(\d+ modules, \d+ dependencies cruised\)/);
    expect(r.status).toBe(0);
  }, 120_000); // the whole tree: 4 s alone, 25 s seen on a loaded 2-core machine

  it("`npm run lint` fails on a forbidden import, and .ci/run runs it before the tests", async () => {
    const dir = fixture({ ...BASE, "automation/operator.ts": `import { main } from "../cli/main.ts";\nexport const m = main;\n` });
    const r = await new Promise<{ status: number | null; out: string }>((resolve) => {
      execFile("npm", ["run", "lint"], { cwd: dir, encoding: "utf8", timeout: 120_000 }, (err, stdout, stderr) => {
        resolve({ status: err ? (typeof err.code === "number" ? err.code : null) : 0, out: `${stdout}${stderr}` });
      });
    });
    expect(r.out).toMatch(/error automation-never-imports-cli: automation\/operator\.ts → cli\/main\.ts\n/);
    expect(r.status).not.toBe(0);
    const steps = readFileSync(join(REPO, ".ci/run"), "utf8").split("\n").map((l) => l.trim()).filter((l) => l !== "" && !l.startsWith("#"));
    expect(steps.indexOf("npm run lint")).toBeGreaterThan(-1);
    expect(steps.indexOf("npm run lint")).toBeLessThan(steps.indexOf("npm test"));
  }, 120_000); // npm's own start-up comes on top of the cruise

  it("no-circular fails an import cycle, also through type-only imports", async () => {
    const r = await cruise(fixture({
      ...BASE,
      "infra/stacks/cell.ts": `import type { Outputs } from "../program2.ts";\nexport const cell = (): Outputs => ({});\n`,
      "infra/program2.ts": `import { cell } from "./stacks/cell.ts";\nexport type Outputs = Record<string, unknown>;\nexport const p = cell;\n`,
    }));
    expect(r.out).toMatch(/error no-circular: infra\/(program2|stacks\/cell)\.ts →/);
    expect(r.status).not.toBe(0);
  });
});
