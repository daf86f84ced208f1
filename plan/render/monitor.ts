import { createRequire } from "node:module";
import type * as RpcModule from "@pulumi/pulumi/runtime/rpc.js";
import type * as StructModule from "google-protobuf/google/protobuf/struct_pb.js";
import type * as ResourceModule from "@pulumi/pulumi/proto/resource_pb.js";
import type * as ProviderModule from "@pulumi/pulumi/proto/provider_pb.js";
import type * as MocksModule from "@pulumi/pulumi/runtime/mocks.js";
import { mockInvoke, mockOutputs, type MockContext } from "./mockOutputs.ts";
import { plainJson } from "./plainJson.ts";
import { SECRET_SIG, SECRET_SIG_KEY, unwrapSecrets, type RenderedResource } from "../types.ts";

// The SDK's own mock monitor pieces: the proto classes and property (de)serializers the stock
// MockMonitor uses. They are CommonJS modules whose exports Node's ESM loader cannot see
// statically (protoc's goog.object.extend), hence require. The pinned SDK version keeps the paths.
const require = createRequire(import.meta.url);
const rpc = require("@pulumi/pulumi/runtime/rpc.js") as typeof RpcModule;
const structproto = require("google-protobuf/google/protobuf/struct_pb.js") as typeof StructModule;
const resproto = require("@pulumi/pulumi/proto/resource_pb.js") as typeof ResourceModule;
const provproto = require("@pulumi/pulumi/proto/provider_pb.js") as typeof ProviderModule;
const mocks = require("@pulumi/pulumi/runtime/mocks.js") as typeof MocksModule;

type Callback = (err: unknown, response: unknown) => void;

/** The root stack resource type; the engine leaves it out of children's qualified types. */
const ROOT_TYPE = "pulumi:pulumi:Stack";

/**
 * A resource monitor for the mock runtime that records every registration with what the real
 * engine would see: parent, raw inputs (secrets still marked), protect and the other options.
 * It answers like Pulumi's MockMonitor, except that (a) URNs follow the engine's rule (the full
 * parent type chain, without the root stack type) so they match `pulumi stack export`, and
 * (b) `additionalSecretOutputs` are returned as secrets, as the engine does, and (c) each
 * resource's aliases are recorded as the engine expands them (its own plus those inherited from
 * its parent's aliases), so a test can tell which old state a registration would claim.
 */
export class RecordingMonitor {
  readonly records: RenderedResource[] = [];
  readonly outputs = new Map<string, Record<string, unknown>>();
  private readonly states = new Map<string, { urn: string; id: string | null; state: unknown }>();
  /** URN -> its aliases as the engine expands them. */
  private readonly aliasesOf = new Map<string, string[]>();

  constructor(
    private readonly ctx: MockContext & { project: string; stack: string },
    /** The outputs a StackReference to `name` (organization/project/stack) reads, or undefined when unknown. */
    private readonly stackReference: (name: string) => Record<string, unknown> | undefined = () => undefined,
  ) {}

  private urnFor(parent: string, type: string, name: string): string {
    let qualified = type;
    if (parent) {
      const parentType = parent.split("::")[2] ?? "";
      if (parentType !== ROOT_TYPE) qualified = `${parentType}$${type}`;
    }
    return `urn:pulumi:${this.ctx.stack}::${this.ctx.project}::${qualified}::${name}`;
  }

  /**
   * The engine's alias expansion (pulumi/pulumi pkg/resource/deploy/step_generator.go,
   * generateAliases and inheritedChildAlias): the resource's own aliases, then for each alias of
   * its parent the child's URN under that alias (a child name starting with the parent's name
   * takes the alias's name as its prefix), for the resource's name and for each of its aliases.
   * The engine uses the one parent alias that matched old state; all are kept here. Only URN
   * aliases are supported: the program never passes alias specs.
   */
  private expandAliases(req: ResourceModule.RegisterResourceRequest, parent: string, type: string, name: string): string[] {
    const own = req.getAliasesList().map((a) => {
      const urn = a.getUrn();
      if (urn) return urn;
      // An alias spec (providers add them for renamed types), collapsed as the engine's
      // collapseAliasToUrn does: unset fields default to the resource's own.
      const spec = a.getSpec();
      if (!spec) throw new Error(`${type} ${name}: an alias with neither URN nor spec`);
      const aliasParent = spec.getNoparent() ? "" : spec.getParenturn() || parent;
      const stack = spec.getStack() || this.ctx.stack;
      const project = spec.getProject() || this.ctx.project;
      const parentType = aliasParent ? (aliasParent.split("::")[2] ?? "") : ROOT_TYPE;
      const aliasType = spec.getType() || type;
      const qualified = parentType === ROOT_TYPE ? aliasType : `${parentType}$${aliasType}`;
      return `urn:pulumi:${stack}::${project}::${qualified}::${spec.getName() || name}`;
    });
    const out = new Set(own);
    const parentName = parent.slice(parent.lastIndexOf("::") + 2);
    for (const parentAlias of this.aliasesOf.get(parent) ?? []) {
      const inherit = (childType: string, childName: string): string => {
        const aliasName = childName.startsWith(parentName) ? parentAlias.slice(parentAlias.lastIndexOf("::") + 2) + childName.slice(parentName.length) : childName;
        const parentQualified = parentAlias.split("::")[2] ?? "";
        return `urn:pulumi:${this.ctx.stack}::${this.ctx.project}::${parentQualified}$${childType}::${aliasName}`;
      };
      out.add(inherit(type, name));
      for (const a of own) {
        const qualified = a.split("::")[2] ?? "";
        out.add(inherit(qualified.slice(qualified.lastIndexOf("$") + 1), a.slice(a.lastIndexOf("::") + 2)));
      }
    }
    return [...out];
  }

  async registerResource(req: ResourceModule.RegisterResourceRequest, callback: Callback): Promise<void> {
    try {
      const type = req.getType();
      const name = req.getName();
      const parent = req.getParent();
      const urn = this.urnFor(parent, type, name);
      const aliases = this.expandAliases(req, parent, type, name);
      if (aliases.length > 0) this.aliasesOf.set(urn, aliases);
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
      // so it needs no SDK serialization pass; plainJson drops undefined as the SDK would.
      const serialized = plainJson(state) as Record<string, unknown>;
      this.states.set(urn, { urn, id, state: serialized });
      this.records.push({
        urn,
        type,
        name,
        parent,
        inputs: raw,
        // What the engine reports to AnalyzeStack: the provider's answer (here the mock's).
        ...(req.getCustom() ? { id, outputs: state } : {}),
        custom: req.getCustom(),
        options: {
          protect: req.getProtect() === true,
          retainOnDelete: req.getRetainondelete() === true,
          deleteBeforeReplace: req.getDeletebeforereplace(),
          provider: req.getProvider(),
          ignoreChanges: req.getIgnorechangesList(),
          ...(aliases.length > 0 ? { aliases } : {}),
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
    const answer = mockInvoke(tok, rpc.deserializeProperties(req.getArgs()!), this.ctx);
    if (answer) {
      const resp = new provproto.InvokeResponse();
      resp.setReturn(structproto.Struct.fromJavaScript(answer as never));
      return callback(null, resp);
    }
    // The program reads account and region from config, never from invokes: another invoke here is a bug.
    callback(new Error(`the offline renderer does not answer invoke ${tok}; derive the value from config instead`), undefined);
  }

  /**
   * Only StackReferences are read (a spoke reading its platform stack's ids): answered from the
   * platform model (plan/render/platformReference.ts), not recorded as a resource (the engine
   * keeps a read, not a managed resource; policies never see it). Any other read is a bug.
   */
  async readResource(req: ResourceModule.ReadResourceRequest, callback: Callback): Promise<void> {
    if (req.getType() !== "pulumi:pulumi:StackReference") {
      return callback(new Error(`the offline renderer does not read existing resources (${req.getType()} ${req.getName()})`), undefined);
    }
    const props = (req.getProperties()?.toJavaScript() ?? {}) as { name?: string };
    const name = props.name ?? req.getId();
    const outputs = this.stackReference(name);
    if (!outputs) return callback(new Error(`StackReference ${name}: the offline renderer knows only the platform stacks of this fleet`), undefined);
    const urn = this.urnFor(req.getParent(), req.getType(), req.getName());
    const state = { name, outputs, secretOutputNames: [] as string[] };
    this.states.set(urn, { urn, id: name, state });
    const response = new resproto.ReadResourceResponse();
    response.setUrn(urn);
    response.setProperties(structproto.Struct.fromJavaScript(state));
    callback(null, response);
  }

  supportsFeature(req: ResourceModule.SupportsFeatureRequest, callback: Callback): void {
    // As the SDK's MockMonitor: everything but outputValues, so inputs arrive as plain values.
    callback(null, { getHassupport: () => req.getId() !== "outputValues" });
  }

  /**
   * The feature list the SDK asks for (3.276 calls GetDeploymentInfo where 3.248 called
   * supportsFeature per feature): answered by the SDK's own MockMonitor, which lists every feature
   * but outputValues, the same answer as supportsFeature above.
   */
  getDeploymentInfo(req: unknown, callback: Callback): void {
    mocks.MockMonitor.prototype.getDeploymentInfo.call(this, req, callback);
  }

  registerPackage(_req: unknown, callback: Callback): void {
    const resp = new resproto.RegisterPackageResponse();
    resp.setRef("mock-uuid");
    callback(null, resp);
  }
}

