/**
 * The hub's endpoints moved from HubNetwork into the VpcEndpoints component: the next `up` of a
 * platform stack must claim the endpoints that exist, not replace them. The state before the move
 * is the HubNetwork subtree of both example platform stacks rendered under the mock runtime at
 * main 9e7e168 (fixtures/hubNetwork.before-endpoints.json); the engine double
 * (test/support/engineSim.ts, the engine's alias and replace rules with their sources) runs the
 * current render against it.
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { regionCode } from "../../infra/model/naming.ts";
import type { RenderedResource, RenderedStack } from "../../plan/types.ts";
import { SimCloud } from "../support/engineSim.ts";
import { C, exampleFleet, render, subtree } from "./support.ts";

interface Fixture {
  source: string;
  stacks: Record<string, RenderedResource[]>;
}
const before = JSON.parse(readFileSync(join(import.meta.dirname, "fixtures/hubNetwork.before-endpoints.json"), "utf8")) as Fixture;

const ENDPOINT = "aws:ec2/vpcEndpoint:VpcEndpoint";
const SG = "aws:ec2/securityGroup:SecurityGroup";
const INGRESS = "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule";
const SERVICES = ["secretsmanager", "kms", "sts", "logs", "ecr-api", "ecr-dkr"];

async function hubNow(stack: string): Promise<RenderedStack> {
  const r = await render(exampleFleet(), stack);
  const hub = r.resources.find((x) => x.type === C("HubNetwork"));
  if (!hub) throw new Error(`${stack}: no HubNetwork`);
  return { ...r, resources: subtree(r, hub.urn) };
}

function stateBefore(stack: string): RenderedStack {
  const resources = before.stacks[stack];
  if (!resources) throw new Error(`fixture has no ${stack}`);
  return { name: stack, resources } as RenderedStack;
}

describe.each(["platform-us-east-1", "platform-eu-west-1"])("%s: the hub's endpoints keep their state", (stack) => {
  const h = `hub-${regionCode(stack.replace("platform-", ""))}`;
  const urn = (parentChain: string, type: string, name: string) => `urn:pulumi:${stack}::saas-tenancy::${parentChain}$${type}::${name}`;
  const HUB = C("HubNetwork");
  const EP = `${HUB}$${C("VpcEndpoints")}`;
  // Every resource the move touched: the former URN (child of HubNetwork) and the new one.
  const moved = [
    { from: urn(HUB, SG, `${h}-endpoints`), to: urn(EP, SG, `${h}-endpoints`) },
    { from: urn(HUB, INGRESS, `${h}-endpoints-from-hub`), to: urn(EP, INGRESS, `${h}-endpoints-from-hub`) },
    ...SERVICES.map((s) => ({ from: urn(HUB, ENDPOINT, `${h}-${s}`), to: urn(EP, ENDPOINT, `${h}-endpoints-${s}`) })),
    { from: urn(HUB, ENDPOINT, `${h}-s3`), to: urn(EP, ENDPOINT, `${h}-endpoints-s3`) },
  ].sort((a, b) => a.to.localeCompare(b.to));

  it("the next up claims every former endpoint resource through its alias: nothing created, replaced, updated or deleted", async () => {
    const cloud = new SimCloud();
    cloud.up(stateBefore(stack));
    const report = cloud.up(await hubNow(stack));
    expect(report.aliased.sort((a, b) => a.to.localeCompare(b.to))).toEqual(moved);
    expect(report).toMatchObject({ created: [], updated: [], replaced: [], deleted: [], retained: [] });
  });

  it("the aliases cover every resource whose URN changed, and only those", async () => {
    const now = await hubNow(stack);
    const nowUrns = new Set(now.resources.map((r) => r.urn));
    const gone = stateBefore(stack).resources.filter((r) => !nowUrns.has(r.urn)).map((r) => r.urn).sort();
    // The component itself is new (no state to claim); every custom resource that left HubNetwork is aliased.
    expect(gone).toEqual(moved.map((m) => m.from).sort());
    for (const m of moved) {
      const r = now.resources.find((x) => x.urn === m.to)!;
      expect(r.options.aliases).toEqual([m.from]);
    }
    expect(now.resources.filter((r) => r.options.aliases !== undefined).map((r) => r.urn).sort()).toEqual(moved.map((m) => m.to).sort());
  });

  it("negative control: without the aliases the same up deletes and recreates every endpoint", async () => {
    const now = await hubNow(stack);
    const stripped = { ...now, resources: now.resources.map((r) => ({ ...r, options: { ...r.options, aliases: undefined } })) } as RenderedStack;
    const cloud = new SimCloud();
    cloud.up(stateBefore(stack));
    const report = cloud.up(stripped);
    expect(report.created.sort()).toEqual(moved.map((m) => m.to).sort());
    expect(report.deleted).toHaveLength(moved.length);
    expect(report.aliased).toEqual([]);
  });
});
