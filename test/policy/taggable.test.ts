import { describe, expect, it } from "vitest";
import { awsSdkVersion, renderTaggableModule, taggableTypes } from "../../policy/scripts/taggable.ts";
import { AWS_SDK_VERSION, TAGGABLE_TYPES } from "../../policy/taggable-types.ts";
import { readFileSync } from "node:fs";

describe("taggable types", () => {
  it("is the list the installed @pulumi/aws declares (regenerate with `npx tsx policy/scripts/taggable.ts`)", () => {
    const types = taggableTypes();
    expect(AWS_SDK_VERSION).toBe(awsSdkVersion());
    expect([...TAGGABLE_TYPES]).toEqual(types);
    expect(readFileSync(new URL("../../policy/taggable-types.ts", import.meta.url), "utf8")).toBe(renderTaggableModule(types, awsSdkVersion()));
  });

  it("includes resources whose args have map tags and excludes those without tags or with tag blocks", () => {
    for (const t of ["aws:rds/instance:Instance", "aws:kms/key:Key", "aws:secretsmanager/secret:Secret", "aws:s3/bucket:Bucket", "aws:iam/role:Role", "aws:route53/zone:Zone", "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule"]) {
      expect(TAGGABLE_TYPES.has(t), t).toBe(true);
    }
    for (const t of ["aws:kms/alias:Alias", "aws:secretsmanager/secretVersion:SecretVersion", "aws:iam/rolePolicy:RolePolicy", "aws:route53/record:Record", "aws:ec2/securityGroupRule:SecurityGroupRule", "aws:autoscaling/group:Group"]) {
      expect(TAGGABLE_TYPES.has(t), t).toBe(false);
    }
  });
});
