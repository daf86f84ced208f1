import { describe, expect, it } from "vitest";
import { add, dedicatedStack, find, sharedStack, urn, urnOf, violation, violationsAfter, violationsOf } from "../fixtures.ts";

const P = "secret-namespace";
const D = dedicatedStack();
const S = sharedStack();
const GLOBEX_DB_ARN = find(S, "globex-database-secret").computed.arn as string;
const INITECH_DB_ARN = find(S, "initech-database-secret").computed.arn as string;
const INITECH_ROLE = "arn:aws:iam::111111111111:role/tenancy-prod-t-initech";
const GLOBEX_ROLE = "arn:aws:iam::111111111111:role/tenancy-prod-t-globex";
const SECRET_POLICY = "aws:secretsmanager/secretPolicy:SecretPolicy";

function secretPolicy(principal: unknown, resource: string): Record<string, unknown> {
  return {
    secretArn: GLOBEX_DB_ARN,
    policy: JSON.stringify({ Version: "2012-10-17", Statement: [{ Effect: "Allow", Principal: principal, Action: "secretsmanager:GetSecretValue", Resource: resource }] }),
  };
}

describe(P, () => {
  it("passes tenant, team and platform secrets in their namespaces", async () => {
    expect(await violationsOf(S)).toEqual([]);
    expect(await violationsOf(D)).toEqual([]);
  });

  it("reports a tenant secret in another tenant's namespace", async () => {
    expect(await violationsAfter(S, (s) => (find(s, "globex-database-secret").inputs.name = "tenancy/prod/tenants/initech/database"))).toEqual([
      violation(P, urn(S, "globex-database-secret"), 'name "tenancy/prod/tenants/initech/database" is outside the namespace "tenancy/prod/tenants/globex/" of its tenant tag "globex"'),
      // The name is initech's own connection document's: secret-names-unique reports the second one.
      violation("secret-names-unique", urn(S, "initech-database-secret"), `secret name "tenancy/prod/tenants/initech/database" is also the name of ${urn(S, "globex-database-secret")}; Secrets Manager names are unique per account and region`),
    ]);
  });

  it("reports a tenant secret in another env's namespace or in the global one", async () => {
    expect(await violationsAfter(S, (s) => (find(s, "globex-database-secret").inputs.name = "tenancy/staging/tenants/globex/database"))).toEqual([
      violation(P, urn(S, "globex-database-secret"), 'name "tenancy/staging/tenants/globex/database" is outside the namespace "tenancy/prod/tenants/globex/" of its tenant tag "globex"'),
    ]);
    expect(await violationsAfter(S, (s) => (find(s, "globex-database-secret").inputs.name = "tenancy/prod/global/globex-db"))).toEqual([
      violation(P, urn(S, "globex-database-secret"), 'name "tenancy/prod/global/globex-db" is outside the namespace "tenancy/prod/tenants/globex/" of its tenant tag "globex"'),
    ]);
  });

  it("reports a shared secret outside the global namespace", async () => {
    expect(await violationsAfter(S, (s) => (find(s, "cell-database-secret").inputs.name = "tenancy/prod/tenants/globex/cell-db"))).toEqual([
      violation(P, urn(S, "cell-database-secret"), 'name "tenancy/prod/tenants/globex/cell-db" is outside the platform namespace "tenancy/prod/global/" of a secret tagged tenant=shared'),
    ]);
  });

  it("reports a team secret not of the form teams/<team>/<name>", async () => {
    expect(await violationsAfter(S, (s) => (find(s, "globex-team-data-warehouse").inputs.name = "tenancy/prod/tenants/globex/teams/warehouse"))).toEqual([
      violation(P, urn(S, "globex-team-data-warehouse"), 'name "tenancy/prod/tenants/globex/teams/warehouse" is under teams/ but not of the form teams/<team>/<name>'),
    ]);
  });

  it("reports an empty name below the namespace, and a secret without a name", async () => {
    expect(await violationsAfter(S, (s) => (find(s, "globex-database-secret").inputs.name = "tenancy/prod/tenants/globex/"))).toEqual([
      violation(P, urn(S, "globex-database-secret"), 'name "tenancy/prod/tenants/globex/" has an empty or malformed name below the namespace (lower-case words separated by /)'),
    ]);
    expect(await violationsAfter(S, (s) => delete find(s, "globex-database-secret").inputs.name)).toEqual([
      violation(P, urn(S, "globex-database-secret"), 'has no name; a secret\'s name lies under "tenancy/prod/tenants/<tenant>/" or "tenancy/prod/global/"'),
    ]);
  });

  it("accepts a namePrefix inside the namespace and reports one outside it", async () => {
    const prefix = (p: string) => (s: typeof S) => {
      const r = find(s, "globex-team-data-warehouse");
      delete r.inputs.name;
      r.inputs.namePrefix = p;
    };
    expect(await violationsAfter(S, prefix("tenancy/prod/tenants/globex/tmp-"))).toEqual([]);
    expect(await violationsAfter(S, prefix("tenancy/prod/tenants/"))).toEqual([
      violation(P, urn(S, "globex-team-data-warehouse"), 'name "tenancy/prod/tenants/" is outside the namespace "tenancy/prod/tenants/globex/" of its tenant tag "globex"'),
    ]);
  });

  it("reports a secret version writing one tenant's credentials into another tenant's secret", async () => {
    expect(await violationsAfter(S, (s) => (find(s, "globex-database-secret-version").inputs.secretId = INITECH_DB_ARN))).toEqual([
      violation(P, urn(S, "globex-database-secret-version"), 'secretString carries the database identity "tenant_globex" but writes secret "tenancy/prod/tenants/initech/database" of tenant "initech"'),
    ]);
  });

  it("reports a secret version whose secret is not in the stack", async () => {
    const other = "arn:aws:secretsmanager:us-east-1:111111111111:secret:tenancy/prod/tenants/hooli/database-Qq11Ww";
    expect(await violationsAfter(S, (s) => (find(s, "globex-database-secret-version").inputs.secretId = other))).toEqual([
      violation(P, urn(S, "globex-database-secret-version"), `secretId "${other}" is not a secret of this stack, so its namespace cannot be checked`),
    ]);
  });

  it("passes a secret policy for the secret's own tenant role", async () => {
    expect(await violationsAfter(S, (s) => add(s, SECRET_POLICY, "globex-db-policy", secretPolicy({ AWS: GLOBEX_ROLE }, "*")))).toEqual([]);
  });

  it("reports a secret policy that lets another tenant's role read the secret", async () => {
    expect(await violationsAfter(S, (s) => add(s, SECRET_POLICY, "globex-db-policy", secretPolicy({ AWS: INITECH_ROLE }, "*")))).toEqual([
      violation(P, urnOf(S.name, SECRET_POLICY, "globex-db-policy"), 'policy statement 0 allows the role of tenant "initech" on secret "tenancy/prod/tenants/globex/database" of tenant "globex"'),
    ]);
  });

  it("reports a secret policy open to any principal", async () => {
    expect(await violationsAfter(S, (s) => add(s, SECRET_POLICY, "globex-db-policy", secretPolicy("*", "*")))).toEqual([
      violation(P, urnOf(S.name, SECRET_POLICY, "globex-db-policy"), 'policy statement 0 allows any principal ("*") on secret "tenancy/prod/tenants/globex/database"'),
    ]);
  });

  it("reports a secret policy naming another secret", async () => {
    expect(await violationsAfter(S, (s) => add(s, SECRET_POLICY, "globex-db-policy", secretPolicy({ AWS: GLOBEX_ROLE }, INITECH_DB_ARN)))).toEqual([
      violation(P, urnOf(S.name, SECRET_POLICY, "globex-db-policy"), `policy statement 0 names resource "${INITECH_DB_ARN}", not the secret it is attached to`),
    ]);
  });

  it("reports an RDS-managed master password, whose secret RDS names outside the namespaces", async () => {
    expect(await violationsAfter(S, (s) => (find(s, "cell-db").inputs.manageMasterUserPassword = true))).toEqual([
      violation(
        P,
        urn(S, "cell-db"),
        'manageMasterUserPassword is true: RDS keeps the master password in a secret it names (rds!...), outside the "tenancy/<env>/" namespaces; generate the password and store it in the namespaced secret',
      ),
    ]);
  });
});
