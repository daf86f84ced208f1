/**
 * The image's production layout, built and started for real (no docker engine here): the
 * Dockerfile's stages are performed in a temporary directory, following its own COPY, RUN, ENV,
 * WORKDIR, ENTRYPOINT and CMD instructions, and the control plane is started from the result.
 *
 *  - deps: the files it copies, then its RUN (`npm ci --omit=dev`) from the committed lockfile,
 *    `--offline` against this machine's npm cache (nothing is downloaded during the test);
 *  - build: the files it copies, then its `prepare` (bin/build-cli.mjs) and its checks. Its
 *    `npm ci` (every dependency, dev ones included, from the same lockfile) is not repeated: the
 *    project's own install is exactly that and is linked in;
 *  - pulumi: not performed (it downloads the CLI and the provider plugins); TENANCY_PULUMI_ROOT
 *    points at the Pulumi CLI test double instead, as docs/deploying.md says;
 *  - runtime: every COPY of the stage (the context's files filtered by .dockerignore, node_modules
 *    of deps, dist of build), the stage's ENV with its paths moved into the temporary directory,
 *    and ENTRYPOINT + CMD run as written, with a fresh PostgreSQL database as DATABASE_URL.
 *
 * So a package needed at run time that is only a devDependency, or a source file outside the
 * copied folders, makes this test fail. Besides starting the service, every bare import of the
 * copied sources is resolved from the image's node_modules (a lazily imported SDK is not loaded
 * at start-up), and the compiled tenantctl validates the fleet from the image.
 */
import { execFileSync, spawn, spawnSync } from "node:child_process";
import { chmodSync, cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, renameSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { dirname, join, relative } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { reachableTempDir, serverUser } from "../../automation/db/pgAccess.ts";
import { startTestPostgres, type TestPostgres } from "../automation/support/postgres.ts";
import { installFakePulumiBinary } from "../automation/support/fakePulumi.ts";
import { makeFixtureRepo } from "../automation/support/repo.ts";
import { listeningPortIn, PROJECT } from "../automation/crash/controlPlaneProcess.ts";
import { parseDockerfile, type Stage } from "./dockerfile.ts";

const { stages } = parseDockerfile(readFileSync(join(PROJECT, "Dockerfile"), "utf8"));
const stage = (name: string): Stage => {
  const s = stages.find((x) => x.name === name);
  if (!s) throw new Error(`Dockerfile has no stage ${name}`);
  return s;
};
const ops = (s: Stage, op: string) => s.body.filter((i) => i.op === op);

/** .dockerignore as Docker reads it: patterns relative to the context root (`*` within a name, `**` across). */
const ignored: RegExp[] = readFileSync(join(PROJECT, ".dockerignore"), "utf8")
  .split("\n")
  .map((l) => l.trim())
  .filter((l) => l && !l.startsWith("#"))
  .map((p) => new RegExp(`^${p.replace(/[.+^${}()|[\]\\]/g, "\\$&").replace(/\*\*/g, "<ANY>").replace(/\*/g, "[^/]*").replace(/\?/g, "[^/]").replace(/<ANY>/g, ".*")}(/.*)?$`));
const isIgnored = (rel: string) => ignored.some((r) => r.test(rel));

/** COPY from the build context: the source as Docker sends it (without what .dockerignore drops), mtimes kept. */
function copyFromContext(src: string, dest: string): void {
  if (isIgnored(src)) throw new Error(`COPY ${src}: excluded by .dockerignore`);
  const abs = join(PROJECT, src);
  if (!existsSync(abs)) throw new Error(`COPY ${src}: not in the build context`);
  mkdirSync(dirname(dest), { recursive: true });
  cpSync(abs, dest, { recursive: true, preserveTimestamps: true, filter: (from) => !isIgnored(relative(PROJECT, from)) });
}

/** A COPY instruction's sources and destination, relative to WORKDIR /app when not absolute. */
function parseCopy(args: string): { from?: string; sources: string[]; dest: string } {
  const words = args.split(/\s+/);
  const from = words.find((w) => w.startsWith("--from="))?.slice("--from=".length);
  const paths = words.filter((w) => !w.startsWith("--"));
  return { ...(from ? { from } : {}), sources: paths.slice(0, -1), dest: paths.at(-1)! };
}

/** Performs a stage's COPY instructions from the context (or `stages`, by name) into `dir` (its /app). */
function performCopies(s: Stage, dir: string, stageDirs: Record<string, string>, skipped: string[]): void {
  for (const ins of ops(s, "COPY")) {
    const { from, sources, dest } = parseCopy(ins.args);
    for (const src of sources) {
      const target = dest.endsWith("/") || sources.length > 1 ? join(dir, dest, src.split("/").at(-1)!) : dest.startsWith("/") ? join(dir, "..", dest) : join(dir, dest);
      if (from === undefined) copyFromContext(src, target);
      else if (stageDirs[from] && src.startsWith("/app/")) {
        // Moved, not copied: the stage's directory is not used again (node_modules is large).
        mkdirSync(dirname(target), { recursive: true });
        renameSync(join(stageDirs[from], src.slice("/app/".length)), target);
      } else skipped.push(`COPY ${ins.args}`);
    }
  }
}

const tmp = mkdtempSync(join(reachableTempDir(serverUser()), "tenancy-image-"));
chmodSync(tmp, 0o755);
const appDir = join(tmp, "app");
const depsDir = join(tmp, "deps", "app");
const buildDir = join(tmp, "build", "app");
const dataDir = join(tmp, "data");
const homeDir = join(tmp, "home");
const pulumiRoot = join(tmp, "opt-pulumi");
const nodeBin = dirname(process.execPath);
/** The machine's PATH with the pinned Node first (the image's node), nothing else from the test's environment. */
const basePath = `${nodeBin}:${process.env.PATH ?? "/usr/bin:/bin"}`;
let postgres: TestPostgres | undefined;
let fake: { dispose(): void } | undefined;
const skipped: string[] = [];

beforeAll(() => {
  // deps: `npm ci --omit=dev` from the committed lockfile, offline.
  performCopies(stage("deps"), depsDir, {}, skipped);
  const depsRun = ops(stage("deps"), "RUN").map((i) => i.args);
  expect(depsRun).toEqual(["npm ci --omit=dev --no-audit --no-fund"]);
  const ci = spawnSync("npm", ["ci", "--omit=dev", "--no-audit", "--no-fund", "--offline"], {
    cwd: depsDir, encoding: "utf8", env: { PATH: basePath, HOME: process.env.HOME ?? homeDir, npm_config_update_notifier: "false", ...(process.env.npm_config_cache ? { npm_config_cache: process.env.npm_config_cache } : {}) }, timeout: 540_000,
  });
  if (ci.status !== 0) throw new Error(`deps stage: npm ci --omit=dev --offline failed (exit ${ci.status}; the packages must be in the npm cache: run npm ci once):\n${ci.stdout}\n${ci.stderr}`);

  // build: its sources, the full install (the project's, same lockfile), `prepare`, its checks.
  performCopies(stage("build"), buildDir, {}, skipped);
  symlinkSync(join(PROJECT, "node_modules"), join(buildDir, "node_modules"), "dir");
  const prepare = (JSON.parse(readFileSync(join(buildDir, "package.json"), "utf8")) as { scripts: { prepare: string } }).scripts.prepare;
  execFileSync("sh", ["-c", prepare], { cwd: buildDir, env: { PATH: basePath, HOME: homeDir }, stdio: "pipe" });
  // The stage's own checks (`test -f ...` after npm ci).
  const checks = ops(stage("build"), "RUN").flatMap((i) => [...i.args.matchAll(/test -f (\S+)/g)].map((m) => m[1]!));
  expect(checks).toContain("dist/cli/manifest.json");
  for (const f of checks) expect(existsSync(join(buildDir, f)), `build stage: test -f ${f}`).toBe(true);

  // runtime: the stage's copies.
  performCopies(stage("runtime"), appDir, { deps: depsDir, build: buildDir }, skipped);
  mkdirSync(homeDir, { recursive: true });
  mkdirSync(dataDir, { recursive: true });
}, 600_000);

afterAll(async () => {
  fake?.dispose();
  await postgres?.stop();
  rmSync(tmp, { recursive: true, force: true });
});

/** The runtime stage's ENV, its image paths moved into the temporary directory. */
function runtimeEnv(): Record<string, string> {
  const env: Record<string, string> = {};
  for (const ins of ops(stage("runtime"), "ENV")) {
    for (const m of ins.args.matchAll(/(\w+)=(\S+)/g)) {
      env[m[1]!] = m[2]!
        .replace("$PATH", basePath)
        .replace(/^\/opt\/pulumi\b/, pulumiRoot)
        .replace(/^\/home\/tenancy/, homeDir)
        .replace(/^\/data/, dataDir);
    }
  }
  return env;
}

/** ENTRYPOINT + CMD of the runtime stage (exec form), /app moved to the temporary image. */
function command(): string[] {
  const exec = (op: string) => JSON.parse(ops(stage("runtime"), op)[0]!.args) as string[];
  return [...exec("ENTRYPOINT"), ...exec("CMD")].map((a) => a.replace(/^\/app\//, `${appDir}/`));
}

describe("the image's production layout", () => {
  it("holds what the runtime stage copies, node_modules without devDependencies, and only the Pulumi stage is left out", () => {
    const pkg = JSON.parse(readFileSync(join(PROJECT, "package.json"), "utf8")) as { dependencies: Record<string, string>; devDependencies: Record<string, string> };
    for (const dep of Object.keys(pkg.dependencies)) expect(existsSync(join(appDir, "node_modules", dep, "package.json")), dep).toBe(true);
    // A devDependency is absent unless a production package depends on it (esbuild: tsx's).
    const lock = JSON.parse(readFileSync(join(PROJECT, "package-lock.json"), "utf8")) as { packages: Record<string, { dev?: boolean }> };
    for (const dev of Object.keys(pkg.devDependencies)) {
      expect(existsSync(join(appDir, "node_modules", dev)), dev).toBe(lock.packages[`node_modules/${dev}`]?.dev !== true);
    }
    expect(existsSync(join(appDir, "node_modules", "vitest"))).toBe(false);
    expect(existsSync(join(appDir, "dist", "cli", "main.mjs"))).toBe(true);
    expect(existsSync(join(appDir, "test"))).toBe(false);
    expect(skipped).toEqual(["COPY --from=pulumi /opt/pulumi /opt/pulumi", "COPY --from=pulumi --chown=tenancy:tenancy /opt/pulumi-home /home/tenancy/.pulumi"]);
  });

  it("resolves every package the copied sources import from the image's node_modules", () => {
    const specifiers = new Set<string>();
    const walk = (dir: string): void => {
      for (const e of readdirSync(dir, { withFileTypes: true })) {
        const p = join(dir, e.name);
        if (e.isDirectory()) {
          if (e.name !== "node_modules") walk(p);
        } else if (/\.(ts|mjs|cjs|js)$/.test(e.name) && !/\.d\.ts$/.test(e.name)) {
          const text = readFileSync(p, "utf8");
          for (const m of text.matchAll(/^\s*(?:import|export)\s+(?!type\b)(?:[^'"]*?\sfrom\s+)?["']([^"'./][^"']*)["']|(?:import|require)\(\s*["']([^"'./][^"']*)["']\s*\)/gm)) {
            const spec = m[1] ?? m[2]!;
            if (!spec.startsWith("node:")) specifiers.add(spec);
          }
        }
      }
    };
    for (const dir of ["automation", "cli", "infra", "plan", "policy", "bin"]) walk(join(appDir, dir));
    expect(specifiers.size).toBeGreaterThan(20);
    const script = `const out = []; for (const s of JSON.parse(process.argv[1])) { try { import.meta.resolve(s); } catch (e) { out.push(s + ": " + e.code); } } console.log(JSON.stringify(out));`;
    const unresolved = (specs: readonly string[]) =>
      JSON.parse(execFileSync(process.execPath, ["--input-type=module", "-e", script, JSON.stringify(specs)], { cwd: appDir, encoding: "utf8", env: { PATH: basePath } })) as string[];
    expect(unresolved([...specifiers].sort())).toEqual([]);
    // Negative control: devDependencies do not resolve from the image (nothing above it lends them).
    expect(unresolved(["vitest", "fast-check"])).toEqual(["vitest: ERR_MODULE_NOT_FOUND", "fast-check: ERR_MODULE_NOT_FOUND"]);
  });

  it("starts the control plane with ENTRYPOINT and CMD as written: it clones the fleet, answers /healthz and checks API keys", async () => {
    postgres = await startTestPostgres();
    fake = installFakePulumiBinary(pulumiRoot, { stateDir: join(tmp, "pulumi-state") });
    mkdirSync(join(tmp, "fleet"));
    const fleet = makeFixtureRepo(join(tmp, "fleet"));
    const env = runtimeEnv();
    expect(env.NODE_ENV).toBe("production");
    expect(env.TENANCY_PULUMI_ROOT).toBe(pulumiRoot);

    // An API key hashed by the image's own command.
    const keysFile = join(dataDir, "api-keys.yaml");
    writeFileSync(keysFile, "keys: []\n");
    const [entrypoint, node, ...nodeArgs] = command();
    expect([node, ...nodeArgs]).toEqual(["node", "--import", "tsx", join(appDir, "automation", "main.ts")]);
    const hashed = execFileSync(node!, [...nodeArgs, "hash-api-key", "ci", "--scopes", "read,runs", "--keys-file", keysFile], {
      cwd: appDir, encoding: "utf8", env: { ...env, HOME: homeDir, TENANCY_APP_DIR: appDir, TENANCY_REPO_DIR: env.TENANCY_REPO_DIR! },
    });
    const key = /\b(tcp_[0-9a-f]{12}_[\w-]+)/.exec(hashed)?.[1];
    expect(key, hashed).toBeDefined();
    const prices = join(dataDir, "prices.yaml");
    writeFileSync(prices, "price_test_standard: standard\n");

    const child = spawn("sh", [entrypoint!, node!, ...nodeArgs], {
      cwd: appDir,
      env: {
        ...env,
        HOME: homeDir,
        TENANCY_APP_DIR: appDir,
        TENANCY_REPO_URL: fleet.dir,
        DATABASE_URL: await postgres.newDatabase(),
        STRIPE_WEBHOOK_SECRET: "whsec_production_layout_test",
        TENANCY_API_KEYS: keysFile,
        TENANCY_PRICE_TIERS: prices,
        TENANCY_LIFECYCLE_WORKER: "off",
        // Ports the system chooses (the `listening` line names the API's): one chosen free here
        // could be taken before the control plane binds it.
        PORT: "0",
        TENANCY_METRICS_PORT: "0",
      },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let out = "";
    child.stdout.on("data", (c: Buffer) => (out += c.toString()));
    child.stderr.on("data", (c: Buffer) => (out += c.toString()));
    const exited = new Promise<number | null>((r) => child.once("close", (code) => r(code)));
    let gone = false;
    void exited.then(() => (gone = true));
    let port: number | undefined;
    try {
      const deadline = Date.now() + 120_000;
      for (;;) {
        if (gone) throw new Error(`the control plane exited:\n${out.slice(-4000)}`);
        if (Date.now() > deadline) throw new Error(`not healthy in time:\n${out.slice(-4000)}`);
        port ??= listeningPortIn(out);
        if (port !== undefined && (await fetch(`http://127.0.0.1:${port}/healthz`).then((r) => r.status === 200, () => false))) break;
        await new Promise((r) => setTimeout(r, 250));
      }
      const unknownRun = `http://127.0.0.1:${port}/api/runs/00000000-0000-4000-8000-000000000000`;
      expect((await fetch(unknownRun, { headers: { "x-api-key": key! } })).status).toBe(404);
      expect((await fetch(unknownRun)).status).toBe(401);
      // The entrypoint cloned the fleet and linked the image's packages into the working copy.
      const repo = env.TENANCY_REPO_DIR!;
      expect(readFileSync(join(repo, "Pulumi.yaml"), "utf8")).toBe(readFileSync(join(fleet.dir, "Pulumi.yaml"), "utf8"));
      expect(execFileSync("readlink", [join(repo, "node_modules")], { encoding: "utf8" }).trim()).toBe(join(appDir, "node_modules"));
    } finally {
      if (!gone) child.kill("SIGTERM");
    }
    expect(await exited, out.slice(-3000)).toBe(0);
    expect(out).not.toMatch(/ERR_MODULE_NOT_FOUND|Cannot find (module|package)/);
  }, 240_000);

  it("runs the compiled tenantctl from the image: validate of the fleet's working copy", () => {
    const repo = runtimeEnv().TENANCY_REPO_DIR!;
    expect(existsSync(join(repo, "tenants")), "the previous test cloned the fleet").toBe(true);
    const r = spawnSync(process.execPath, [join(appDir, "bin", "tenantctl.mjs"), "validate"], { cwd: repo, encoding: "utf8", env: { ...runtimeEnv(), HOME: homeDir } });
    expect(r.stderr).not.toMatch(/ERR_MODULE_NOT_FOUND|Cannot find (module|package)/);
    expect(r.status, `${r.stdout}\n${r.stderr}`).toBe(0);
  });
});
