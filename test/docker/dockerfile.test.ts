/**
 * The image's production layout, checked statically (no docker engine can run here, and the
 * Pulumi CLI cannot be downloaded): the Dockerfile's stages, pinned versions against .nvmrc and
 * package-lock.json, the non-root user, the health check, no secret in ENV, every file it copies
 * present in the build context; and the entrypoint script run for real against a local git
 * repository. docs/deploying.md ("The image") says what was not executed.
 */
import { execFileSync, spawnSync } from "node:child_process";
import { existsSync, lstatSync, mkdirSync, mkdtempSync, readFileSync, readlinkSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { parseDockerfile, type Stage } from "./dockerfile.ts";

const ROOT = resolve(import.meta.dirname, "../..");

const dockerfile = readFileSync(join(ROOT, "Dockerfile"), "utf8");
const { globalArgs, stages } = parseDockerfile(dockerfile);
const stage = (name: string) => {
  const s = stages.find((x) => x.name === name);
  if (!s) throw new Error(`Dockerfile has no stage ${name}`);
  return s;
};
const ops = (s: Stage, op: string) => s.body.filter((i) => i.op === op);
const args = (s: Stage) => new Map(ops(s, "ARG").map((i) => [i.args.split("=")[0]!, i.args.split("=")[1]]));
const lock = JSON.parse(readFileSync(join(ROOT, "package-lock.json"), "utf8")) as { packages: Record<string, { version?: string }> };
const locked = (pkg: string) => lock.packages[`node_modules/${pkg}`]?.version;
const runtime = stages.at(-1)!;

const SECRET_NAME = /SECRET|PASSWORD|PASSPHRASE|TOKEN|KEY|DATABASE_URL|CREDENTIAL/;
const SECRET_VALUE = /whsec_|tcp_|sk_live|sk_test|AKIA|postgres(ql)?:\/\//;
/** ENV entries of a stage that look like secrets, by name or by value. */
function envProblems(s: Stage): string[] {
  return ops(s, "ENV")
    .flatMap((i) => [...i.args.matchAll(/(\w+)=(\S+)/g)])
    .filter((m) => SECRET_NAME.test(m[1]!) || SECRET_VALUE.test(m[2]!))
    .map((m) => `ENV ${m[1]} looks like a secret`);
}
/** The final stage's user: one USER, neither root nor uid/gid 0, nothing RUN after it. */
function userProblems(s: Stage): string[] {
  const users = ops(s, "USER");
  if (users.length !== 1) return [`${users.length} USER instructions in stage ${s.name}`];
  const out: string[] = [];
  for (const part of users[0]!.args.split(":")) if (/^(0|root)$/.test(part)) out.push(`USER ${users[0]!.args} is root`);
  if (s.body.slice(s.body.indexOf(users[0]!)).some((i) => i.op === "RUN")) out.push("RUN after USER runs as the service user");
  return out;
}
const tracked = new Set(execFileSync("git", ["ls-files"], { cwd: ROOT, encoding: "utf8" }).split("\n").filter(Boolean));
const dockerignore = readFileSync(join(ROOT, ".dockerignore"), "utf8").split("\n").map((l) => l.trim()).filter((l) => l && !l.startsWith("#"));
/** Sources of COPY (not --from) that are not in the repository or that .dockerignore drops. */
function copyProblems(all: readonly Stage[]): string[] {
  const out: string[] = [];
  for (const src of copySources(all)) {
    if (!tracked.has(src) && ![...tracked].some((f) => f.startsWith(`${src}/`))) out.push(`${src} is not a file or directory of the repository`);
    if (dockerignore.some((p) => p === src || src.startsWith(`${p}/`))) out.push(`${src} is excluded by .dockerignore`);
  }
  return out;
}
function copySources(all: readonly Stage[]): string[] {
  return all.flatMap((s) =>
    ops(s, "COPY")
      .filter((i) => !i.args.includes("--from="))
      .flatMap((i) => i.args.split(/\s+/).filter((a) => !a.startsWith("--")).slice(0, -1)),
  );
}

describe("Dockerfile: stages and pinned versions", () => {
  it("is multi-stage (build, deps, pulumi, runtime), every stage on the Node of .nvmrc", () => {
    expect(stages.map((s) => s.name)).toEqual(["build", "deps", "pulumi", "runtime"]);
    const nvmrc = readFileSync(join(ROOT, ".nvmrc"), "utf8").trim();
    expect(globalArgs.get("NODE_VERSION")).toBe(nvmrc);
    for (const s of stages) expect(s.from).toBe("node:${NODE_VERSION}-bookworm-slim");
  });

  it("pins the Pulumi CLI to the SDK of package-lock.json and the provider plugins to their packages", () => {
    expect(globalArgs.get("PULUMI_VERSION")).toBe(locked("@pulumi/pulumi"));
    const p = args(stage("pulumi"));
    expect(p.has("PULUMI_VERSION")).toBe(true);
    expect(p.get("PULUMI_AWS_VERSION")).toBe(locked("@pulumi/aws"));
    expect(p.get("PULUMI_POSTGRESQL_VERSION")).toBe(locked("@pulumi/postgresql"));
    expect(p.get("PULUMI_RANDOM_VERSION")).toBe(locked("@pulumi/random"));
    // Every resource provider package of the program has its plugin installed.
    const providers = Object.keys(lock.packages)
      .map((k) => /^node_modules\/@pulumi\/([a-z-]+)$/.exec(k)?.[1])
      .filter((n): n is string => n !== undefined && !["pulumi", "policy"].includes(n));
    expect(providers.sort()).toEqual(["aws", "postgresql", "random"]);
    const runs = ops(stage("pulumi"), "RUN").map((i) => i.args).join("\n");
    for (const name of providers) expect(runs, name).toContain(`plugin install resource ${name} "\${PULUMI_${name.toUpperCase()}_VERSION}"`);
  });

  it("verifies the CLI tarball against a checksum given at build time, with no default, before unpacking it", () => {
    const p = stage("pulumi");
    expect(args(p).has("PULUMI_SHA256")).toBe(true);
    expect(args(p).get("PULUMI_SHA256")).toBeUndefined();
    const runs = ops(p, "RUN").map((i) => i.args);
    const refuse = runs.findIndex((r) => r.includes('test -n "${PULUMI_SHA256}"'));
    const download = runs.findIndex((r) => r.startsWith("curl ") && r.includes("pulumi-v${PULUMI_VERSION}-linux-x64.tar.gz"));
    expect(refuse).toBeGreaterThanOrEqual(0);
    expect(download).toBeGreaterThan(refuse);
    const step = runs[download]!;
    expect(step.indexOf('echo "${PULUMI_SHA256}  /tmp/pulumi.tar.gz" | sha256sum -c -')).toBeGreaterThan(-1);
    expect(step.indexOf("sha256sum -c")).toBeLessThan(step.indexOf("tar -xzf"));
    expect(step).toContain('grep -qx "v${PULUMI_VERSION}"');
  });
});

describe("Dockerfile: what the runtime holds", () => {
  it("production dependencies from `npm ci --omit=dev`, the compiled CLI from the build stage", () => {
    expect(ops(stage("deps"), "RUN").map((i) => i.args)).toEqual(["npm ci --omit=dev --no-audit --no-fund"]);
    expect(ops(stage("build"), "RUN").map((i) => i.args).join(" ")).toMatch(/npm ci --no-audit --no-fund && test -f dist\/cli\/main\.mjs/);
    const fromCopies = ops(runtime, "COPY").filter((i) => i.args.includes("--from="));
    expect(fromCopies.map((i) => i.args)).toEqual([
      "--from=deps /app/node_modules node_modules",
      "--from=build /app/dist dist",
      "--from=pulumi /opt/pulumi /opt/pulumi",
      "--from=pulumi --chown=tenancy:tenancy /opt/pulumi-home /home/tenancy/.pulumi",
    ]);
    // Never the build stage's node_modules (dev dependencies).
    expect(fromCopies.some((i) => /--from=build\s+\S*node_modules/.test(i.args))).toBe(false);
  });

  it("runs as a non-root user created in the image, with a health check on /healthz", () => {
    expect(userProblems(runtime)).toEqual([]);
    const [uid] = ops(runtime, "USER")[0]!.args.split(":");
    expect(ops(runtime, "RUN").map((i) => i.args).join(" ")).toContain(`useradd --system --uid ${uid} --gid tenancy`);
    const hc = ops(runtime, "HEALTHCHECK");
    expect(hc).toHaveLength(1);
    expect(hc[0]!.args).toContain("/healthz");
    expect(ops(runtime, "EXPOSE").map((i) => i.args)).toEqual(["8080"]);
  });

  it("sets settings in ENV, never a secret", () => {
    const env = ops(runtime, "ENV")
      .flatMap((i) => [...i.args.matchAll(/(\w+)=(\S+)/g)])
      .map((m) => [m[1]!, m[2]!] as const);
    expect(env.map(([k]) => k)).toEqual(["NODE_ENV", "PATH", "PULUMI_HOME", "TENANCY_PULUMI_ROOT", "TENANCY_DATA_DIR", "TENANCY_REPO_DIR", "PORT"]);
    expect(env.find(([k]) => k === "TENANCY_PULUMI_ROOT")).toEqual(["TENANCY_PULUMI_ROOT", "/opt/pulumi"]);
    for (const s of stages) expect(envProblems(s)).toEqual([]);
    // Neither in ARG: build arguments end up in the image history.
    for (const s of stages) for (const k of args(s).keys()) expect(k).not.toMatch(/SECRET|PASSWORD|TOKEN|DATABASE_URL/);
  });

  it("copies only files of the repository that the build context (.dockerignore) keeps", () => {
    const sources = copySources(stages);
    expect(sources.length).toBeGreaterThan(10);
    expect(copyProblems(stages)).toEqual([]);
    // What the build needs and the runtime starts.
    expect(sources).toEqual(expect.arrayContaining(["package.json", "package-lock.json", "policy/package.json", "bin/build-cli.mjs", "Pulumi.yaml", "docker/entrypoint.sh"]));
    const entrypoint = JSON.parse(ops(runtime, "ENTRYPOINT")[0]!.args) as string[];
    const cmd = JSON.parse(ops(runtime, "CMD")[0]!.args) as string[];
    expect(entrypoint).toEqual(["/app/docker/entrypoint.sh"]);
    // One process: the tsx command would relay ECS's SIGTERM and SIGKILL the control plane when it
    // is not acknowledged within 30 ms (automation/main.ts), cutting its orderly stop short.
    expect(cmd).toEqual(["node", "--import", "tsx", "/app/automation/main.ts"]);
    expect(existsSync(join(ROOT, "automation/main.ts"))).toBe(true);
    expect(statSync(join(ROOT, "docker/entrypoint.sh")).mode & 0o111).not.toBe(0);
    expect(execFileSync("git", ["ls-files", "-s", "docker/entrypoint.sh"], { cwd: ROOT, encoding: "utf8" })).toMatch(/^100755 /);
    // tsx, which runs the control plane, is a production dependency.
    const pkg = JSON.parse(readFileSync(join(ROOT, "package.json"), "utf8")) as { dependencies: Record<string, string> };
    expect(Object.keys(pkg.dependencies)).toContain("tsx");
  });

  it("each check fires on a Dockerfile that breaks it (negative controls)", () => {
    const bad = parseDockerfile(
      "ARG NODE_VERSION=1\nFROM node:x AS runtime\nCOPY package.json missing.txt node_modules ./\n" +
        "ENV STRIPE_WEBHOOK_SECRET=x \\\n    DB=postgres://u:p@h/db PORT=1\nUSER root\nRUN true\n",
    );
    expect(bad.stages[0]!.body.map((i) => i.op)).toEqual(["COPY", "ENV", "USER", "RUN"]);
    expect(copyProblems(bad.stages)).toEqual(["missing.txt is not a file or directory of the repository", "node_modules is not a file or directory of the repository", "node_modules is excluded by .dockerignore"]);
    expect(envProblems(bad.stages[0]!)).toEqual(["ENV STRIPE_WEBHOOK_SECRET looks like a secret", "ENV DB looks like a secret"]);
    expect(userProblems(bad.stages[0]!)).toEqual(["USER root is root", "RUN after USER runs as the service user"]);
  });
});

describe("docker/entrypoint.sh (run here with sh and git)", () => {
  const tmp = mkdtempSync(join(tmpdir(), "tenancy-entrypoint-"));
  afterAll(() => rmSync(tmp, { recursive: true, force: true }));
  const git = (cwd: string, ...a: string[]) => execFileSync("git", a, { cwd, encoding: "utf8", env: { ...process.env, GIT_AUTHOR_NAME: "t", GIT_AUTHOR_EMAIL: "t@test.invalid", GIT_COMMITTER_NAME: "t", GIT_COMMITTER_EMAIL: "t@test.invalid" } });
  const run = (env: Record<string, string>, ...cmd: string[]) =>
    spawnSync("sh", [join(ROOT, "docker/entrypoint.sh"), ...cmd], { env: { PATH: process.env.PATH ?? "", HOME: tmp, ...env }, encoding: "utf8" });

  it("clones the fleet repository into an empty TENANCY_REPO_DIR, links the image's node_modules out of git status, then runs the command", () => {
    const origin = join(tmp, "origin");
    mkdirSync(origin);
    git(origin, "init", "--quiet", "--initial-branch=main");
    execFileSync("sh", ["-c", "printf 'node_modules/\\n' > .gitignore && echo fleet > Pulumi.yaml"], { cwd: origin });
    git(origin, "add", "--all");
    git(origin, "commit", "--quiet", "-m", "fleet");
    const app = join(tmp, "app");
    mkdirSync(join(app, "node_modules"), { recursive: true });
    const repo = join(tmp, "data", "repo");
    const env = { TENANCY_APP_DIR: app, TENANCY_REPO_DIR: repo, TENANCY_REPO_URL: origin, TENANCY_GIT_BRANCH: "main" };
    const first = run(env, "sh", "-c", "echo started in $TENANCY_REPO_DIR");
    expect(first.stderr).toBe("");
    expect({ status: first.status, stdout: first.stdout }).toEqual({ status: 0, stdout: `started in ${repo}\n` });
    expect(readFileSync(join(repo, "Pulumi.yaml"), "utf8")).toBe("fleet\n");
    expect(lstatSync(join(repo, "node_modules")).isSymbolicLink()).toBe(true);
    expect(readlinkSync(join(repo, "node_modules"))).toBe(join(app, "node_modules"));
    expect(git(repo, "status", "--porcelain")).toBe("");
    // A restart keeps the working copy (and what the control plane committed to it).
    execFileSync("sh", ["-c", "echo local > local.txt"], { cwd: repo });
    git(repo, "add", "local.txt");
    git(repo, "commit", "--quiet", "-m", "local change");
    const second = run(env, "true");
    expect(second.status).toBe(0);
    expect(git(repo, "log", "--format=%s")).toBe("local change\nfleet\n");
    expect(readFileSync(join(repo, ".git/info/exclude"), "utf8").split("\n").filter((l) => l === "/node_modules")).toHaveLength(1);
  });

  it("refuses to start without a working copy or a URL to clone, saying what to set", () => {
    const r = run({ TENANCY_REPO_DIR: join(tmp, "nowhere") }, "true");
    expect(r.status).toBe(64);
    expect(r.stderr).toBe(
      `entrypoint: ${join(tmp, "nowhere")} is not a git working copy and TENANCY_REPO_URL is not set; set TENANCY_REPO_URL to the fleet repository's URL (cloned into ${join(tmp, "nowhere")} on start) or mount a working copy at ${join(tmp, "nowhere")}\n`,
    );
  });
});
