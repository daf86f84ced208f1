import { describe, expect, it } from "vitest";
import { analyzeResources } from "../../../plan/analyze.ts";
import { add, dedicatedStack, find, sharedStack, tagsFor, toResources, urn, urnOf, violation, violationsAfter, violationsOf } from "../fixtures.ts";

const P = "tenant-tags";
const D = dedicatedStack();
const S = sharedStack();
const tagsOf = (s: ReturnType<typeof dedicatedStack>, name: string) => find(s, name).inputs.tags as Record<string, string>;

describe(P, () => {
  it("passes both clean stacks (every taggable resource tagged, non-taggable ones untagged)", async () => {
    expect(await violationsOf(D)).toEqual([]);
    expect(await violationsOf(S)).toEqual([]);
  });

  it("reports missing tags", async () => {
    expect(await violationsAfter(D, (s) => delete find(s, "acme-bucket").inputs.tags)).toEqual([
      violation(P, urn(D, "acme-bucket"), "missing tag(s) tenant, env, stack, managed-by; every taggable resource carries tenant, env, stack, managed-by"),
    ]);
    expect(await violationsAfter(D, (s) => delete tagsOf(s, "acme-flow-logs")["managed-by"])).toEqual([
      violation(P, urn(D, "acme-flow-logs"), "missing tag(s) managed-by; every taggable resource carries tenant, env, stack, managed-by"),
    ]);
  });

  it("checks every taggable type of the SDK, not only the ones the program uses today", async () => {
    const vpc = await violationsAfter(D, (s) => add(s, "aws:ec2/vpc:Vpc", "acme-vpc", { cidrBlock: "10.64.0.0/16" }));
    expect(vpc).toEqual([violation(P, urnOf(D.name, "aws:ec2/vpc:Vpc", "acme-vpc"), "missing tag(s) tenant, env, stack, managed-by; every taggable resource carries tenant, env, stack, managed-by")]);
  });

  it("reports a managed-by other than saas-tenancy", async () => {
    expect(await violationsAfter(D, (s) => (tagsOf(s, "acme-bucket")["managed-by"] = "terraform"))).toEqual([
      violation(P, urn(D, "acme-bucket"), 'tag managed-by is "terraform", expected "saas-tenancy"'),
    ]);
  });

  it("reports a stack tag naming another stack", async () => {
    expect(await violationsAfter(D, (s) => (tagsOf(s, "acme-bucket").stack = "dedicated-acme-staging"))).toEqual([
      violation(P, urn(D, "acme-bucket"), 'tag stack is "dedicated-acme-staging" but the resource is in stack "dedicated-acme-prod"'),
    ]);
  });

  it("reports an env tag other than the stack's env", async () => {
    expect(await violationsAfter(D, (s) => (tagsOf(s, "acme-bucket").env = "staging"))).toEqual([
      violation(P, urn(D, "acme-bucket"), 'tag env is "staging" but stack "dedicated-acme-prod" is env "prod"'),
    ]);
  });

  it("reports an env outside the platform's environments where the stack name gives none", async () => {
    const tags = { tenant: "shared", env: "qa", stack: "sandbox", "managed-by": "saas-tenancy" };
    const bucket = { urn: urnOf("sandbox", "aws:s3/bucket:Bucket", "scratch"), type: "aws:s3/bucket:Bucket", name: "scratch", inputs: { bucket: "scratch", tags } };
    expect(await analyzeResources([bucket], "sandbox")).toEqual([
      violation(P, bucket.urn, 'tag env "qa" is not one of the platform environments: prod, staging, dev'),
    ]);
    expect(await analyzeResources([bucket], "sandbox", { settings: { environments: ["qa"] } })).toEqual([]);
  });

  it("reports a tenant tag that is neither a tenant id nor shared", async () => {
    expect(await violationsAfter(S, (s) => (tagsOf(s, "cell-bucket").tenant = "Globex_Corp"))).toEqual([
      violation(P, urn(S, "cell-bucket"), 'tag tenant "Globex_Corp" is neither a tenant id (a DNS label) nor "shared"'),
    ]);
  });

  it("passes a taggable type the program does not use yet when it carries the tags", async () => {
    const s = structuredClone(S);
    add(s, "aws:sqs/queue:Queue", "globex-jobs", { name: "globex-jobs", tags: tagsFor(s, "globex") });
    expect((await analyzeResources(toResources(s), s.name)).filter((v) => v.policy === P)).toEqual([]);
  });
});
