import { describe, expect, it } from "vitest";
import { analyzeResources, analyzeStack, type AnalyzableResource } from "../../plan/analyze.ts";
import { dedicatedStack, find, secret, sharedStack, toRendered, toResources, urn, violation, violationsOf } from "../policy/fixtures.ts";

const D = dedicatedStack();
const S = sharedStack();

/** Input-only resources, each reference recorded as the engine records it: input -> source URNs. */
function withPropertyDependencies(resources: AnalyzableResource[]): AnalyzableResource[] {
  const keyUrn = resources.find((r) => r.name === "acme-key")!.urn;
  const secretUrn = (name: string) => resources.find((r) => r.name === name)!.urn;
  const zoneUrn = (name: string) => resources.find((r) => r.name === name)!.urn;
  const deps: Record<string, Record<string, string[]>> = {
    "acme-key-alias": { targetKeyId: [keyUrn] },
    "acme-master-secret": { kmsKeyId: [keyUrn] },
    "acme-database-secret": { kmsKeyId: [keyUrn] },
    "acme-master-secret-version": { secretId: [secretUrn("acme-master-secret")] },
    "acme-database-secret-version": { secretId: [secretUrn("acme-database-secret")] },
    "acme-db": { kmsKeyId: [keyUrn], performanceInsightsKmsKeyId: [keyUrn] },
    "acme-flow-logs": { kmsKeyId: [keyUrn] },
    "acme-bucket-sse": { rules: [keyUrn] },
    "acme-ingress": { zoneId: [zoneUrn("acme-zone")] },
    "acme-db-record": { zoneId: [zoneUrn("acme-private-zone")] },
    "acme-role-policy": { policy: [keyUrn] },
  };
  return resources.map((r) => ({ ...r, outputs: undefined, propertyDependencies: deps[r.name] ?? {} }));
}

describe("analyzeResources / analyzeStack", () => {
  it("finds nothing in the clean stacks, given outputs as the engine reports them", async () => {
    expect(await violationsOf(D)).toEqual([]);
    expect(await violationsOf(S)).toEqual([]);
  });

  it("resolves references through property dependencies when outputs are missing", async () => {
    expect(await analyzeResources(withPropertyDependencies(toResources(D)), D.name)).toEqual([]);
  });

  it("reports a reference it cannot resolve rather than assuming it is fine (plan input without outputs)", async () => {
    const inputsOnly = toRendered(D);
    const found = await analyzeStack({ name: D.name, resources: inputsOnly });
    expect(found).toContainEqual(
      violation("kms-tenant-key", urn(D, "acme-flow-logs"), `kmsKeyId names "${find(D, "acme-key").computed.arn as string}" (not a key of this stack), not the key of tenant "acme"`),
    );
  });

  it("runs resource policies on inputs, with secret markers unwrapped by the SDK", async () => {
    const rendered = toRendered(D);
    const db = rendered.find((r) => r.name === "acme-db")!;
    db.inputs = { ...db.inputs, publiclyAccessible: secret(true) };
    const found = await analyzeResources([rendered[0]!, db], D.name);
    expect(found.filter((v) => v.policy === "rds-hardening")).toEqual([
      violation("rds-hardening", db.urn, "publiclyAccessible is true: a database is never reachable from the internet"),
    ]);
  });

  it("gives the stack's outputs to its root resource, as the engine does", async () => {
    const password = find(D, "acme-db").inputs.password;
    const found = await analyzeStack({ name: D.name, resources: toRendered(D), outputs: { masterPassword: password } });
    expect(found.filter((v) => v.policy === "secrets-stay-secret")).toEqual([
      violation(
        "secrets-stay-secret",
        toRendered(D)[0]!.urn,
        'stack output masterPassword contains the secret value of aws:secretsmanager/secretVersion:SecretVersion "acme-master-secret-version".secretString field "password"; it would be stored and shown in plaintext',
      ),
    ]);
  });

  it("evaluates with other settings when asked", async () => {
    const found = await analyzeResources(toResources(S), S.name, { settings: { appName: "shop" } });
    expect(found.filter((v) => v.policy === "secret-namespace").map((v) => v.message)[0]).toBe(
      'name "tenancy/prod/global/cells/use1-01/database" is outside the platform namespace "shop/prod/global/" of a secret tagged tenant=shared',
    );
  });

  it("refuses resources of another stack", async () => {
    await expect(analyzeResources(toResources(S), D.name)).rejects.toThrow(
      `analyzeResources: resource ${toResources(S)[0]!.urn} is not in stack "dedicated-acme-prod"`,
    );
  });
});
