/**
 * Runs the policy pack in-process through the SDK's real analyzer handlers
 * (`makeAnalyzeRpcFun` / `makeAnalyzeStackRpcFun` from @pulumi/policy/server, the functions the
 * gRPC server registers), fed with real protobuf requests built the way the engine builds them:
 * Analyze once per resource with its inputs, then AnalyzeStack over every resource with its
 * outputs (inputs when no outputs are known). Used by `tenantctl plan`, `tenantctl policy check`
 * and the tests; no server is started and no port is opened.
 *
 * Policy config cannot be sent in-process (the SDK's Configure handler is not exported), so the
 * settings defaults apply; pass `settings` to evaluate with another platform's values.
 */
import { createRequire } from "node:module";
import type { Struct as StructType } from "google-protobuf/google/protobuf/struct_pb.js";
import type * as AnalyzerPb from "@pulumi/pulumi/proto/analyzer_pb.js";
import type { RenderedResource, RenderedStack, Violation } from "./types.ts";
import { plainJson } from "./render/plainJson.ts";
import { PACK_ENFORCEMENT_LEVEL, PACK_NAME, PACK_VERSION, packPolicies } from "../policy/pack.ts";
import type { PulumiPolicy } from "../policy/registry.ts";
import type { PackSettings } from "../policy/settings.ts";

const require = createRequire(import.meta.url);

// The generated protobuf modules are CommonJS without statically visible named exports.
const analyzerpb = require("@pulumi/pulumi/proto/analyzer_pb.js") as typeof AnalyzerPb;
const { Struct } = require("google-protobuf/google/protobuf/struct_pb.js") as { Struct: typeof StructType };

type Callback<T> = (err: Error | null | undefined, response?: T) => void;
type Handler<Req, Res> = (call: { request: Req }, callback: Callback<Res>) => Promise<void>;

/**
 * The handler factories of @pulumi/policy/server.js. They are marked @internal, so the published
 * .d.ts is empty; this is their JavaScript signature (server.js, @pulumi/policy 1.21).
 */
interface PolicyServer {
  makeAnalyzeRpcFun(
    packName: string,
    packVersion: string,
    packLevel: string,
    policies: PulumiPolicy[],
  ): Handler<AnalyzerPb.AnalyzeRequest, AnalyzerPb.AnalyzeResponse>;
  makeAnalyzeStackRpcFun(
    packName: string,
    packVersion: string,
    packLevel: string,
    policies: PulumiPolicy[],
  ): Handler<AnalyzerPb.AnalyzeStackRequest, AnalyzerPb.AnalyzeResponse>;
}
const server = require("@pulumi/policy/server.js") as PolicyServer;

/** A resource to analyze: the plan's shape, plus what a state export or the engine also knows. */
export type AnalyzableResource = Pick<RenderedResource, "urn" | "type" | "name" | "inputs"> &
  Partial<Pick<RenderedResource, "parent" | "outputs" | "options">> & {
    /** URNs the resource depends on. */
    dependencies?: readonly string[];
    /** Input name -> URNs the input's value came from (the engine's property dependencies). */
    propertyDependencies?: Readonly<Record<string, readonly string[]>>;
  };

export interface AnalyzeOptions {
  /** Settings the policies use instead of the defaults (Pulumi.yaml's platform). */
  settings?: Partial<PackSettings>;
}

const LEVELS: Readonly<Record<number, Violation["level"]>> = {
  [analyzerpb.EnforcementLevel.ADVISORY]: "advisory",
  [analyzerpb.EnforcementLevel.MANDATORY]: "mandatory",
  [analyzerpb.EnforcementLevel.DISABLED]: "disabled",
  [analyzerpb.EnforcementLevel.REMEDIATE]: "remediate",
};

type JsonValue = Parameters<typeof Struct.fromJavaScript>[0][string];

/** A protobuf Struct of a property map; `undefined` is dropped as the engine drops it. */
function struct(props: Record<string, unknown>): StructType {
  return Struct.fromJavaScript(plainJson(props) as Record<string, JsonValue>);
}

function resourceOptions(r: AnalyzableResource): AnalyzerPb.AnalyzerResourceOptions {
  const o = new analyzerpb.AnalyzerResourceOptions();
  o.setProtect(r.options?.protect ?? false);
  o.setIgnorechangesList(r.options?.ignoreChanges ?? []);
  o.setDeletebeforereplace(r.options?.deleteBeforeReplace ?? false);
  o.setDeletebeforereplacedefined(r.options !== undefined);
  o.setAliasesList([]);
  o.setAdditionalsecretoutputsList([]);
  if (r.parent) o.setParent(r.parent);
  return o;
}

function call<Req, Res>(handler: Handler<Req, Res>, request: Req): Promise<Res> {
  return new Promise((resolve, reject) => {
    handler({ request }, (err, response) => {
      if (err) reject(err);
      else if (!response) reject(new Error("analyzer handler returned no response"));
      else resolve(response);
    }).catch(reject);
  });
}

/** The SDK prefixes each message with the policy description and a newline; keep the message. */
function violationsOf(resp: AnalyzerPb.AnalyzeResponse, fallbackUrn: string): Violation[] {
  return resp.getDiagnosticsList().map((d) => {
    const prefix = `${d.getDescription()}\n`;
    const message = d.getMessage().startsWith(prefix) ? d.getMessage().slice(prefix.length) : d.getMessage();
    return {
      policy: d.getPolicyname(),
      level: LEVELS[d.getEnforcementlevel()] ?? "advisory",
      urn: d.getUrn() || fallbackUrn,
      message,
    };
  });
}

/**
 * Runs every policy of the pack over one stack's resources and returns the violations: resource
 * policies first, in resource order, then stack policies. `stackName` must be the stack every
 * URN names (a guard against mixing stacks, which stack policies would misjudge).
 */
export async function analyzeResources(
  resources: readonly AnalyzableResource[],
  stackName: string,
  options: AnalyzeOptions = {},
): Promise<Violation[]> {
  const foreign = resources.find((r) => !r.urn.startsWith(`urn:pulumi:${stackName}::`));
  if (foreign) throw new Error(`analyzeResources: resource ${foreign.urn} is not in stack "${stackName}"`);
  const policies = packPolicies(options.settings);
  const analyze = server.makeAnalyzeRpcFun(PACK_NAME, PACK_VERSION, PACK_ENFORCEMENT_LEVEL, policies);
  const analyzeStack = server.makeAnalyzeStackRpcFun(PACK_NAME, PACK_VERSION, PACK_ENFORCEMENT_LEVEL, policies);

  const violations: Violation[] = [];
  for (const r of resources) {
    const req = new analyzerpb.AnalyzeRequest();
    req.setUrn(r.urn);
    req.setType(r.type);
    req.setName(r.name);
    req.setProperties(struct(r.inputs));
    req.setOptions(resourceOptions(r));
    violations.push(...violationsOf(await call(analyze, req), r.urn));
  }

  const stackReq = new analyzerpb.AnalyzeStackRequest();
  stackReq.setResourcesList(
    resources.map((r) => {
      const ar = new analyzerpb.AnalyzerResource();
      ar.setUrn(r.urn);
      ar.setType(r.type);
      ar.setName(r.name);
      ar.setProperties(struct(r.outputs ?? r.inputs));
      ar.setOptions(resourceOptions(r));
      ar.setParent(r.parent ?? "");
      ar.setDependenciesList([...(r.dependencies ?? [])]);
      const deps = ar.getPropertydependenciesMap();
      for (const [prop, urns] of Object.entries(r.propertyDependencies ?? {})) {
        const pd = new analyzerpb.AnalyzerPropertyDependencies();
        pd.setUrnsList([...urns]);
        deps.set(prop, pd);
      }
      return ar;
    }),
  );
  const anchor = resources.find((r) => r.type === "pulumi:pulumi:Stack")?.urn ?? "";
  violations.push(...violationsOf(await call(analyzeStack, stackReq), anchor));
  return violations;
}

/**
 * `analyzeResources` over a rendered or imported stack. The stack's outputs become the outputs of
 * its root `pulumi:pulumi:Stack` resource, as the engine reports them to AnalyzeStack.
 */
export async function analyzeStack(
  stack: Pick<RenderedStack, "name" | "resources"> & { outputs?: Record<string, unknown> },
  options: AnalyzeOptions = {},
): Promise<Violation[]> {
  const resources: AnalyzableResource[] = stack.resources.map((r) =>
    r.type === "pulumi:pulumi:Stack" && r.outputs === undefined && stack.outputs ? { ...r, outputs: stack.outputs } : r,
  );
  return analyzeResources(resources, stack.name, options);
}
