/**
 * A model of `pulumi destroy` of a stack held by the engine double (test/support/engineSim.ts)
 * and of what AWS refuses to delete. A test double, never a deployment: nothing here reaches a
 * cloud. Each rule names where it comes from so a reviewer can check it.
 *
 * Engine (pulumi/pulumi pkg/resource/deploy: the destroy's step generator and executor):
 * - a destroy fails before deleting anything while a resource in the state is `protect`ed
 *   ("cannot be deleted because it is protected");
 * - a resource is deleted after every resource that depends on it; dependencies here are read from
 *   the state (an input holding another resource's id or ARN, and the provider reference);
 * - `retainOnDelete`: dropped from the state, no call to the provider;
 * - a failed delete leaves the resource, and every resource it depends on, in the state. The model
 *   runs as `pulumi destroy --continue-on-error` does (every independent delete is still tried), so
 *   one run shows every refusal; without the flag the engine stops sooner, refusing a subset.
 * - the provider's Delete reads the resource's last recorded state, never the program: a flag such
 *   as forceDestroy reaches a destroy only through a prior `up` (the AWS provider's documentation of
 *   aws_s3_bucket `force_destroy`: "there must be a successful terraform apply run before a destroy
 *   is required to update this value in the resource state").
 *
 * AWS, per resource type (terraform-provider-aws, which @pulumi/aws bridges):
 * - S3 bucket (internal/service/s3/bucket.go, resourceBucketDelete): DeleteBucket fails with
 *   BucketNotEmpty while any object version or delete marker is left
 *   (https://docs.aws.amazon.com/AmazonS3/latest/API/API_DeleteBucket.html); with `forceDestroy`
 *   the provider deletes every version and delete marker first, then the bucket.
 * - RDS instance (internal/service/rds/instance.go, resourceInstanceDelete): DeleteDBInstance with
 *   SkipFinalSnapshot and FinalDBSnapshotIdentifier from the state; refused with
 *   InvalidParameterCombination while deletion protection is on in AWS, and with
 *   DBSnapshotAlreadyExists when the final snapshot's name is taken
 *   (https://docs.aws.amazon.com/AmazonRDS/latest/APIReference/API_DeleteDBInstance.html). The
 *   instance's own network interfaces go with it (the provider waits for the deletion).
 * - KMS key (internal/service/kms/key.go, resourceKeyDelete): ScheduleKeyDeletion with the state's
 *   deletion window; the key is PendingDeletion at once and unusable, so whatever it encrypts
 *   (final snapshots, automated backups) cannot be restored
 *   (https://docs.aws.amazon.com/kms/latest/APIReference/API_ScheduleKeyDeletion.html).
 * - Route 53 zone (internal/service/route53/zone.go, resourceZoneDelete): DeleteHostedZone fails
 *   with HostedZoneNotEmpty while records other than the apex SOA and NS are left
 *   (https://docs.aws.amazon.com/Route53/latest/APIReference/API_DeleteHostedZone.html); with
 *   `forceDestroy` the provider deletes those records first.
 * - Subnet and security group (internal/service/ec2/vpc_subnet.go, vpc_security_group.go): the
 *   delete is retried on DependencyViolation until its timeout, then fails, while a network
 *   interface the stack did not create (a load balancer the application made, a Lambda's) is in
 *   the subnet or uses the group (https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_DeleteSubnet.html,
 *   API_DeleteSecurityGroup.html). A VPC is deleted only after its subnets and groups.
 */
import { unwrapSecrets } from "../../plan/types.ts";
import { ProtectedError, type SimCloud, type StateResource } from "./engineSim.ts";

/** What exists in AWS besides what the stack's state says. Keys are physical names or ids. */
export class AwsWorld {
  /** bucket name -> object versions and delete markers in it. */
  readonly objects = new Map<string, number>();
  /** zone name -> records the stack did not create (besides the apex SOA and NS). */
  readonly foreignRecords = new Map<string, string[]>();
  /** subnet or security group id -> network interfaces the stack did not create. */
  readonly foreignEnis = new Map<string, string[]>();
  /** RDS identifier -> deletion protection as AWS has it (the last up's value unless changed outside). */
  readonly deletionProtection = new Map<string, boolean>();
  /** Snapshots by id, with the key that encrypts them. */
  readonly snapshots = new Map<string, { instance: string; kmsKeyId: string }>();
  /** KMS key ARN -> its state. */
  readonly keys = new Map<string, { state: "Enabled" | "PendingDeletion"; pendingWindowInDays?: number }>();
  /** What a forceDestroy emptied: `bucket <name>: <n> versions` / `zone <name>: <records>`. */
  readonly emptied: string[] = [];

  /** Applies what the last `up` of `stack` set in AWS (deletion protection, keys). */
  sync(cloud: SimCloud, stack: string): void {
    for (const r of cloud.state(stack).values()) {
      const i = inputsOf(r);
      if (r.type === "aws:rds/instance:Instance") this.deletionProtection.set(String(i.identifier), i.deletionProtection === true);
      if (r.type === "aws:kms/key:Key" && typeof r.outputs?.arn === "string" && !this.keys.has(r.outputs.arn)) this.keys.set(r.outputs.arn, { state: "Enabled" });
    }
  }

  /** `aws rds modify-db-instance --no-deletion-protection` (the offboarding's adapter). */
  disableDeletionProtection(identifier: string): void {
    this.deletionProtection.set(identifier, false);
  }
}

export interface DestroyReport {
  /** Deleted in AWS and dropped from the state, in order: `<type> <name>`. */
  deleted: string[];
  /** Dropped from the state, kept in AWS (retainOnDelete). */
  retained: string[];
  /** Refused by AWS or the provider: still in the state. */
  failed: { resource: string; error: string }[];
  /** Not tried: something that depends on them failed. Still in the state. */
  blocked: string[];
}

function inputsOf(r: StateResource): Record<string, unknown> {
  return unwrapSecrets(r.inputs) as Record<string, unknown>;
}

function label(r: StateResource): string {
  return `${r.type} ${r.urn.slice(r.urn.lastIndexOf("::") + 2)}`;
}

function strings(v: unknown, out: Set<string>): Set<string> {
  if (typeof v === "string") out.add(v);
  else if (Array.isArray(v)) for (const x of v) strings(x, out);
  else if (v && typeof v === "object") for (const x of Object.values(v)) strings(x, out);
  return out;
}

/** Values by which other resources refer to `r`: its id, and the ARN, key id, zone id and address it computed (not inputs it echoes). */
function references(r: StateResource): string[] {
  const o = r.outputs ?? {};
  const inputs = inputsOf(r);
  const computed = ["arn", "keyId", "zoneId", "address"].filter((k) => inputs[k] === undefined).map((k) => o[k]);
  const refs = [r.id, ...computed].filter((x): x is string => typeof x === "string" && x.length >= 8 && x !== "none");
  return [...new Set(refs)];
}

/** The input naming the resource itself (an RDS instance and its subnet group share a name: not a reference). */
const OWN_NAME: Readonly<Record<string, string>> = { "aws:s3/bucket:Bucket": "bucket", "aws:rds/instance:Instance": "identifier" };

/** urn -> urns it depends on (within the stack). */
function dependencies(state: Map<string, StateResource>): Map<string, Set<string>> {
  const byRef = new Map<string, string[]>();
  for (const r of state.values()) if (r.custom) for (const ref of references(r)) byRef.set(ref, [...(byRef.get(ref) ?? []), r.urn]);
  const deps = new Map<string, Set<string>>();
  for (const r of state.values()) {
    if (!r.custom) continue;
    const d = new Set<string>();
    const { [OWN_NAME[r.type] ?? "name"]: _own, ...refs } = inputsOf(r);
    for (const s of strings(refs, new Set())) for (const owner of byRef.get(s) ?? []) if (owner !== r.urn) d.add(owner);
    if (r.provider && state.has(r.provider)) d.add(r.provider);
    deps.set(r.urn, d);
  }
  return deps;
}

/** One provider Delete against the world; returns the AWS/provider error, or undefined when deleted. */
function deleteOne(world: AwsWorld, r: StateResource): string | undefined {
  const i = inputsOf(r);
  switch (r.type) {
    case "aws:s3/bucket:Bucket": {
      const bucket = String(i.bucket);
      const n = world.objects.get(bucket) ?? 0;
      if (n > 0 && i.forceDestroy !== true) {
        return `deleting S3 Bucket (${bucket}): BucketNotEmpty: The bucket you tried to delete is not empty. You must delete all versions in the bucket.`;
      }
      if (n > 0) world.emptied.push(`bucket ${bucket}: ${n} versions`);
      world.objects.delete(bucket);
      return undefined;
    }
    case "aws:rds/instance:Instance": {
      const id = String(i.identifier);
      if (world.deletionProtection.get(id) === true) {
        return `deleting RDS DB Instance (${id}): InvalidParameterCombination: Cannot delete protected DB Instance, please disable deletion protection and try again.`;
      }
      if (i.skipFinalSnapshot !== true) {
        const snap = i.finalSnapshotIdentifier;
        if (typeof snap !== "string" || snap === "") return `deleting RDS DB Instance (${id}): final_snapshot_identifier is required when skip_final_snapshot is false`;
        if (world.snapshots.has(snap)) return `deleting RDS DB Instance (${id}): DBSnapshotAlreadyExists: Cannot create the snapshot because a snapshot with the identifier ${snap} already exists.`;
        world.snapshots.set(snap, { instance: id, kmsKeyId: String(i.kmsKeyId) });
      }
      world.deletionProtection.delete(id);
      return undefined;
    }
    case "aws:kms/key:Key": {
      const arn = String(r.outputs?.arn);
      world.keys.set(arn, { state: "PendingDeletion", pendingWindowInDays: Number(i.deletionWindowInDays ?? 30) });
      return undefined;
    }
    case "aws:route53/zone:Zone": {
      const zone = String(i.name);
      const foreign = world.foreignRecords.get(zone) ?? [];
      if (foreign.length > 0 && i.forceDestroy !== true) {
        return `deleting Route53 Hosted Zone (${zone}): HostedZoneNotEmpty: The specified hosted zone contains non-required resource record sets and so cannot be deleted.`;
      }
      if (foreign.length > 0) world.emptied.push(`zone ${zone}: ${foreign.join(", ")}`);
      world.foreignRecords.delete(zone);
      return undefined;
    }
    case "aws:ec2/subnet:Subnet":
    case "aws:ec2/securityGroup:SecurityGroup": {
      const enis = world.foreignEnis.get(String(r.id)) ?? [];
      if (enis.length === 0) return undefined;
      const what = r.type === "aws:ec2/subnet:Subnet" ? "EC2 Subnet" : "Security Group";
      return `deleting ${what} (${String(r.id)}): DependencyViolation: has dependent objects (${enis.join(", ")}); gave up after the delete timeout`;
    }
    default:
      return undefined;
  }
}

/**
 * `pulumi destroy --continue-on-error` of `stack` held by `cloud`, against `world`. Throws
 * ProtectedError (nothing changed) while a resource in the state is protected.
 */
export function destroy(cloud: SimCloud, stack: string, world: AwsWorld): DestroyReport {
  const state = cloud.state(stack);
  for (const r of state.values()) {
    if (r.custom && r.protect) {
      throw new ProtectedError(`${stack}: resource "${r.urn}" cannot be deleted because it is protected; nothing was deleted`);
    }
  }
  const deps = dependencies(state);
  const dependents = new Map<string, string[]>();
  for (const [urn, ds] of deps) for (const d of ds) dependents.set(d, [...(dependents.get(d) ?? []), urn]);
  type Status = "pending" | "gone" | "failed" | "blocked";
  const status = new Map<string, Status>([...deps.keys()].map((u) => [u, "pending"]));
  const report: DestroyReport = { deleted: [], retained: [], failed: [], blocked: [] };
  let progress = true;
  while (progress) {
    progress = false;
    for (const [urn, st] of status) {
      if (st !== "pending") continue;
      const after = (dependents.get(urn) ?? []).map((u) => status.get(u)!);
      if (after.includes("pending")) continue;
      progress = true;
      const r = state.get(urn)!;
      if (after.some((s) => s === "failed" || s === "blocked")) {
        status.set(urn, "blocked");
        report.blocked.push(label(r));
        continue;
      }
      if (r.retainOnDelete) {
        report.retained.push(label(r));
        status.set(urn, "gone");
        continue;
      }
      const error = deleteOne(world, r);
      if (error !== undefined) {
        status.set(urn, "failed");
        report.failed.push({ resource: label(r), error });
        continue;
      }
      status.set(urn, "gone");
      report.deleted.push(label(r));
    }
  }
  const stuck = [...status].filter(([, st]) => st === "pending").map(([urn]) => `${label(state.get(urn)!)} (after ${[...(dependents.get(urn) ?? [])].map((u) => label(state.get(u)!)).join(", ")})`);
  if (stuck.length > 0) throw new Error(`destroy model: a dependency cycle leaves ${stuck.join("; ")}`);
  // What is gone leaves the state; components go when nothing is left below them.
  for (const [urn, st] of status) if (st === "gone") state.delete(urn);
  const left = new Set([...state.values()].filter((r) => r.custom).map((r) => r.urn));
  const keep = new Set<string>();
  for (const urn of left) for (let p = state.get(urn)?.parent; p && !keep.has(p); p = state.get(p)?.parent) keep.add(p);
  for (const r of [...state.values()]) if (!r.custom && !keep.has(r.urn)) state.delete(r.urn);
  return report;
}
