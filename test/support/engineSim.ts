/**
 * A model of what the Pulumi engine and AWS do with a rendered stack, for tests of state
 * hand-overs between stacks. It is a test double of the engine, never a deployment: nothing here
 * reaches a cloud, and the rules it applies are written down with their sources so a reviewer can
 * check them.
 *
 * Engine (pulumi/pulumi pkg/resource/deploy/step_generator.go, generateSteps): a registration
 * claims the old state of its URN, else of the first of its aliases found in the old state; old
 * resources no registration claimed are deleted after the update, unless `retainOnDelete`, in
 * which case they are only dropped from the state. A delete of a resource whose state is
 * `protect`ed fails the update before `retainOnDelete` is looked at (GenerateDeletes refuses a
 * protected resource; retainOnDelete only changes what the delete step does). A changed input listed as replace-on-change
 * (plan/replacements.ts) replaces the resource.
 *
 * State move (pkg/cmd/pulumi/state/state_move.go): the listed resources and all their
 * descendants leave the source; in the destination their URNs carry the destination's stack
 * name, and one whose parent did not move gets the root stack as parent.
 *
 * Cloud: resources with a user-chosen physical name (the types in PHYSICAL below) are unique by
 * that name; creating one whose name exists fails like AWS ("already exists").
 *
 * Values (for changes made outside Pulumi, e.g. the upgrade's switch): every cloud object holds
 * the attribute values last written to it: a create, replace or update writes the goal's inputs
 * (an input listed in `ignoreChanges` keeps its old value, as the engine does), a change outside
 * Pulumi writes others (`writeOutOfBand`). A refresh (`pulumi refresh`, or `up --refresh`) reads
 * them back into the state, so the next diff is against what the cloud holds; without it the
 * diff is against what the last update wrote. Secrets Manager: creating a SecretVersion
 * (PutSecretValue) moves AWSCURRENT to it; a refresh reads the version the state names, not
 * AWSCURRENT (terraform-provider-aws internal/service/secretsmanager/secret_version.go reads by
 * version id), so a version written outside Pulumi is no drift of the stack.
 */
import { effectOf } from "../../plan/replacements.ts";
import { renameStackInUrn } from "../../infra/model/handover.ts";
import { unwrapSecrets, type RenderedResource, type RenderedStack } from "../../plan/types.ts";

/** The physical name of a named resource, by type, from its (unwrapped) inputs. */
const PHYSICAL: Readonly<Record<string, (i: Record<string, unknown>) => string | undefined>> = {
  "aws:iam/role:Role": (i) => `iam role ${String(i.name)}`,
  "aws:iam/rolePolicy:RolePolicy": (i) => `iam role policy ${String(i.role)}/${String(i.name)}`,
  "aws:secretsmanager/secret:Secret": (i) => `secret ${String(i.name)}`,
  "aws:kms/alias:Alias": (i) => `kms alias ${String(i.name)}`,
  "aws:s3/bucket:Bucket": (i) => `bucket ${String(i.bucket)}`,
  "aws:rds/instance:Instance": (i) => `rds ${String(i.identifier)}`,
  "aws:cloudwatch/logGroup:LogGroup": (i) => `log group ${String(i.name)}`,
  "aws:route53/record:Record": (i) => `dns ${String(i.zoneId)} ${String(i.name)} ${String(i.type)}`,
  // PutParameter without Overwrite fails on an existing name (ParameterAlreadyExists,
  // https://docs.aws.amazon.com/systems-manager/latest/APIReference/API_PutParameter.html).
  "aws:ssm/parameter:Parameter": (i) => `ssm parameter ${String(i.name)}`,
  // Neither refuses an existing name: PutMetricAlarm overwrites the alarm of that name
  // (https://docs.aws.amazon.com/AmazonCloudWatch/latest/APIReference/API_PutMetricAlarm.html) and
  // CreateTopic returns the existing topic (https://docs.aws.amazon.com/sns/latest/api/API_CreateTopic.html),
  // so two stacks would silently share one object and the first delete would take it from both.
  // The model treats that sharing as a collision so a test sees it.
  "aws:cloudwatch/metricAlarm:MetricAlarm": (i) => `cloudwatch alarm ${String(i.name)}`,
  "aws:sns/topic:Topic": (i) => `sns topic ${String(i.name)}`,
};

export function physicalName(r: Pick<RenderedResource, "type" | "inputs">): string | undefined {
  const f = PHYSICAL[r.type];
  return f ? f(unwrapSecrets(r.inputs) as Record<string, unknown>) : undefined;
}

export interface StateResource {
  urn: string;
  type: string;
  custom: boolean;
  parent: string;
  inputs: Record<string, unknown>;
  retainOnDelete: boolean;
  /** Pulumi `protect`, as the last update recorded it. */
  protect: boolean;
  /** Identity of the cloud object (stable through updates and moves). */
  cloudId: string;
  /** The provider's id and outputs as the last update recorded them (test/support/destroySim.ts reads them). */
  id?: string;
  outputs?: Record<string, unknown>;
  /** URN of the provider resource that manages it ("" for the default provider). */
  provider?: string;
}

export interface UpReport {
  created: string[];
  updated: string[];
  replaced: string[];
  /** Claimed through an alias (the URN changed, the cloud object did not). */
  aliased: { from: string; to: string }[];
  /** Deleted from the cloud: physical names (or URNs of unnamed resources). */
  deleted: string[];
  /** Dropped from the state but kept in the cloud (retainOnDelete). */
  retained: string[];
}

export class AlreadyExistsError extends Error {}
export class ProtectedError extends Error {}

const ROOT = "pulumi:pulumi:Stack";

export class SimCloud {
  /** physical name -> cloud id of the object holding it. */
  readonly names = new Map<string, string>();
  readonly stacks = new Map<string, Map<string, StateResource>>();
  /** cloud id -> the object's attribute values (see "Values" above). */
  readonly values = new Map<string, Record<string, unknown>>();
  /** Secret name -> the text of its AWSCURRENT version. */
  readonly currentSecret = new Map<string, string>();
  private seq = 0;

  /** Records what an update wrote to a cloud object. */
  private write(r: RenderedResource, cloudId: string, old?: Record<string, unknown>): void {
    const goal = unwrapSecrets(r.inputs) as Record<string, unknown>;
    const kept = Object.fromEntries(r.options.ignoreChanges.filter((k) => old && k in old).map((k) => [k, old![k]]));
    this.values.set(cloudId, { ...goal, ...kept });
    if (r.type === SECRET_VERSION && typeof goal.secretString === "string") this.currentSecret.set(secretNameOfArn(String(goal.secretId)), goal.secretString);
  }

  /** A change made outside Pulumi to the object `urn` of `stack` names (its cloud id stays). */
  writeOutOfBand(stack: string, urn: string, values: Record<string, unknown>): void {
    const r = this.state(stack).get(urn);
    if (!r) throw new Error(`${stack} has no ${urn}`);
    this.values.set(r.cloudId, { ...this.values.get(r.cloudId), ...values });
  }

  /** `pulumi refresh`: the state's inputs become what the cloud objects hold. */
  refresh(stack: string): void {
    const s = this.state(stack);
    for (const [urn, r] of s) {
      const v = this.values.get(r.cloudId);
      if (v) s.set(urn, { ...r, inputs: { ...(unwrapSecrets(r.inputs) as Record<string, unknown>), ...v } });
    }
  }

  state(stack: string): Map<string, StateResource> {
    let s = this.stacks.get(stack);
    if (!s) this.stacks.set(stack, (s = new Map()));
    return s;
  }

  /** `pulumi up` of `goal` on the stack's state. */
  up(goal: RenderedStack): UpReport {
    const olds = this.state(goal.name);
    const next = new Map<string, StateResource>();
    const claimed = new Set<string>();
    const report: UpReport = { created: [], updated: [], replaced: [], aliased: [], deleted: [], retained: [] };
    // Protected resources the goal no longer claims: the engine refuses before it changes anything.
    const willClaim = new Set(goal.resources.map((r) => [r.urn, ...(r.options.aliases ?? [])].find((u) => olds.has(u))).filter((u) => u !== undefined));
    for (const [urn, old] of olds) {
      if (willClaim.has(urn) || !old.custom || !old.protect) continue;
      throw new ProtectedError(`${goal.name}: unable to delete resource "${urn}" as it is currently marked for protection; nothing was changed`);
    }
    for (const r of goal.resources) {
      const oldUrn = [r.urn, ...(r.options.aliases ?? [])].find((u) => olds.has(u) && !claimed.has(u));
      const name = r.custom ? physicalName(r) : undefined;
      const base = {
        urn: r.urn, type: r.type, custom: r.custom, parent: r.parent, inputs: r.inputs, retainOnDelete: r.options.retainOnDelete, protect: r.options.protect,
        ...(r.id !== undefined ? { id: r.id } : {}), ...(r.outputs !== undefined ? { outputs: r.outputs } : {}),
        provider: r.options.provider.split("::").slice(0, -1).join("::"),
      };
      if (oldUrn === undefined) {
        if (name !== undefined && this.names.has(name)) throw new AlreadyExistsError(`${goal.name}: creating ${r.urn} fails: ${name} already exists`);
        const cloudId = `obj-${++this.seq}`;
        if (name !== undefined) this.names.set(name, cloudId);
        next.set(r.urn, { ...base, cloudId });
        if (r.custom) {
          report.created.push(r.urn);
          this.write(r, cloudId);
        }
        continue;
      }
      claimed.add(oldUrn);
      const old = olds.get(oldUrn)!;
      if (oldUrn !== r.urn) report.aliased.push({ from: oldUrn, to: r.urn });
      if (old.type !== r.type) throw new Error(`${goal.name}: ${r.urn} claims ${oldUrn} of another type (${old.type})`);
      const changed = r.custom ? changedKeys(old.inputs, r.inputs).filter((k) => !r.options.ignoreChanges.includes(k)) : [];
      if (changed.some((k) => effectOf(r.type, k).effect === "replace")) {
        // Create-before-delete: a named resource collides with itself.
        const oldName = physicalName(old);
        if (name !== undefined && this.names.has(name)) throw new AlreadyExistsError(`${goal.name}: replacing ${r.urn} (${changed.join(", ")}) fails: ${name} already exists`);
        if (oldName !== undefined) this.names.delete(oldName);
        const cloudId = `obj-${++this.seq}`;
        if (name !== undefined) this.names.set(name, cloudId);
        next.set(r.urn, { ...base, cloudId });
        report.replaced.push(r.urn);
        this.write(r, cloudId);
        continue;
      }
      const oldName = physicalName(old);
      if (oldName !== name) throw new Error(`${goal.name}: ${r.urn} renames ${oldName} to ${name} in place`);
      next.set(r.urn, { ...base, cloudId: old.cloudId });
      if (changed.length > 0) {
        report.updated.push(r.urn);
        this.write(r, old.cloudId, this.values.get(old.cloudId));
      }
    }
    for (const [urn, old] of olds) {
      if (claimed.has(urn)) continue;
      if (!old.custom) continue;
      const name = physicalName(old);
      if (old.retainOnDelete) report.retained.push(name ?? urn);
      else {
        if (name !== undefined) this.names.delete(name);
        report.deleted.push(name ?? urn);
      }
    }
    this.stacks.set(goal.name, next);
    return report;
  }

  /** `pulumi state unprotect --all --yes` (what the runner does for a released destroy). */
  unprotectAll(stack: string): void {
    for (const r of this.state(stack).values()) r.protect = false;
  }

  /** `pulumi state move --source --dest <urns>`; returns the URNs moved (children included). */
  move(source: string, dest: string, urns: readonly string[]): string[] {
    const src = this.state(source);
    const dst = this.state(dest);
    const moving = new Set(urns.filter((u) => src.has(u)));
    if (moving.size === 0) throw new Error("no resources found to move");
    let grew = true;
    while (grew) {
      grew = false;
      for (const r of src.values()) {
        if (!moving.has(r.urn) && moving.has(r.parent)) {
          moving.add(r.urn);
          grew = true;
        }
      }
    }
    const rootOf = (stack: string) => `urn:pulumi:${stack}::saas-tenancy::${ROOT}::saas-tenancy-${stack}`;
    for (const urn of moving) {
      const r = src.get(urn)!;
      src.delete(urn);
      const moved = renameStackInUrn(urn, dest);
      if (dst.has(moved)) throw new Error(`resource ${moved} already exists in destination stack`);
      dst.set(moved, { ...r, urn: moved, parent: moving.has(r.parent) ? renameStackInUrn(r.parent, dest) : rootOf(dest) });
    }
    return [...moving];
  }
}

const SECRET_VERSION = "aws:secretsmanager/secretVersion:SecretVersion";

/** `arn:aws:secretsmanager:<region>:<account>:secret:<name>-<6 random characters>` -> `<name>`. */
function secretNameOfArn(arn: string): string {
  const m = /:secret:(.+)-[A-Za-z0-9]{6}$/.exec(arn);
  if (!m) throw new Error(`not a secret ARN: ${arn}`);
  return m[1]!;
}

function changedKeys(a: Record<string, unknown>, b: Record<string, unknown>): string[] {
  const ua = unwrapSecrets(a) as Record<string, unknown>;
  const ub = unwrapSecrets(b) as Record<string, unknown>;
  const keys = new Set([...Object.keys(ua), ...Object.keys(ub)]);
  return [...keys].filter((k) => JSON.stringify(ua[k]) !== JSON.stringify(ub[k])).sort();
}
