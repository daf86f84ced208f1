import { spawn } from "node:child_process";
import { existsSync, readdirSync, readFileSync } from "node:fs";
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

interface Step {
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

  it("call only npm scripts that package.json has, and tenantctl commands and options that exist", () => {
    const seen: string[] = [];
    for (const [f, w] of workflows) {
      for (const s of steps(w)) {
        for (const line of (s.run ?? "").split("\n")) {
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
    expect(new Set(seen)).toEqual(new Set(["npm run typecheck", "tenantctl validate", "tenantctl affected", "tenantctl plan"]));
  });

  it("pin actions to a major version and reference files that exist", () => {
    for (const [f, w] of workflows) {
      for (const s of steps(w)) {
        if (s.uses) expect(s.uses, f).toMatch(/^[\w.-]+\/[\w.-]+@v\d+$/);
        for (const m of JSON.stringify(s).matchAll(/\.\/(\.github\/[\w./-]+)/g)) expect(existsSync(join(ROOT, m[1]!)), `${f}: ${m[1]}`).toBe(true);
      }
    }
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
    for (const needed of ["npm ci", "npx tenantctl validate", "npm test", 'npx tenantctl plan --base "origin/$BASE_REF" --markdown plan.md']) expect(runs).toContain(needed);
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

  it("tenant-deploy: on push to main, each affected stack handed to the control plane, one job each, never two at once per stack; no pulumi on the hosted runner", () => {
    const w = workflows.get("tenant-deploy.yml")!;
    expect(w.on.push!.branches).toEqual(["main"]);
    const run = w.jobs.run!;
    expect(run["runs-on"]).toBe("ubuntu-latest");
    expect(run.strategy!.matrix!.stack).toBe("${{ fromJSON(needs.affected.outputs.stacks) }}");
    expect(run.strategy!["fail-fast"]).toBe(false);
    expect(run.concurrency).toEqual({ group: "pulumi-${{ matrix.stack }}", "cancel-in-progress": false });
    const call = run.steps.find((s) => s.run?.includes("control-plane-run.sh"))!;
    expect(call.run).toBe('.github/scripts/control-plane-run.sh "${{ matrix.stack }}"');
    expect(call.env).toEqual({ TENANCY_URL: "${{ vars.TENANCY_URL }}", TENANCY_API_KEY: "${{ secrets.TENANCY_API_KEY }}" });
    expect(call.if).toBe("env.HAS_CONTROL_PLANE == 'true'");
    expect(existsSync(join(ROOT, ".github/scripts/control-plane-run.sh"))).toBe(true);
    // Nothing on the hosted runner runs Pulumi or holds cloud credentials.
    for (const job of Object.values(w.jobs)) {
      for (const st of job.steps) {
        expect(st.uses ?? "").not.toMatch(/^pulumi\/actions@|^aws-actions\/configure-aws-credentials@/);
        expect(st.run ?? "").not.toMatch(/^\s*(npx )?pulumi\s/m);
      }
      expect(job.permissions?.["id-token"]).toBeUndefined();
    }
    const affected = w.jobs.affected!.steps.map((s) => s.run ?? "").join("\n");
    expect(affected).toContain('npx tenantctl affected --base "$base" --head HEAD --json');
    // Removed stacks are reported, never destroyed.
    expect(JSON.stringify(w)).not.toMatch(/command: destroy|"command":"destroy"/);
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
    expect(r.out).toContain("run run-1: succeeded");
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
