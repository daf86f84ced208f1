/**
 * tenant-bucket-retention-audit on the real program's renders (test/policy/support/rendered.ts):
 * every bucket of every example stack passes; each failing case removes or weakens one of the
 * bucket's versioning, noncurrent-version expiry or server access logging the way a hand-written
 * bucket would, and the exact violations are asserted. Platform stacks (the access log buckets
 * themselves) are out of scope.
 */
import { beforeAll, describe, expect, it } from "vitest";
import type { RenderedStack } from "../../../plan/types.ts";
import { violation } from "../fixtures.ts";
import { edited, fleetOf, policyViolations, renderAll } from "../support/rendered.ts";

const P = "tenant-bucket-retention-audit";
const CELL = "shared-prod-use1-01";
const DED = "dedicated-acme-prod";
const BUCKET = "aws:s3/bucket:Bucket";
const VERSIONING = "aws:s3/bucketVersioning:BucketVersioning";
const LIFECYCLE = "aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration";
const LOGGING = "aws:s3/bucketLogging:BucketLogging";
const fleet = fleetOf();
let renders: Map<string, RenderedStack>;

beforeAll(async () => {
  renders = await renderAll(fleet, fleet.stacks.keys());
}, 120_000);

const stack = (name: string) => renders.get(name)!;
const check = (s: RenderedStack) => policyViolations(fleet, s, P);
const bucketUrn = (s: RenderedStack) => s.resources.find((r) => r.type === BUCKET)!.urn;
const without = (s: RenderedStack, type: string): RenderedStack => ({ ...structuredClone(s), resources: structuredClone(s.resources).filter((r) => r.type !== type) });

const CELL_BUCKET = "tenancy-prod-use1-01-data-111111111111";
const DED_BUCKET = "tenancy-prod-acme-data-111111111111";
const NO_RULE = (b: string) =>
  `bucket ${b} has no enabled lifecycle rule expiring noncurrent versions over the whole bucket (noncurrentVersionExpiration.noncurrentDays, no filter): ` +
  "overwritten and deleted tenant objects are kept and billed forever, and an offboarded tenant's data outlives its deletion";

describe(P, () => {
  it("passes every stack of the example fleet (8 data buckets: 4 cells, 4 dedicated stacks)", async () => {
    let buckets = 0;
    for (const s of renders.values()) {
      expect(await check(s), s.name).toEqual([]);
      if (!s.name.startsWith("platform-")) buckets += s.resources.filter((r) => r.type === BUCKET).length;
    }
    expect(buckets).toBe(8);
  });

  it("reports a bucket without noncurrent-version expiry (the rule removed), in a cell and a dedicated stack", async () => {
    expect(await check(without(stack(CELL), LIFECYCLE))).toEqual([violation(P, bucketUrn(stack(CELL)), NO_RULE(CELL_BUCKET))]);
    expect(await check(without(stack(DED), LIFECYCLE))).toEqual([violation(P, bucketUrn(stack(DED)), NO_RULE(DED_BUCKET))]);
  });

  it("reports a rule that is disabled, limited to one prefix, or expires only current objects", async () => {
    const rule = (fn: (r: Record<string, unknown>) => void) => edited(stack(DED), LIFECYCLE, "tenant-acme-bucket", (p) => fn((p.rules as Record<string, unknown>[])[0]!));
    for (const s of [
      rule((r) => (r.status = "Disabled")),
      rule((r) => (r.filter = { prefix: "tenants/acme/" })),
      rule((r) => { delete r.noncurrentVersionExpiration; r.expiration = { days: 30 }; }),
    ]) expect(await check(s)).toEqual([violation(P, bucketUrn(stack(DED)), NO_RULE(DED_BUCKET))]);
    // Negative control: an empty prefix is the whole bucket.
    expect(await check(rule((r) => (r.filter = { prefix: "" })))).toEqual([]);
  });

  it("reports a bucket without access logging, or logging to anything but its env's log bucket in its region", async () => {
    const cell = stack(CELL);
    expect(await check(without(cell, LOGGING))).toEqual([
      violation(P, bucketUrn(cell), `bucket ${CELL_BUCKET} has no server access logging (BucketLogging): no record of who read or changed a tenant's objects`),
    ]);
    for (const target of [CELL_BUCKET, "tenancy-staging-use1-access-logs-111111111111", "tenancy-prod-euw1-access-logs-111111111111"]) {
      const s = edited(cell, LOGGING, "cell-use1-01-bucket", (p) => (p.targetBucket = target));
      expect(await check(s), target).toEqual([
        violation(P, bucketUrn(cell), `bucket ${CELL_BUCKET} logs its access to "${target}", not to its env's access log bucket tenancy-prod-use1-access-logs-111111111111`),
      ]);
    }
  });

  it("reports an unversioned bucket (noncurrent-version rules would never apply)", async () => {
    const s = edited(stack(DED), VERSIONING, "tenant-acme-bucket", (p) => (p.versioningConfiguration = { status: "Suspended" }));
    expect(await check(s)).toEqual([
      violation(P, bucketUrn(stack(DED)), `bucket ${DED_BUCKET} is not versioned (no BucketVersioning with status Enabled): overwritten and deleted tenant objects cannot be recovered`),
    ]);
  });

  it("a second, bare bucket in a dedicated stack gets all three findings; the platform's log buckets are not its concern", async () => {
    const ded = structuredClone(stack(DED));
    const like = ded.resources.find((r) => r.type === BUCKET)!;
    const urn = like.urn.replace(/::tenant-acme-bucket$/, "::scratch");
    const inputs = { ...like.inputs, bucket: "tenancy-prod-acme-scratch-111111111111" };
    ded.resources.push({ ...like, urn, name: "scratch", inputs, outputs: { ...like.outputs, ...inputs, id: inputs.bucket, arn: `arn:aws:s3:::${inputs.bucket}` } });
    expect((await check(ded)).map((v) => [v.urn, v.message.split(" ").slice(2, 5).join(" ")])).toEqual([
      [urn, "is not versioned"],
      [urn, "has no enabled"],
      [urn, "has no server"],
    ]);
    const platform = without(stack("platform-us-east-1"), LIFECYCLE);
    expect(platform.resources.some((r) => r.type === BUCKET)).toBe(true);
    expect(await check(platform)).toEqual([]);
  });
});
