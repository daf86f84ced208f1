import { createRequire } from "node:module";
import type * as RpcModule from "@pulumi/pulumi/runtime/rpc.js";
import type * as StructModule from "google-protobuf/google/protobuf/struct_pb.js";
import type * as ResourceModule from "@pulumi/pulumi/proto/resource_pb.js";
import type * as ProviderModule from "@pulumi/pulumi/proto/provider_pb.js";
import { mockOutputs, type MockContext } from "./mockOutputs.ts";
import { SECRET_SIG, SECRET_SIG_KEY, unwrapSecrets, type RenderedResource } from "./types.ts";

// The SDK's own mock monitor pieces: the proto classes and property (de)serializers the stock
// MockMonitor uses. They are CommonJS modules whose exports Node's ESM loader cannot see
// statically (protoc's goog.object.extend), hence require. The pinned SDK version keeps the paths.
const require = createRequire(import.meta.url);
const rpc = require("@pulumi/pulumi/runtime/rpc.js") as typeof RpcModule;
const structproto = require("google-protobuf/google/protobuf/struct_pb.js") as typeof StructModule;
const resproto = require("@pulumi/pulumi/proto/resource_pb.js") as typeof ResourceModule;
const provproto = require("@pulumi/pulumi/proto/provider_pb.js") as typeof ProviderModule;

type Callback = (err: unknown, response: unknown) => void;

/** The root stack resource type; the engine leaves it out of children's qualified types. */
const ROOT_TYPE = "pulumi:pulumi:Stack";

/**
 * A resource monitor for the mock runtime that records every registration with what the real
 * engine would see: parent, raw inputs (secrets still marked), protect and the other options.
 * It answers like Pulumi's MockMonitor, except that (a) URNs follow the engine's rule (the full
 * parent type chain, without the root stack type) so they match `pulumi stack export`, and
 * (b) `additionalSecretOutputs` are returned as secrets, as the engine does.
 */
export class RecordingMonitor {
  readonly records: RenderedResource[] = [];
  readonly outputs = new Map<string, Record<string, unknown>>();
  private readonly states = new Map<string, { urn: string; id: string | null; state: unknown }>();

  constructor(private readonly ctx: MockContext & { project: string; stack: string }) {}

  private urnFor(parent: string, type: string, name: string): string {
    let qualified = type;
    if (parent) {
      const parentType = parent.split("::")[2] ?? "";
      if (parentType !== ROOT_TYPE) qualified = `${parentType}$${type}`;
    }
    return `urn:pulumi:${this.ctx.stack}::${this.ctx.project}::${qualified}::${name}`;
  }

  async registerResource(req: ResourceModule.RegisterResourceRequest, callback: Callback): Promise<void> {
    try {
      const type = req.getType();
      const name = req.getName();
      const parent = req.getParent();
      const urn = this.urnFor(parent, type, name);
      const raw = (req.getObject()?.toJavaScript() ?? {}) as Record<string, unknown>;
      let id = "";
      let state: Record<string, unknown> = {};
      if (req.getCustom()) {
        const mocked = mockOutputs(type, name, unwrapSecrets(raw) as Record<string, unknown>, this.ctx);
        id = mocked.id;
        // Inputs echo back with their secretness intact; computed outputs are added.
        state = { ...mocked.state, ...raw };
        for (const key of req.getAdditionalsecretoutputsList()) {
          if (key in state) state[key] = { [SECRET_SIG_KEY]: SECRET_SIG, value: unwrapSecrets(state[key]) };
        }
      }
      // The state is plain JSON already (the raw input struct plus computed strings and numbers),
      // so it needs no SDK serialization pass; a JSON round trip drops undefined as the SDK would.
      const serialized = JSON.parse(JSON.stringify(state)) as Record<string, unknown>;
      this.states.set(urn, { urn, id, state: serialized });
      this.records.push({
        urn,
        type,
        name,
        parent,
        inputs: raw,
        // What the engine reports to AnalyzeStack: the provider's answer (here the mock's).
        ...(req.getCustom() ? { outputs: state } : {}),
        custom: req.getCustom(),
        options: {
          protect: req.getProtect() === true,
          retainOnDelete: req.getRetainondelete() === true,
          deleteBeforeReplace: req.getDeletebeforereplace(),
          provider: req.getProvider(),
          ignoreChanges: req.getIgnorechangesList(),
        },
      });
      const response = new resproto.RegisterResourceResponse();
      response.setUrn(urn);
      response.setId(id);
      response.setObject(structproto.Struct.fromJavaScript(serialized as never));
      callback(null, response);
    } catch (err) {
      callback(err, undefined);
    }
  }

  registerResourceOutputs(req: ResourceModule.RegisterResourceOutputsRequest, callback: Callback): void {
    const outputs = (req.getOutputs()?.toJavaScript() ?? {}) as Record<string, unknown>;
    this.outputs.set(req.getUrn(), outputs);
    callback(null, {});
  }

  async invoke(req: ResourceModule.ResourceInvokeRequest, callback: Callback): Promise<void> {
    const tok = req.getTok();
    if (tok === "pulumi:pulumi:getResource") {
      const args = rpc.deserializeProperties(req.getArgs()!) as { urn: string };
      const known = this.states.get(args.urn);
      if (!known) return callback(new Error(`unknown resource ${args.urn}`), undefined);
      const resp = new provproto.InvokeResponse();
      resp.setReturn(structproto.Struct.fromJavaScript(known as never));
      return callback(null, resp);
    }
    // The program reads account and region from config, never from invokes: an invoke here is a bug.
    callback(new Error(`the offline renderer does not answer invoke ${tok}; derive the value from config instead`), undefined);
  }

  async readResource(req: ResourceModule.ReadResourceRequest, callback: Callback): Promise<void> {
    callback(new Error(`the offline renderer does not read existing resources (${req.getType()} ${req.getName()})`), undefined);
  }

  supportsFeature(req: ResourceModule.SupportsFeatureRequest, callback: Callback): void {
    // As the SDK's MockMonitor: everything but outputValues, so inputs arrive as plain values.
    callback(null, { getHassupport: () => req.getId() !== "outputValues" });
  }

  registerPackage(_req: unknown, callback: Callback): void {
    const resp = new resproto.RegisterPackageResponse();
    resp.setRef("mock-uuid");
    callback(null, resp);
  }
}

