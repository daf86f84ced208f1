/**
 * Destroying a whole dedicated stack (the offboarding's `offboard.delete`), on the real renders
 * applied to the engine double and its model of what AWS refuses to delete
 * (test/support/engineSim.ts, test/support/destroySim.ts: models, nothing is deployed). The world
 * holds what a live tenant stack has and the stack did not create: object versions in the bucket,
 * records in the zones (an ACM validation record, the app's own names), and in one case the
 * network interfaces of a load balancer the application made in the tenant VPC.
 */
import { describe, expect, it } from "vitest";
import { requireFleet } from "../../infra/model/fleet.ts";
import { cellStackName } from "../../infra/model/naming.ts";
import type { RenderedStack } from "../../plan/types.ts";
import { AwsWorld, destroy } from "../support/destroySim.ts";
import { ProtectedError, SimCloud } from "../support/engineSim.ts";
import { byTypeName, editYaml, ofType, plain, render, T, tempFleet } from "./support.ts";

const STACK = "dedicated-acme-prod";
const BUCKET = "aws:s3/bucket:Bucket";
const ZONE = "aws:route53/zone:Zone";
const RDS = "aws:rds/instance:Instance";
const KEY = "aws:kms/key:Key";
const REQUESTED = "2026-10-01T09:00:00Z";
const BACKED_UP = "2026-11-01T09:30:00Z";

/**
 * `backed-up`: the final backup recorded as before object copies existed (RDS snapshot only, no
 * `objectBackupAt`); `objects-backed-up`: the bucket's objects copied and recorded too.
 */
type Phase = "active" | "offboarding" | "backed-up" | "objects-backed-up";

/** A temp copy of the example fleet with acme in `phase`; returns its directory. */
function fleetDir(phase: Phase): string {
  let dir = "";
  tempFleet((d) => {
    dir = d;
    editYaml(d, `stacks/Pulumi.${STACK}.yaml`, (doc) => {
      (doc.config as Record<string, unknown>)["saas-tenancy:ingress"] = { dnsName: "acme-alb-123.us-east-1.elb.amazonaws.com", zoneId: "Z35SXDOTRQ7X7K" };
    });
  });
  setPhase(dir, phase);
  return dir;
}

function setPhase(dir: string, phase: Phase): void {
  editYaml(dir, "tenants/acme.yaml", (d) => {
    if (phase === "active") {
      d.lifecycle = "active";
      delete d.offboarding;
      return;
    }
    d.lifecycle = "offboarding";
    d.offboarding = {
      requestedAt: REQUESTED, graceDays: 30,
      ...(phase === "backed-up" || phase === "objects-backed-up" ? { finalBackupAt: BACKED_UP } : {}),
      ...(phase === "objects-backed-up" ? { objectBackupAt: BACKED_UP } : {}),
    };
  });
}

async function renderAt(dir: string): Promise<RenderedStack> {
  return render(requireFleet({ projectDir: dir }), STACK);
}

/** Flags that decide the destroy, per resource: exactly these inputs change with the phase. */
function destroyFlags(r: RenderedStack): Record<string, unknown> {
  const rds = plain(byTypeName(r, RDS, "tenant-acme-db"));
  return {
    bucket: {
      forceDestroy: plain(byTypeName(r, BUCKET, "tenant-acme-bucket")).forceDestroy,
      // The bucket and each of its settings (versioning, encryption, public access block, policy, lifecycle, logging).
      retainOnDelete: r.resources.filter((x) => x.name === "tenant-acme-bucket" && x.custom).map((x) => x.options.retainOnDelete),
    },
    publicZone: plain(byTypeName(r, ZONE, "tenant-acme-dns-public")).forceDestroy,
    privateZone: plain(byTypeName(r, ZONE, "tenant-acme-dns-private")).forceDestroy,
    rds: { deletionProtection: rds.deletionProtection, skipFinalSnapshot: rds.skipFinalSnapshot, protect: byTypeName(r, RDS, "tenant-acme-db").options.protect },
    key: { protect: byTypeName(r, KEY, "tenant-acme-key").options.protect, retainOnDelete: byTypeName(r, KEY, "tenant-acme-key").options.retainOnDelete },
  };
}

/** A live acme prod stack: deployed active, with data and records the stack did not make. */
async function live(): Promise<{ dir: string; cloud: SimCloud; world: AwsWorld; first: RenderedStack; bucket: string }> {
  const dir = fleetDir("active");
  const first = await renderAt(dir);
  const cloud = new SimCloud();
  cloud.up(first);
  const world = new AwsWorld();
  world.sync(cloud, STACK);
  const bucket = String(plain(byTypeName(first, BUCKET, "tenant-acme-bucket")).bucket);
  world.objects.set(bucket, 1200);
  world.foreignRecords.set("acme.dedicated.tenancy.example.com", ["_3f1a.acme.dedicated.tenancy.example.com CNAME (ACM validation)"]);
  world.foreignRecords.set("acme.prod.internal", ["api.acme.prod.internal A (the app's)"]);
  return { dir, cloud, world, first, bucket };
}

/** Types of the custom resources left in the stack's state, sorted. */
function leftIn(cloud: SimCloud): string[] {
  return [...cloud.state(STACK).values()].filter((r) => r.custom).map((r) => r.type).sort();
}

/** What the offboarding's release does for this stack: Pulumi `protect` lifted, RDS deletion protection off (ModifyDBInstance). */
function release(cloud: SimCloud, world: AwsWorld): void {
  cloud.unprotectAll(STACK);
  world.disableDeletionProtection("tenancy-prod-acme");
}

describe("dedicated stack: what the program renders for a destroy", () => {
  it("forceDestroy and deletion protection change only once the final backup is recorded in the tenant file", async () => {
    const active = { bucket: { forceDestroy: false, retainOnDelete: [false, false, false, false, false, false, false] }, publicZone: false, privateZone: false, rds: { deletionProtection: true, skipFinalSnapshot: false, protect: true }, key: { protect: true, retainOnDelete: true } };
    expect(destroyFlags(await renderAt(fleetDir("active")))).toEqual(active);
    // Requested but not backed up: nothing a destroy could empty.
    expect(destroyFlags(await renderAt(fleetDir("offboarding")))).toEqual(active);
    expect(destroyFlags(await renderAt(fleetDir("backed-up")))).toEqual({
      // Kept, not emptied: the final backup (an RDS snapshot) does not hold the bucket's objects.
      bucket: { forceDestroy: false, retainOnDelete: [true, true, true, true, true, true, true] }, publicZone: true, privateZone: true,
      // The final snapshot and Pulumi protect stay: the runner lifts protect for the released destroy only.
      rds: { deletionProtection: false, skipFinalSnapshot: false, protect: true },
      key: { protect: true, retainOnDelete: true },
    });
    // The copy of the bucket's objects recorded too: the bucket is emptied by the destroy, not kept.
    expect(destroyFlags(await renderAt(fleetDir("objects-backed-up")))).toEqual({
      bucket: { forceDestroy: true, retainOnDelete: [false, false, false, false, false, false, false] }, publicZone: true, privateZone: true,
      rds: { deletionProtection: false, skipFinalSnapshot: false, protect: true },
      key: { protect: true, retainOnDelete: true },
    });
  });

  it("negative control: objectBackupAt without finalBackupAt releases nothing (the bucket refuses, as for an active tenant)", async () => {
    const dir = fleetDir("offboarding");
    editYaml(dir, "tenants/acme.yaml", (d) => {
      (d.offboarding as Record<string, unknown>).objectBackupAt = BACKED_UP;
    });
    const flags = destroyFlags(await renderAt(dir));
    expect([flags.bucket, flags.publicZone, (flags.rds as { deletionProtection: unknown }).deletionProtection]).toEqual([{ forceDestroy: false, retainOnDelete: [false, false, false, false, false, false, false] }, false, true]);
  });

  it("the release's up changes exactly both zones and the instance, in place (the bucket's retainOnDelete is an option: state only); a second up changes nothing", async () => {
    const { dir, cloud } = await live();
    setPhase(dir, "backed-up");
    const released = await renderAt(dir);
    const report = cloud.up(released);
    const names = (urns: string[]) => urns.map((u) => u.slice(u.lastIndexOf("::") + 2)).sort();
    // And the runtime config, whose lifecycle turns from active to offboarding with the same commit.
    expect(names(report.updated)).toEqual(["tenant-acme-config", "tenant-acme-db", "tenant-acme-dns-private", "tenant-acme-dns-public"]);
    expect([...cloud.state(STACK).values()].filter((x) => x.urn.endsWith("::tenant-acme-bucket") && x.custom).map((x) => x.retainOnDelete)).toEqual([true, true, true, true, true, true, true]);
    expect([report.created, report.replaced, report.deleted, report.retained]).toEqual([[], [], [], []]);
    expect(cloud.up(released).updated).toEqual([]);
    // Then the object copy is recorded: the next up changes the bucket alone (forceDestroy into the
    // state; retainOnDelete leaves the state of the bucket and its settings), and a second changes nothing.
    setPhase(dir, "objects-backed-up");
    const emptied = await renderAt(dir);
    const second = cloud.up(emptied);
    expect(names(second.updated)).toEqual(["tenant-acme-bucket"]);
    expect([...cloud.state(STACK).values()].filter((x) => x.urn.endsWith("::tenant-acme-bucket") && x.custom).map((x) => x.retainOnDelete)).toEqual([false, false, false, false, false, false, false]);
    expect([second.created, second.replaced, second.deleted]).toEqual([[], [], []]);
    expect(cloud.up(emptied).updated).toEqual([]);
  });

  it("a shared cell's bucket is never force-destroyed nor released, whatever its tenants' files say", async () => {
    const dir = fleetDir("active");
    editYaml(dir, "tenants/startup-alpha.yaml", (d) => {
      d.lifecycle = "offboarding";
      d.offboarding = { requestedAt: REQUESTED, finalBackupAt: BACKED_UP };
    });
    const fleet = requireFleet({ projectDir: dir });
    const alpha = fleet.tenants.get("startup-alpha")!.tenant;
    if (alpha.deployment !== "pooled") throw new Error("startup-alpha is pooled in the example fleet");
    const r = await render(fleet, cellStackName("prod", alpha.placement.prod!));
    expect(ofType(r, BUCKET).map((b) => [plain(b).forceDestroy, b.options.retainOnDelete])).toEqual([[false, false]]);
    expect(ofType(r, T.zone)).toEqual([]);
  });
});

describe("destroying a whole dedicated prod stack (engine double, AWS refusals modelled)", () => {
  it("an active tenant's stack: the engine refuses at once (protected key and instance); nothing is deleted", async () => {
    const { cloud, world, first } = await live();
    expect(() => destroy(cloud, STACK, world)).toThrow(ProtectedError);
    expect(cloud.state(STACK).size).toBe(first.resources.length);
  });

  it("negative control: protection lifted but no final backup recorded: AWS refuses the bucket and both zones; the bucket's data stays", async () => {
    const { dir, cloud, world, bucket } = await live();
    setPhase(dir, "offboarding");
    cloud.up(await renderAt(dir));
    release(cloud, world);
    const report = destroy(cloud, STACK, world);
    expect(report.failed.map((f) => f.resource).sort()).toEqual([
      `${ZONE} tenant-acme-dns-private`, `${ZONE} tenant-acme-dns-public`, `${BUCKET} tenant-acme-bucket`,
    ]);
    const error = (name: string) => report.failed.find((f) => f.resource.endsWith(` ${name}`))!.error;
    expect(error("tenant-acme-bucket")).toBe(`deleting S3 Bucket (${bucket}): BucketNotEmpty: The bucket you tried to delete is not empty. You must delete all versions in the bucket.`);
    expect(error("tenant-acme-dns-public")).toBe(
      "deleting Route53 Hosted Zone (acme.dedicated.tenancy.example.com): HostedZoneNotEmpty: The specified hosted zone contains non-required resource record sets and so cannot be deleted.",
    );
    expect(world.objects.get(bucket)).toBe(1200);
    expect(world.emptied).toEqual([]);
    // Left in the state: the refused resources, the VPC the private zone is associated with (the
    // engine deletes it only after the zone) and the provider they need.
    expect(report.blocked.sort()).toEqual([`${T.vpc} tenant-acme-network-vpc`, "pulumi:providers:aws aws"]);
    expect(leftIn(cloud)).toEqual([T.vpc, ZONE, ZONE, BUCKET, "pulumi:providers:aws"]);
  });

  it("negative control: RDS deletion protection left on in AWS: the instance is refused and what it depends on stays", async () => {
    const { dir, cloud, world } = await live();
    setPhase(dir, "offboarding");
    cloud.up(await renderAt(dir));
    cloud.unprotectAll(STACK);
    const report = destroy(cloud, STACK, world);
    expect(report.failed.find((f) => f.resource === `${RDS} tenant-acme-db`)?.error).toBe(
      "deleting RDS DB Instance (tenancy-prod-acme): InvalidParameterCombination: Cannot delete protected DB Instance, please disable deletion protection and try again.",
    );
    expect(report.blocked).toEqual(expect.arrayContaining([`${T.subnet} tenant-acme-network-private-us-east-1a`, `${T.vpc} tenant-acme-network-vpc`]));
  });

  it("after the recorded backup, the release's up and the protection lift: everything goes but the key and the bucket (kept with its data); zones emptied, a final snapshot under the kept key", async () => {
    const { dir, cloud, world, first, bucket } = await live();
    setPhase(dir, "backed-up");
    cloud.up(await renderAt(dir));
    world.sync(cloud, STACK);
    release(cloud, world);
    const report = destroy(cloud, STACK, world);
    expect(report.failed).toEqual([]);
    expect(report.blocked).toEqual([]);
    const bucketParts = first.resources.filter((r) => r.custom && r.name === "tenant-acme-bucket").map((r) => `${r.type} tenant-acme-bucket`).sort();
    expect(bucketParts).toHaveLength(7);
    expect(report.retained.sort()).toEqual([`${KEY} tenant-acme-key`, ...bucketParts].sort());
    const custom = first.resources.filter((r) => r.custom);
    expect(report.deleted).toHaveLength(custom.length - 8);
    expect(cloud.state(STACK).size).toBe(0);
    expect(world.objects.get(bucket)).toBe(1200);
    expect([...world.emptied].sort()).toEqual([
      "zone acme.dedicated.tenancy.example.com: _3f1a.acme.dedicated.tenancy.example.com CNAME (ACM validation)",
      "zone acme.prod.internal: api.acme.prod.internal A (the app's)",
    ]);
    const keyArn = String(byTypeName(first, KEY, "tenant-acme-key").outputs?.arn);
    const snapshots = [...world.snapshots];
    expect(snapshots).toHaveLength(1);
    expect(snapshots[0]![0]).toMatch(/^tenancy-prod-acme-final-[0-9a-f]{8}$/);
    expect(snapshots[0]![1]).toEqual({ instance: "tenancy-prod-acme", kmsKeyId: keyArn });
    // The key that encrypts it is not pending deletion: the snapshot stays restorable.
    expect(world.keys.get(keyArn)).toEqual({ state: "Enabled" });
    // Order: the tenant's schema and role go before the instance that holds them, the instance before its subnets, the subnets before the VPC.
    const at = (prefix: string) => report.deleted.findIndex((d) => d.startsWith(prefix));
    expect(at(T.pgSchema)).toBeGreaterThanOrEqual(0);
    expect(at(T.pgSchema)).toBeLessThan(at(`${RDS} tenant-acme-db`));
    expect(at(`${RDS} tenant-acme-db`)).toBeLessThan(at(`${T.subnet} tenant-acme-network-private-us-east-1a`));
    expect(at(`${T.subnet} tenant-acme-network-private-us-east-1a`)).toBeLessThan(at(`${T.vpc} tenant-acme-network-vpc`));
  });

  it("after the recorded backup and object copy: the bucket goes too, every version deleted by forceDestroy; only the key is kept", async () => {
    const { dir, cloud, world, first, bucket } = await live();
    setPhase(dir, "objects-backed-up");
    cloud.up(await renderAt(dir));
    world.sync(cloud, STACK);
    release(cloud, world);
    const report = destroy(cloud, STACK, world);
    expect([report.failed, report.blocked]).toEqual([[], []]);
    expect(report.retained).toEqual([`${KEY} tenant-acme-key`]);
    expect(report.deleted).toHaveLength(first.resources.filter((r) => r.custom).length - 1);
    expect(report.deleted).toContain(`${BUCKET} tenant-acme-bucket`);
    expect(world.objects.has(bucket)).toBe(false);
    expect(world.emptied).toContain(`bucket ${bucket}: 1200 versions`);
    expect(cloud.state(STACK).size).toBe(0);
  });

  it("negative control: objectBackupAt in the file but no up after it (the state still says retainOnDelete): the bucket is kept with its data, not emptied", async () => {
    const { dir, cloud, world, bucket } = await live();
    setPhase(dir, "backed-up");
    cloud.up(await renderAt(dir));
    world.sync(cloud, STACK);
    // The file now records the object copy, but the destroy runs without the up that carries it into the state.
    setPhase(dir, "objects-backed-up");
    release(cloud, world);
    const report = destroy(cloud, STACK, world);
    // The state of the released up says retainOnDelete: the bucket leaves the state with its data.
    expect(report.retained).toContain(`${BUCKET} tenant-acme-bucket`);
    expect(world.objects.get(bucket)).toBe(1200);
    expect(world.emptied.filter((e) => e.startsWith("bucket"))).toEqual([]);
  });

  it("negative control of the key rule: a key that were not retained would be pending deletion, its final snapshot unrestorable after the window", async () => {
    const { dir, cloud, world, first } = await live();
    setPhase(dir, "backed-up");
    const released = await renderAt(dir);
    for (const r of released.resources) if (r.type === KEY) r.options.retainOnDelete = false;
    cloud.up(released);
    world.sync(cloud, STACK);
    release(cloud, world);
    destroy(cloud, STACK, world);
    expect(world.keys.get(String(byTypeName(first, KEY, "tenant-acme-key").outputs?.arn))).toEqual({ state: "PendingDeletion", pendingWindowInDays: 30 });
  });

  it("a load balancer the application left in the VPC: its subnet and group are refused (DependencyViolation), the VPC stays; once it is gone the retried destroy finishes", async () => {
    // Nothing the stack holds data in is left by then: the instance is deleted (final snapshot taken), the bucket kept out of the state.
    const { dir, cloud, world, first } = await live();
    setPhase(dir, "backed-up");
    cloud.up(await renderAt(dir));
    world.sync(cloud, STACK);
    release(cloud, world);
    const subnetA = String(byTypeName(first, T.subnet, "tenant-acme-network-private-us-east-1a").id);
    const appSg = String(byTypeName(first, T.sg, "tenant-acme-sg-app").id);
    const alb = ["eni-0aa1 (ELB app/acme-internal/50dc6c495c0c9188)"];
    world.foreignEnis.set(subnetA, alb);
    world.foreignEnis.set(appSg, alb);
    const report = destroy(cloud, STACK, world);
    expect(report.failed.map((f) => f.resource).sort()).toEqual([`${T.sg} tenant-acme-sg-app`, `${T.subnet} tenant-acme-network-private-us-east-1a`]);
    expect(report.failed.find((f) => f.resource.startsWith(T.subnet))!.error).toBe(`deleting EC2 Subnet (${subnetA}): DependencyViolation: has dependent objects (eni-0aa1 (ELB app/acme-internal/50dc6c495c0c9188)); gave up after the delete timeout`);
    expect(report.blocked.sort()).toEqual([`${T.vpc} tenant-acme-network-vpc`, "pulumi:providers:aws aws"]);
    expect(leftIn(cloud)).toEqual([T.sg, T.subnet, T.vpc, "pulumi:providers:aws"]);
    world.foreignEnis.clear();
    const retry = destroy(cloud, STACK, world);
    expect([retry.failed, retry.blocked]).toEqual([[], []]);
    expect(retry.deleted.sort()).toEqual([`${T.sg} tenant-acme-sg-app`, `${T.subnet} tenant-acme-network-private-us-east-1a`, `${T.vpc} tenant-acme-network-vpc`, "pulumi:providers:aws aws"]);
    expect(cloud.state(STACK).size).toBe(0);
  });
});
