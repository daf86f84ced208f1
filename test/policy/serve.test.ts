/**
 * How the pack is loaded: importing the policy list starts nothing, while loading the package the
 * way the Pulumi CLI does (@pulumi/pulumi/cmd/run-policy-pack on the pack directory) serves the
 * analyzer over gRPC and answers real RPCs.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { createRequire } from "node:module";
import { fileURLToPath } from "node:url";
import type * as Grpc from "@grpc/grpc-js";
import type * as AnalyzerGrpc from "@pulumi/pulumi/proto/analyzer_grpc_pb.js";
import type * as AnalyzerPb from "@pulumi/pulumi/proto/analyzer_pb.js";
import type { Empty as EmptyType } from "google-protobuf/google/protobuf/empty_pb.js";
import type { Struct as StructType } from "google-protobuf/google/protobuf/struct_pb.js";
import { afterEach, describe, expect, it } from "vitest";
import { PACK_NAME, PACK_VERSION, policies } from "../../policy/pack.ts";

const policyDir = fileURLToPath(new URL("../../policy", import.meta.url));
const require = createRequire(import.meta.url);
// The gRPC stack Pulumi itself uses, resolved from @pulumi/pulumi.
const fromPulumi = createRequire(require.resolve("@pulumi/pulumi/package.json"));
const grpc = fromPulumi("@grpc/grpc-js") as typeof Grpc;
const analyzerGrpc = require("@pulumi/pulumi/proto/analyzer_grpc_pb.js") as typeof AnalyzerGrpc;
const analyzerpb = require("@pulumi/pulumi/proto/analyzer_pb.js") as typeof AnalyzerPb;
const { Empty } = fromPulumi("google-protobuf/google/protobuf/empty_pb.js") as { Empty: typeof EmptyType };
const { Struct } = require("google-protobuf/google/protobuf/struct_pb.js") as { Struct: typeof StructType };

const children: ChildProcess[] = [];
afterEach(() => {
  for (const c of children.splice(0)) if (c.exitCode === null) c.kill("SIGKILL");
});

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs a process to its end, or reports it as still running after `ms` (then kills it). */
function run(args: string[], cwd: string, ms: number): Promise<Run & { timedOut: boolean }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, args, { cwd, stdio: ["ignore", "pipe", "pipe"] });
    children.push(child);
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
    child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => {
      child.kill("SIGKILL");
      resolve({ code: null, stdout, stderr, timedOut: true });
    }, ms);
    child.on("exit", (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr, timedOut: false });
    });
  });
}

/** Starts the pack as the CLI does and resolves with the port it prints. */
function serve(nodeArgs: string[]): Promise<{ port: number; child: ChildProcess }> {
  const runner = require.resolve("@pulumi/pulumi/cmd/run-policy-pack");
  const child = spawn(process.execPath, [...nodeArgs, runner, "127.0.0.1:1", "."], { cwd: policyDir, stdio: ["ignore", "pipe", "pipe"] });
  children.push(child);
  return new Promise((resolve, reject) => {
    let stdout = "";
    let stderr = "";
    child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
    child.stdout.on("data", (d: Buffer) => {
      stdout += d.toString();
      const m = /^(\d+)\n/.exec(stdout);
      if (m) resolve({ port: Number(m[1]), child });
    });
    child.on("exit", (code) => reject(new Error(`policy pack exited (${code}) before serving:\n${stdout}\n${stderr}`)));
  });
}

function unary<Req, Res>(fn: (req: Req, cb: (err: Grpc.ServiceError | null, res: Res) => void) => unknown, req: Req): Promise<Res> {
  return new Promise((resolve, reject) => fn(req, (err, res) => (err ? reject(err) : resolve(res))));
}

function analyzeRequest(): AnalyzerPb.AnalyzeRequest {
  const req = new analyzerpb.AnalyzeRequest();
  req.setUrn("urn:pulumi:sandbox::saas-tenancy::aws:s3/bucket:Bucket::scratch");
  req.setType("aws:s3/bucket:Bucket");
  req.setName("scratch");
  req.setProperties(
    Struct.fromJavaScript({ bucket: "scratch", tags: { tenant: "shared", env: "qa", stack: "sandbox", "managed-by": "saas-tenancy" } }),
  );
  req.setOptions(new analyzerpb.AnalyzerResourceOptions());
  return req;
}

describe("loading the pack", () => {
  it("importing the policy list does not start the analyzer server", async () => {
    const script = `import("./pack.ts").then((m) => console.log(JSON.stringify(m.policies.map((p) => p.name))))`;
    const r = await run(["--import", "tsx", "--input-type=module", "-e", script], policyDir, 30_000);
    // A started gRPC server prints its port and keeps the process alive.
    expect(r.timedOut).toBe(false);
    expect(r.code).toBe(0);
    expect(r.stdout).toBe(`${JSON.stringify(policies.map((p) => p.name))}\n`);
  });

  it.each([
    ["as the runner loads it (main.cjs registers tsx)", [] as string[]],
    ["with PulumiPolicy.yaml's nodeargs (--import tsx)", ["--import", "tsx"]],
  ])("serves the analyzer when run by @pulumi/pulumi/cmd/run-policy-pack %s", async (_label, nodeArgs) => {
    const { port } = await serve(nodeArgs);
    const client = new analyzerGrpc.AnalyzerClient(`127.0.0.1:${port}`, grpc.credentials.createInsecure());
    try {
      const info = await unary<EmptyType, AnalyzerPb.AnalyzerInfo>(client.getAnalyzerInfo.bind(client), new Empty());
      expect(info.getName()).toBe(PACK_NAME);
      expect(info.getVersion()).toBe(PACK_VERSION);
      expect(info.getPoliciesList().map((p) => [p.getName(), p.getEnforcementlevel()])).toEqual(
        policies.map((p) => [p.name, analyzerpb.EnforcementLevel.MANDATORY]),
      );

      // Default config: "qa" is not a platform environment.
      const before = await unary<AnalyzerPb.AnalyzeRequest, AnalyzerPb.AnalyzeResponse>(client.analyze.bind(client), analyzeRequest());
      expect(before.getDiagnosticsList().map((d) => [d.getPolicyname(), d.getMessage()])).toEqual([
        ["tenant-tags", `${policies[0]!.description}\ntag env "qa" is not one of the platform environments: prod, staging, dev`],
      ]);

      // The CLI sends --policy-pack-config through Configure; the policy then uses it.
      const configure = new analyzerpb.ConfigureAnalyzerRequest();
      const cfg = new analyzerpb.PolicyConfig();
      cfg.setEnforcementlevel(analyzerpb.EnforcementLevel.MANDATORY);
      cfg.setProperties(Struct.fromJavaScript({ environments: ["qa"] }));
      configure.getPolicyconfigMap().set("tenant-tags", cfg);
      await unary<AnalyzerPb.ConfigureAnalyzerRequest, EmptyType>(client.configure.bind(client), configure);
      const after = await unary<AnalyzerPb.AnalyzeRequest, AnalyzerPb.AnalyzeResponse>(client.analyze.bind(client), analyzeRequest());
      expect(after.getDiagnosticsList()).toEqual([]);
    } finally {
      client.close();
    }
  }, 60_000);
});
