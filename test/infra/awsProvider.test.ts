/**
 * Every AWS resource of every stack kind goes through one explicit provider pinned to the
 * platform account (`allowedAccountIds`) and the stack's region: wrong credentials fail before
 * anything is read or built, and nothing falls back to the default provider.
 */
import { beforeAll, describe, expect, it } from "vitest";
import type { RenderedStack } from "../../plan/types.ts";
import { renderStack } from "../../plan/render/render.ts";
import { exampleFleet, plain } from "./support.ts";

const fleet = exampleFleet();
const STACKS = { "shared-prod-euw1-01": "eu-west-1", "shared-prod-use1-02": "us-east-1", "dedicated-megacorp-prod": "us-east-1" } as const;
const rendered = new Map<string, RenderedStack>();

beforeAll(async () => {
  for (const name of Object.keys(STACKS)) rendered.set(name, await renderStack(fleet, name));
});

describe("the AWS provider of each stack", () => {
  it.each(Object.entries(STACKS))("%s: one provider, the stack's region, allowedAccountIds = the platform account", (name, region) => {
    const r = rendered.get(name)!;
    const providers = r.resources.filter((x) => x.type === "pulumi:providers:aws");
    // The SDK sends provider config that is not a string JSON-encoded, as the engine expects it.
    expect(providers.map((p) => [p.name, plain(p).region, JSON.parse(String(plain(p).allowedAccountIds))])).toEqual([["aws", region, ["111111111111"]]]);
  });

  it.each(Object.keys(STACKS))("%s: every AWS resource uses it (none falls back to the default provider)", (name) => {
    const r = rendered.get(name)!;
    const provider = r.resources.find((x) => x.type === "pulumi:providers:aws")!;
    const aws = r.resources.filter((x) => x.custom && x.type.startsWith("aws:"));
    expect(aws.length).toBeGreaterThan(30);
    const elsewhere = aws.filter((x) => !x.options.provider.startsWith(`${provider.urn}::`)).map((x) => `${x.type} ${x.name}: ${x.options.provider}`);
    expect(elsewhere).toEqual([]);
  });
});
