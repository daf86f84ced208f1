import { describe, expect, it } from "vitest";
import { databaseSecretName } from "../../../infra/model/naming.ts";
import { add, dedicatedStack, find, sharedStack, tagsFor, urnOf, violation, violationsAfter, violationsOf } from "../fixtures.ts";

const P = "secret-names-unique";
const D = dedicatedStack();
const S = sharedStack();
const SECRET = "aws:secretsmanager/secret:Secret";

describe(P, () => {
  it("passes the clean stacks (every secret has its own name)", async () => {
    expect((await violationsOf(D)).filter((v) => v.policy === P)).toEqual([]);
    expect((await violationsOf(S)).filter((v) => v.policy === P)).toEqual([]);
  });

  it("reports a declared secret named like the connection document (the tenant secret `database`)", async () => {
    const name = databaseSecretName("tenancy", "prod", "acme");
    const got = await violationsAfter(D, (s) => add(s, SECRET, "acme-secrets/database", { name, kmsKeyId: find(s, "acme-database-secret").inputs.kmsKeyId, tags: tagsFor(s, "acme") }));
    expect(got.filter((v) => v.policy === P)).toEqual([
      violation(P, urnOf(D.name, SECRET, "acme-secrets/database"), `secret name "${name}" is also the name of ${urnOf(D.name, SECRET, "acme-database-secret")}; Secrets Manager names are unique per account and region`),
    ]);
  });

  it("reports each duplicate after the first, in a cell too", async () => {
    const name = databaseSecretName("tenancy", "prod", "globex");
    const got = await violationsAfter(S, (s) => {
      for (const n of ["dup-1", "dup-2"]) add(s, SECRET, n, { name, kmsKeyId: "k", tags: tagsFor(s, "globex") });
    });
    const first = urnOf(S.name, SECRET, "globex-database-secret");
    expect(got.filter((v) => v.policy === P)).toEqual([
      violation(P, urnOf(S.name, SECRET, "dup-1"), `secret name "${name}" is also the name of ${first}; Secrets Manager names are unique per account and region`),
      violation(P, urnOf(S.name, SECRET, "dup-2"), `secret name "${name}" is also the name of ${first}; Secrets Manager names are unique per account and region`),
    ]);
  });

  it("negative control: the same last segment under two tenants is not a duplicate", async () => {
    const got = await violationsAfter(S, (s) => add(s, SECRET, "other", { name: databaseSecretName("tenancy", "prod", "initech") + "-copy", kmsKeyId: "k", tags: tagsFor(s, "initech") }));
    expect(got.filter((v) => v.policy === P)).toEqual([]);
  });
});
