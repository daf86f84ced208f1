import * as aws from "@pulumi/aws";
import * as pulumi from "@pulumi/pulumi";
import * as random from "@pulumi/random";
import { resolve } from "node:path";
import { describe, expect, it } from "vitest";
import { requireFleet, type Fleet } from "../../infra/model/fleet.ts";
import { renderStack } from "../../plan/render/render.ts";
import { isSecretValue, SECRET_SIG, SECRET_SIG_KEY } from "../../plan/types.ts";

const fleet = requireFleet({ projectDir: resolve(import.meta.dirname, "../..") });

class Holder extends pulumi.ComponentResource {
  constructor(name: string, opts?: pulumi.ComponentResourceOptions) {
    super("test:index:Holder", name, {}, opts);
    new aws.s3.Bucket(`${name}-bucket`, { bucket: `${name}-bucket`, tags: { tenant: "acme" } }, { parent: this, protect: true });
    this.registerOutputs({});
  }
}

/** A tiny program exercising what the real one relies on: components, secrets, computed outputs. */
async function program(_f: Fleet, stackName: string) {
  new Holder("h1");
  const pw = new random.RandomPassword("pw", { length: 20, special: false });
  const key = new aws.kms.Key("key", { enableKeyRotation: true, description: stackName });
  const secret = new aws.secretsmanager.Secret("s", { name: "tenancy/prod/tenants/acme/database", kmsKeyId: key.arn });
  new aws.secretsmanager.SecretVersion("sv", { secretId: secret.id, secretString: pulumi.jsonStringify({ password: pw.result }) });
  return { keyArn: key.arn, password: pw.result };
}

describe("renderStack", () => {
  it("records every registration with engine-style URNs, parents, options and secret inputs", async () => {
    const r = await renderStack(fleet, "dedicated-acme-prod", { program });
    const byName = new Map(r.resources.map((x) => [x.name, x]));
    expect(r.kind).toBe("dedicated");
    expect(r.tenants).toEqual(["acme"]);
    expect([...byName.keys()].sort()).toEqual(["h1", "h1-bucket", "key", "pw", "s", "saas-tenancy-dedicated-acme-prod", "sv"]);
    const stackUrn = byName.get("saas-tenancy-dedicated-acme-prod")!.urn;
    expect(stackUrn).toBe("urn:pulumi:dedicated-acme-prod::saas-tenancy::pulumi:pulumi:Stack::saas-tenancy-dedicated-acme-prod");
    // Children of the stack: no stack type in the qualified type; children of a component: the chain.
    expect(byName.get("h1")!.urn).toBe("urn:pulumi:dedicated-acme-prod::saas-tenancy::test:index:Holder::h1");
    expect(byName.get("h1-bucket")!.urn).toBe(
      "urn:pulumi:dedicated-acme-prod::saas-tenancy::test:index:Holder$aws:s3/bucket:Bucket::h1-bucket",
    );
    expect(byName.get("h1-bucket")!.parent).toBe(byName.get("h1")!.urn);
    expect(byName.get("h1-bucket")!.options.protect).toBe(true);
    expect(byName.get("key")!.options.protect).toBe(false);
    expect(byName.get("h1")!.custom).toBe(false);
    // The KMS key ARN is computed by the mock in AWS's format and flows into the secret's input.
    const kmsKeyId = byName.get("s")!.inputs.kmsKeyId as string;
    expect(kmsKeyId).toMatch(/^arn:aws:kms:us-east-1:111111111111:key\/[0-9a-f-]{36}$/);
    // RandomPassword.result is an additionalSecretOutput: the secret version's input stays a secret.
    const sv = byName.get("sv")!.inputs.secretString;
    expect(isSecretValue(sv)).toBe(true);
    expect((sv as Record<string, unknown>)[SECRET_SIG_KEY]).toBe(SECRET_SIG);
    expect(isSecretValue(r.outputs.password)).toBe(true);
    expect(r.outputs.keyArn).toBe(kmsKeyId);
  });

  it("renders two stacks in one process without leaking resources or config between them", async () => {
    const a = await renderStack(fleet, "dedicated-acme-prod", { program });
    const b = await renderStack(fleet, "dedicated-delta-health-prod", { program });
    expect(a.resources).toHaveLength(7);
    expect(b.resources).toHaveLength(7);
    expect(b.resources.every((x) => x.urn.startsWith("urn:pulumi:dedicated-delta-health-prod::"))).toBe(true);
    // aws:region comes from each stack's file.
    expect(pulumi.runtime.getConfig("aws:region")).toBe("eu-west-1");
    const keyB = b.resources.find((x) => x.name === "s")!.inputs.kmsKeyId as string;
    expect(keyB.startsWith("arn:aws:kms:eu-west-1:")).toBe(true);
  });

  it("is deterministic: the same stack renders identically twice", async () => {
    const a = await renderStack(fleet, "dedicated-acme-prod", { program });
    const b = await renderStack(fleet, "dedicated-acme-prod", { program, fastPromises: true });
    expect(b).toEqual(a);
  });

  it("refuses a concurrent render instead of mixing two stacks", async () => {
    const first = renderStack(fleet, "dedicated-acme-prod", { program });
    await expect(renderStack(fleet, "dedicated-acme-prod", { program })).rejects.toThrow(/one at a time/);
    await first;
  });
});

describe("renderStack with a failing program", () => {
  it("rejects with the program's error and leaves no unhandled rejection behind", async () => {
    const unhandled: unknown[] = [];
    const onUnhandled = (reason: unknown) => void unhandled.push(reason);
    process.on("unhandledRejection", onUnhandled);
    try {
      const failing = async () => {
        new aws.s3.Bucket("before-the-error", { bucket: "before-the-error" });
        throw new Error("stacks/Pulumi.x.yaml: invalid settings");
      };
      await expect(renderStack(fleet, "dedicated-acme-prod", { program: failing })).rejects.toThrow("invalid settings");
      await new Promise((r) => setTimeout(r, 50));
      expect(unhandled).toEqual([]);
      // The process can render again afterwards.
      expect((await renderStack(fleet, "dedicated-acme-prod", { program })).resources).toHaveLength(7);
    } finally {
      process.off("unhandledRejection", onUnhandled);
    }
  });
});

describe("fastPromises", () => {
  it("restores the SDK's own functions after a render, even a failing one", async () => {
    const { createRequire } = await import("node:module");
    const require = createRequire(import.meta.url);
    const debuggable = require("@pulumi/pulumi/runtime/debuggable.js") as { debuggablePromise: unknown };
    const resource = require("@pulumi/pulumi/resource.js") as { Resource: { stackTrace: unknown } };
    const before = [debuggable.debuggablePromise, resource.Resource.stackTrace];
    await renderStack(fleet, "dedicated-acme-prod", { program, fastPromises: true });
    await expect(renderStack(fleet, "dedicated-acme-prod", { program: async () => { throw new Error("boom"); }, fastPromises: true })).rejects.toThrow("boom");
    expect([debuggable.debuggablePromise, resource.Resource.stackTrace]).toEqual(before);
  });
});
