/**
 * Flow logs of cell VPCs (docs/network.md, "Flow logs"), rendered offline under the mock runtime:
 * rejected traffic to a log group in the env's global namespace, encrypted with the cell key (whose
 * policy lets CloudWatch Logs use it for that group only), kept a year, delivered by a role only
 * this account's VPC Flow Logs may assume; the same plumbing as a dedicated VPC's, which logs all
 * traffic. A destroy deletes the group with its logs (the destroy model of test/support/destroySim.ts).
 */
import { beforeAll, describe, expect, it } from "vitest";
import type { Fleet } from "../../infra/model/fleet.ts";
import { cellFlowLogGroupName, cellFlowLogRoleName, flowLogGroupName } from "../../infra/model/infraNames.ts";
import { tags } from "../../infra/model/naming.ts";
import { mockId } from "../../plan/render/mockOutputs.ts";
import type { RenderedStack } from "../../plan/types.ts";
import { AwsWorld, destroy } from "../support/destroySim.ts";
import { SimCloud } from "../support/engineSim.ts";
import { byTypeName, exampleFleet, json, ofType, plain, render, T } from "./support.ts";

const CELLS = ["shared-prod-use1-01", "shared-prod-use1-02", "shared-prod-euw1-01", "shared-staging-use1-01"];
const fleet: Fleet = exampleFleet();
const rendered = new Map<string, RenderedStack>();

beforeAll(async () => {
  for (const name of [...CELLS, "dedicated-acme-prod"]) rendered.set(name, await render(fleet, name));
});

describe.each(CELLS)("%s: flow logs", (stack) => {
  it("REJECT traffic of the cell VPC to its KMS-encrypted log group, a year's retention, through its own delivery role", () => {
    const r = rendered.get(stack)!;
    const cell = fleet.cells.get(stack)!;
    const n = `cell-${cell.id}-flow-logs`;
    const group = cellFlowLogGroupName("tenancy", cell.env, cell.id);
    expect(group).toBe(`/tenancy/${cell.env}/global/cells/${cell.id}/vpc-flow-logs`);
    const groupArn = `arn:aws:logs:${cell.region}:111111111111:log-group:${group}`;
    const keyArn = byTypeName(r, T.key, `cell-${cell.id}-key`).outputs?.arn;
    const t = tags("shared", cell.env, stack);
    expect(plain(byTypeName(r, T.logGroup, n))).toEqual({ name: group, kmsKeyId: keyArn, retentionInDays: 365, tags: t });
    const role = plain(byTypeName(r, T.role, n));
    expect(role.name).toBe(cellFlowLogRoleName("tenancy", cell.env, cell.id));
    expect(role.name).toBe(`tenancy-${cell.env}-flowlogs-cell-${cell.id}`);
    expect(json(role.assumeRolePolicy)).toEqual({
      Version: "2012-10-17",
      Statement: [{
        Sid: "VpcFlowLogsDelivers", Effect: "Allow", Principal: { Service: "vpc-flow-logs.amazonaws.com" }, Action: "sts:AssumeRole",
        Condition: { StringEquals: { "aws:SourceAccount": "111111111111" }, ArnLike: { "aws:SourceArn": `arn:aws:ec2:${cell.region}:111111111111:vpc-flow-log/*` } },
      }],
    });
    expect(json(plain(byTypeName(r, T.rolePolicy, n)).policy)).toEqual({
      Version: "2012-10-17",
      Statement: [{ Sid: "WriteFlowLogs", Effect: "Allow", Action: ["logs:CreateLogStream", "logs:PutLogEvents", "logs:DescribeLogStreams"], Resource: [`${groupArn}:*`] }],
    });
    expect(plain(byTypeName(r, T.flowLog, n))).toEqual({
      vpcId: mockId(T.vpc, `cell-${cell.id}-network-vpc`, stack),
      trafficType: "REJECT",
      logDestinationType: "cloud-watch-logs",
      logDestination: groupArn,
      iamRoleArn: `arn:aws:iam::111111111111:role/${role.name as string}`,
      tags: t,
    });
    // One flow log per cell, on its VPC.
    expect(ofType(r, T.flowLog)).toHaveLength(1);
  });

  it("the cell key lets CloudWatch Logs use it for the cell's flow-log group and nothing else", () => {
    const r = rendered.get(stack)!;
    const cell = fleet.cells.get(stack)!;
    const key = plain(byTypeName(r, T.key, `cell-${cell.id}-key`));
    expect(json(key.policy)).toEqual({
      Version: "2012-10-17",
      Statement: [
        { Sid: "AccountRootAdministers", Effect: "Allow", Principal: { AWS: "arn:aws:iam::111111111111:root" }, Action: "kms:*", Resource: "*" },
        {
          Sid: "CloudWatchLogsEncryptsCellLogGroups", Effect: "Allow", Principal: { Service: `logs.${cell.region}.amazonaws.com` },
          Action: ["kms:Encrypt*", "kms:Decrypt*", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:Describe*"], Resource: "*",
          Condition: { ArnEquals: { "kms:EncryptionContext:aws:logs:arn": [`arn:aws:logs:${cell.region}:111111111111:log-group:${cellFlowLogGroupName("tenancy", cell.env, cell.id)}`] } },
        },
      ],
    });
  });
});

describe("cells and dedicated VPCs alike", () => {
  it("the same plumbing: only the traffic type, the group's namespace and its key differ", () => {
    const cell = rendered.get("shared-prod-use1-01")!;
    const dedicated = rendered.get("dedicated-acme-prod")!;
    const c = plain(byTypeName(cell, T.flowLog, "cell-use1-01-flow-logs"));
    const d = plain(byTypeName(dedicated, T.flowLog, "tenant-acme-flow-logs"));
    expect([c.trafficType, d.trafficType]).toEqual(["REJECT", "ALL"]);
    expect([c.logDestinationType, d.logDestinationType]).toEqual(["cloud-watch-logs", "cloud-watch-logs"]);
    const cg = plain(byTypeName(cell, T.logGroup, "cell-use1-01-flow-logs"));
    const dg = plain(byTypeName(dedicated, T.logGroup, "tenant-acme-flow-logs"));
    expect([cg.retentionInDays, dg.retentionInDays]).toEqual([365, 365]);
    expect(dg.name).toBe(flowLogGroupName("tenancy", "prod", "acme"));
    expect(dg.kmsKeyId).toBe(byTypeName(dedicated, T.key, "tenant-acme-key").outputs?.arn);
  });

  it("a destroy deletes the flow log before its group and role, and the group with its logs (of the cell only the key is kept)", () => {
    const stack = "shared-staging-use1-01";
    const cloud = new SimCloud();
    cloud.up(rendered.get(stack)!);
    const report = destroy(cloud, stack, new AwsWorld());
    const n = "cell-use1-01-flow-logs";
    expect(report).toMatchObject({ failed: [], blocked: [], retained: [`${T.key} cell-use1-01-key`] });
    const at = (label: string) => {
      const i = report.deleted.indexOf(label);
      expect(i, label).toBeGreaterThanOrEqual(0);
      return i;
    };
    expect(at(`${T.flowLog} ${n}`)).toBeLessThan(at(`${T.logGroup} ${n}`));
    expect(at(`${T.flowLog} ${n}`)).toBeLessThan(at(`${T.role} ${n}`));
    expect(at(`${T.flowLog} ${n}`)).toBeLessThan(at(`${T.vpc} cell-use1-01-network-vpc`));
  });
});
