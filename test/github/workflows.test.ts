import { spawn, spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { join, resolve } from "node:path";
import type { Command } from "commander";
import { describe, expect, it } from "vitest";
import { parse } from "yaml";
import { bufferIo } from "../../cli/io.ts";
import { buildProgram } from "../../cli/main.ts";

const ROOT = resolve(import.meta.dirname, "../..");
const WORKFLOWS = join(ROOT, ".github", "workflows");
const SCRIPTS = join(ROOT, ".github", "scripts");

interface Step {
  id?: string;
  name?: string;
  if?: string;
  uses?: string;
  run?: string;
  with?: Record<string, unknown>;
  env?: Record<string, string>;
}
interface Job {
  if?: string;
  needs?: string | string[];
  "runs-on"?: string;
  permissions?: Record<string, string>;
  strategy?: { matrix?: Record<string, unknown>; "fail-fast"?: boolean };
  concurrency?: { group: string; "cancel-in-progress": boolean };
  env?: Record<string, string>;
  outputs?: Record<string, string>;
  steps: Step[];
}
interface Workflow {
  name: string;
  on: Record<string, { paths?: string[]; branches?: string[] }>;
  permissions?: Record<string, string>;
  jobs: Record<string, Job>;
}

const files = readdirSync(WORKFLOWS).filter((f) => /\.ya?ml$/.test(f)).sort();
const workflows = new Map<string, Workflow>(files.map((f) => [f, parse(readFileSync(join(WORKFLOWS, f), "utf8")) as Workflow]));
const pkg = JSON.parse(readFileSync(join(ROOT, "package.json"), "utf8")) as { scripts: Record<string, string> };
const program = buildProgram(bufferIo(), () => {});

const w0 = () => workflows.get("tenant-deploy.yml")!;

function steps(w: Workflow): Step[] {
  return Object.values(w.jobs).flatMap((j) => j.steps);
}

/** Shell words of a command line, quotes removed (enough for the workflows' own lines). */
function words(line: string): string[] {
  return [...line.matchAll(/"([^"]*)"|'([^']*)'|(\S+)/g)].map((m) => m[1] ?? m[2] ?? m[3]!);
}

function findCommand(root: Command, args: string[]): { cmd: Command; rest: string[] } {
  let cmd = root;
  let rest = args;
  for (;;) {
    const next = rest[0];
    const sub = next === undefined ? undefined : cmd.commands.find((c) => c.name() === next);
    if (!sub) return { cmd, rest };
    cmd = sub;
    rest = rest.slice(1);
  }
}

describe("the GitHub workflows", () => {
  it("are the two expected files and parse as YAML", () => {
    expect(files).toEqual(["tenant-deploy.yml", "tenant-pr.yml"]);
    for (const [f, w] of workflows) {
      expect(w.name, f).toBeTruthy();
      expect(Object.keys(w.jobs).length, f).toBeGreaterThan(0);
      for (const s of steps(w)) expect(s.uses !== undefined || s.run !== undefined, `${f}: ${JSON.stringify(s)}`).toBe(true);
    }
  });

  it("call only npm scripts that package.json has, and tenantctl commands and options that exist (workflows and their scripts)", () => {
    const seen: string[] = [];
    const scripts = readdirSync(SCRIPTS).filter((f) => f.endsWith(".sh")).map((f) => [`.github/scripts/${f}`, readFileSync(join(SCRIPTS, f), "utf8")] as const);
    const sources: (readonly [string, string])[] = [...[...workflows].flatMap(([f, w]) => steps(w).map((s) => [f, s.run ?? ""] as const)), ...scripts];
    for (const [f, text] of sources) {
      {
        for (const line of text.split("\n")) {
          for (const m of line.matchAll(/npm run ([\w:-]+)/g)) {
            expect(pkg.scripts, `${f}: npm run ${m[1]}`).toHaveProperty(m[1]!);
            seen.push(`npm run ${m[1]}`);
          }
          if (/\bnpm test\b/.test(line)) expect(pkg.scripts, `${f}: npm test`).toHaveProperty("test");
          const at = line.indexOf("npx tenantctl ");
          if (at < 0) continue;
          const args = words(line.slice(at + "npx tenantctl ".length).split(/\s[|>&;]/)[0]!);
          const { cmd, rest } = findCommand(program, args);
          expect(cmd, `${f}: ${line.trim()}`).not.toBe(program);
          const longs = cmd.options.map((o) => o.long);
          for (const flag of rest.filter((a) => a.startsWith("--"))) expect(longs, `${f}: tenantctl ${cmd.name()} ${flag}`).toContain(flag.split("=")[0]);
          seen.push(`tenantctl ${cmd.name()}`);
        }
      }
    }
    // The checks above looked at real lines (a regex that never matches would pass vacuously).
    expect(new Set(seen)).toEqual(new Set(["npm run typecheck", "tenantctl validate", "tenantctl affected", "tenantctl plan", "tenantctl rollout"]));
  });

  it("pin actions to a major version and reference files that exist", () => {
    for (const [f, w] of workflows) {
      for (const s of steps(w)) {
        if (s.uses) expect(s.uses, f).toMatch(/^[\w.-]+\/[\w.-]+@v\d+$/);
        for (const m of JSON.stringify(s).matchAll(/\.\/(\.github\/[\w./-]+)/g)) expect(existsSync(join(ROOT, m[1]!)), `${f}: ${m[1]}`).toBe(true);
      }
    }
  });

  it("set up the Node of .nvmrc (the project needs Node 24: package.json engines), never a version of their own", () => {
    const setups = [...workflows].flatMap(([f, w]) => steps(w).filter((s) => s.uses?.startsWith("actions/setup-node@")).map((s) => [f, s.with ?? {}] as const));
    expect(setups.length).toBeGreaterThan(0);
    for (const [f, w] of setups) {
      expect(w["node-version-file"], f).toBe(".nvmrc");
      expect(w["node-version"], f).toBeUndefined();
    }
    expect(readFileSync(join(ROOT, ".nvmrc"), "utf8").trim()).toMatch(/^24\./);
  });

  it("never use secrets in if: conditions (GitHub rejects them there); they go through env", () => {
    for (const [f, w] of workflows) {
      for (const j of Object.values(w.jobs)) {
        for (const cond of [j.if, ...j.steps.map((s) => s.if)]) if (cond) expect(cond, f).not.toMatch(/secrets\./);
      }
    }
  });

  it("tenant-pr: pull requests touching tenants, stacks, infra or policy; validate, tests, plan --base as one sticky comment", () => {
    const w = workflows.get("tenant-pr.yml")!;
    expect(w.on.pull_request!.paths).toEqual(expect.arrayContaining(["tenants/**", "stacks/**", "infra/**", "policy/**"]));
    const plan = w.jobs.plan!;
    expect(plan.steps.find((s) => s.uses === "actions/checkout@v4")!.with).toEqual({ "fetch-depth": 0 });
    const runs = plan.steps.map((s) => s.run ?? "").join("\n");
    for (const needed of ["npm ci", 'npx tenantctl validate --base "origin/$BASE_REF"', "npm test", 'npx tenantctl plan --base "origin/$BASE_REF" --markdown plan.md']) expect(runs).toContain(needed);
    const sticky = plan.steps.find((s) => s.uses === "actions/github-script@v7")!;
    expect(String(sticky.with!.script)).toContain("sticky-comment.cjs");
    expect(plan.permissions).toEqual({ contents: "read", "pull-requests": "write" });
  });

  it("tenant-pr: pulumi preview --policy-pack ./policy per affected stack, skipped with a notice without credentials", () => {
    const preview = workflows.get("tenant-pr.yml")!.jobs.preview!;
    expect(preview.needs).toBe("plan");
    expect(preview.strategy!.matrix!.stack).toBe("${{ fromJSON(needs.plan.outputs.stacks) }}");
    expect(preview.permissions!["id-token"]).toBe("write");
    const pulumi = preview.steps.find((s) => s.uses?.startsWith("pulumi/actions@"))!;
    expect(pulumi.with).toMatchObject({ command: "preview", policyPacks: "./policy" });
    expect(pulumi.if).toBe("env.HAS_CLOUD == 'true'");
    expect(preview.steps.find((s) => s.uses?.startsWith("aws-actions/configure-aws-credentials@"))!.with!["role-to-assume"]).toBe("${{ vars.AWS_ROLE_ARN }}");
    const skip = preview.steps.find((s) => s.if === "env.HAS_CLOUD != 'true'")!;
    expect(skip.run).toMatch(/::notice title=pulumi preview skipped/);
    expect(preview.env!.HAS_CLOUD).toContain("secrets.PULUMI_ACCESS_TOKEN");
  });

  it("tenant-deploy: program changes as one rollout followed to its end, tenant-only changes straight to their stacks; no job matrix; no pulumi on the hosted runner", () => {
    const w = workflows.get("tenant-deploy.yml")!;
    expect(w.on.push!.branches).toEqual(["main"]);
    // No job matrix anywhere: GitHub caps a matrix at 256 jobs, the fleet is larger.
    for (const job of Object.values(w.jobs)) expect(job.strategy).toBeUndefined();
    expect(Object.keys(w.jobs).sort()).toEqual(["affected", "rollout", "runs"]);
    const affected = w.jobs.affected!;
    const detect = affected.steps.map((s) => s.run ?? "").join("\n");
    expect(detect).toContain('npx tenantctl affected --base "$base" --head HEAD --json');
    expect(detect).toContain(`program=$(jq -r '.program' affected.json)`);
    expect(affected.outputs).toMatchObject({ program: "${{ steps.affected.outputs.program }}", stacks: "${{ steps.affected.outputs.stacks }}" });

    const rollout = w.jobs.rollout!;
    expect(rollout.needs).toBe("affected");
    expect(rollout.if).toBe("needs.affected.outputs.program == 'true'");
    expect(rollout.concurrency).toEqual({ group: "tenancy-rollout", "cancel-in-progress": false });
    const start = rollout.steps.find((s) => s.run?.includes("control-plane-rollout.sh"))!;
    expect(start.run).toBe('.github/scripts/control-plane-rollout.sh "$GITHUB_SHA"');
    expect(start.env).toMatchObject({ TENANCY_URL: "${{ vars.TENANCY_URL }}", TENANCY_API_KEY: "${{ secrets.TENANCY_API_KEY }}" });
    expect(start.if).toBe("env.HAS_CONTROL_PLANE == 'true'");
    expect(readFileSync(join(SCRIPTS, "control-plane-rollout.sh"), "utf8")).toContain('npx tenantctl rollout start --name "$name" --commit "$commit" --follow');
    expect(rollout.steps.map((s) => s.run ?? "")).toContain("npm ci"); // tenantctl is the project's

    const runs = w.jobs.runs!;
    expect(runs.if).toBe("needs.affected.outputs.program != 'true' && needs.affected.outputs.stacks != '' && needs.affected.outputs.stacks != '[]'");
    const call = runs.steps.find((s) => s.run?.includes("control-plane-run.sh"))!;
    expect(call.run).toBe(`jq -r '.[]' <<<"$STACKS" | xargs .github/scripts/control-plane-run.sh`);
    expect(call.env).toEqual({ TENANCY_URL: "${{ vars.TENANCY_URL }}", TENANCY_API_KEY: "${{ secrets.TENANCY_API_KEY }}", STACKS: "${{ needs.affected.outputs.stacks }}" });
    expect(call.if).toBe("env.HAS_CONTROL_PLANE == 'true'");

    // Nothing on the hosted runner runs Pulumi or holds cloud credentials.
    for (const job of Object.values(w.jobs)) {
      for (const st of job.steps) {
        expect(st.uses ?? "").not.toMatch(/^pulumi\/actions@|^aws-actions\/configure-aws-credentials@/);
        expect(st.run ?? "").not.toMatch(/^\s*(npx )?pulumi\s/m);
      }
      expect(job.permissions?.["id-token"]).toBeUndefined();
    }
    // Removed stacks are reported, never destroyed.
    expect(JSON.stringify(w)).not.toMatch(/command: destroy|"command":"destroy"/);
  });

  it("tenant-deploy: the affected step's decision, run on real `affected --json` documents", () => {
    const step = w0().jobs.affected!.steps.find((s) => s.id === "affected")!;
    const script = step.run!.slice(step.run!.indexOf("program=$("));
    const decide = (doc: unknown) => {
      const dir = mkdtempSync(join(tmpdir(), "deploy-decide-"));
      try {
        writeFileSync(join(dir, "affected.json"), JSON.stringify(doc));
        const out = join(dir, "out");
        writeFileSync(out, "");
        spawnSync("bash", ["-euo", "pipefail", "-c", script], { cwd: dir, env: { PATH: process.env.PATH, GITHUB_OUTPUT: out } });
        return Object.fromEntries(readFileSync(out, "utf8").trim().split("\n").map((l) => l.split(/=(.*)/s).slice(0, 2)));
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    };
    const details = [{ name: "shared-prod-use1-01", inHead: true }, { name: "dedicated-gone-staging", inHead: false }, { name: "shared-staging-use1-01", inHead: true }];
    expect(decide({ program: false, programPaths: [], details })).toEqual({ program: "false", prod: "true", stacks: '["shared-prod-use1-01","shared-staging-use1-01"]' });
    expect(decide({ program: true, programPaths: ["infra/program.ts"], details })).toEqual({ program: "true", prod: "true", stacks: "[]" });
    expect(decide({ program: false, programPaths: [], details: [details[2]] })).toEqual({ program: "false", prod: "false", stacks: '["shared-staging-use1-01"]' });
    // A dedicated prod stack ends in -prod; a cell has its env in the middle; platform stacks are production.
    for (const name of ["dedicated-acme-prod", "platform-us-east-1"]) expect(decide({ program: false, programPaths: [], details: [{ name, inHead: true }] }).prod).toBe("true");
    expect(decide({ program: false, programPaths: [], details: [{ name: "dedicated-prodco-staging", inHead: true }] }).prod).toBe("false");
  });
});

/**
 * The deploy script against a stand-in for the control plane's two routes (the shapes of
 * automation/http/routes/stacks.ts and runs.ts: `{ run: { id, state, error } }`), so the job's
 * exit status is checked, not assumed.
 */
describe("control-plane-run.sh", () => {
  const script = join(ROOT, ".github/scripts/control-plane-run.sh");

  async function runAgainst(states: Array<{ state: string; error?: string }>, stack = "dedicated-acme-prod", postStatus = 202) {
    const seen: string[] = [];
    let polls = 0;
    const server = createServer((req, res) => {
      seen.push(`${req.method} ${req.url} key=${String(req.headers["x-api-key"])}`);
      res.setHeader("content-type", "application/json");
      if (req.method === "POST" && req.url === `/api/stacks/${stack}/runs`) {
        res.statusCode = postStatus;
        res.end(JSON.stringify(postStatus === 202 ? { run: { id: "run-1", state: "queued" }, coalesced: false } : { error: "no stack file stacks/Pulumi.x.yaml on main" }));
        return;
      }
      if (req.method === "GET" && req.url === "/api/runs/run-1") {
        const s = states[Math.min(polls++, states.length - 1)]!;
        res.end(JSON.stringify({ run: { id: "run-1", stack, ...s } }));
        return;
      }
      res.statusCode = 404;
      res.end("{}");
    });
    await new Promise<void>((ok) => server.listen(0, "127.0.0.1", ok));
    const port = (server.address() as AddressInfo).port;
    try {
      const result = await new Promise<{ code: number | null; out: string }>((ok) => {
        const child = spawn("bash", [script, stack], {
          env: { PATH: process.env.PATH, TENANCY_URL: `http://127.0.0.1:${port}`, TENANCY_API_KEY: "k-123", POLL_SECONDS: "0", MAX_POLLS: "10" },
        });
        let out = "";
        child.stdout.on("data", (d: Buffer) => (out += d.toString()));
        child.stderr.on("data", (d: Buffer) => (out += d.toString()));
        child.on("close", (code) => ok({ code, out }));
      });
      return { ...result, seen };
    } finally {
      server.close();
    }
  }

  it("queues the stack's run, follows it, and exits 0 when it succeeds", async () => {
    const r = await runAgainst([{ state: "queued" }, { state: "running" }, { state: "succeeded" }]);
    expect(r.code).toBe(0);
    expect(r.seen).toEqual([
      "POST /api/stacks/dedicated-acme-prod/runs key=k-123",
      "GET /api/runs/run-1 key=k-123",
      "GET /api/runs/run-1 key=k-123",
      "GET /api/runs/run-1 key=k-123",
    ]);
    expect(r.out).toContain("run run-1 (dedicated-acme-prod): succeeded");
  });

  it("exits 1 with the run's error when the run fails", async () => {
    const r = await runAgainst([{ state: "running" }, { state: "failed", error: "policy violation: no-public-ingress" }]);
    expect(r.code).toBe(1);
    expect(r.out).toContain("::error title=dedicated-acme-prod: run run-1 failed::policy violation: no-public-ingress");
  });

  it("exits 1 when the control plane refuses the run, and when the run never ends", async () => {
    const refused = await runAgainst([], "dedicated-acme-prod", 404);
    expect(refused.code).toBe(1);
    expect(refused.out).toContain("::error title=dedicated-acme-prod: not queued::");
    expect(refused.out).toContain("no stack file");
    const stuck = await runAgainst([{ state: "running" }]);
    expect(stuck.code).toBe(1);
    expect(stuck.out).toContain("still running after 0 s");
  });
});

/** A stand-in control plane: `routes` answers by "METHOD path"; every request is recorded. */
async function withStandIn<T>(
  routes: (key: string, n: number) => { status?: number; body: unknown } | undefined,
  fn: (url: string, seen: string[], bodies: unknown[]) => Promise<T>,
): Promise<T> {
  const seen: string[] = [];
  const bodies: unknown[] = [];
  const counts = new Map<string, number>();
  const server = createServer((req, res) => {
    const key = `${req.method} ${req.url}`;
    let text = "";
    req.on("data", (d: Buffer) => (text += d.toString()));
    req.on("end", () => {
      if (text) bodies.push(JSON.parse(text));
    });
    seen.push(key);
    const n = counts.get(key) ?? 0;
    counts.set(key, n + 1);
    const answer = routes(key, n);
    res.setHeader("content-type", "application/json");
    res.statusCode = answer?.status ?? (answer ? 200 : 404);
    res.end(JSON.stringify(answer?.body ?? { error: { message: `no route ${key}` } }));
  });
  await new Promise<void>((ok) => server.listen(0, "127.0.0.1", ok));
  try {
    return await fn(`http://127.0.0.1:${(server.address() as AddressInfo).port}`, seen, bodies);
  } finally {
    server.close();
  }
}

function runScript(script: string, args: string[], env: Record<string, string>): Promise<{ code: number | null; out: string }> {
  return new Promise((ok) => {
    const child = spawn("bash", [join(ROOT, ".github/scripts", script), ...args], { cwd: ROOT, env: { PATH: process.env.PATH, HOME: process.env.HOME ?? "/tmp", ...env } });
    let out = "";
    child.stdout.on("data", (d: Buffer) => (out += d.toString()));
    child.stderr.on("data", (d: Buffer) => (out += d.toString()));
    child.on("close", (code) => ok({ code, out }));
  });
}

describe("control-plane-run.sh with several stacks (a tenant-only change)", () => {
  it("queues every stack first, follows all runs, and exits 1 naming the failed one while the others are followed to success", async () => {
    const states: Record<string, string[]> = { "run-a": ["running", "succeeded"], "run-b": ["running", "running", "failed"] };
    const r = await withStandIn(
      (key, n) => {
        const post = /^POST \/api\/stacks\/(shared-prod-use1-01|dedicated-acme-prod)\/runs$/.exec(key);
        if (post) return { status: 202, body: { run: { id: post[1] === "shared-prod-use1-01" ? "run-a" : "run-b", state: "queued" }, coalesced: false } };
        const get = /^GET \/api\/runs\/(run-[ab])$/.exec(key);
        if (!get) return undefined;
        const list = states[get[1]!]!;
        const state = list[Math.min(n, list.length - 1)]!;
        return { body: { run: { id: get[1], state, ...(state === "failed" ? { error: "policy violation: no-public-ingress" } : {}) } } };
      },
      async (url, seen) => ({ ...(await runScript("control-plane-run.sh", ["shared-prod-use1-01", "dedicated-acme-prod"], { TENANCY_URL: url, TENANCY_API_KEY: "k", POLL_SECONDS: "0", MAX_POLLS: "10" })), seen }),
    );
    expect(r.code).toBe(1);
    expect(r.seen.slice(0, 2)).toEqual(["POST /api/stacks/shared-prod-use1-01/runs", "POST /api/stacks/dedicated-acme-prod/runs"]);
    expect(r.seen.filter((s) => s === "GET /api/runs/run-a")).toHaveLength(2);
    expect(r.seen.filter((s) => s === "GET /api/runs/run-b")).toHaveLength(3);
    expect(r.out).toContain("run run-a (shared-prod-use1-01): succeeded");
    expect(r.out).toContain("::error title=dedicated-acme-prod: run run-b failed::policy violation: no-public-ingress");
  });
});

describe("control-plane-rollout.sh (a program change)", () => {
  const view = (state: string, haltReason: string | null = null) => ({
    rollout: { id: "r-1", name: "infra: bump", commit: "a".repeat(40), state, wave: 1, haltReason, waves: [] },
    waves: [
      { index: 0, ring: "non-prod", parallelism: 8, failureBudgetPercent: 0, counts: { succeeded: 2 }, stacks: [] },
      { index: 1, ring: "canary", parallelism: 3, failureBudgetPercent: 0, counts: state === "halted" ? { failed: 1 } : { succeeded: 3 }, stacks: [] },
    ],
  });

  async function rollout(endState: string, haltReason: string | null = null) {
    return withStandIn(
      (key) => {
        if (key === "POST /api/rollouts") return { status: 201, body: view("running") };
        if (key === "GET /api/rollouts/r-1") return { body: view(endState, haltReason) };
        return undefined;
      },
      async (url, seen, bodies) => ({ ...(await runScript("control-plane-rollout.sh", ["a".repeat(40)], { TENANCY_URL: url, TENANCY_API_KEY: "k", ROLLOUT_NAME: "infra: bump\n\nlong body" })), seen, bodies }),
    );
  }

  it("starts one rollout of the commit through tenantctl and exits 0 when it succeeded", async () => {
    const r = await rollout("succeeded");
    expect(r.seen).toEqual(["POST /api/rollouts", "GET /api/rollouts/r-1"]);
    expect(r.bodies).toEqual([{ name: "infra: bump", commit: "a".repeat(40) }]); // the message's first line
    expect(r.out).toContain(`rollout r-1 "infra: bump" at ${"a".repeat(12)}: succeeded`);
    expect(r.code).toBe(0);
  }, 60_000);

  it("exits 1 when the rollout halts (a canary failure), printing why", async () => {
    const r = await rollout("halted", "wave 2 (canary): 1 failed, budget 0");
    expect(r.out).toContain("halted: wave 2 (canary): 1 failed, budget 0");
    expect(r.code).toBe(1);
  }, 60_000);
});
