import { describe, expect, it } from "vitest";
import { add, dedicatedStack, find, sharedStack, urn, urnOf, violation, violationsAfter, violationsOf } from "../fixtures.ts";

const P = "postgres-tenant-grants";
const D = dedicatedStack();
const S = sharedStack();
const GRANT = "postgresql:index/grant:Grant";
const DEFAULTS = "postgresql:index/defaultPrivileges:DefaultPrivileges";
const role = (s: typeof S) => find(s, "globex-pg-role").inputs;
const ROLE = urn(S, "globex-pg-role");
const ATTRS = "; no tenant role is superuser, createdb, createrole, bypassrls or replication";

describe(P, () => {
  it("passes tenant roles on their own schema and revokes from PUBLIC (a Grant with no privileges)", async () => {
    expect(await violationsOf(S)).toEqual([]);
    expect(await violationsOf(D)).toEqual([]);
  });

  it.each([
    ["superuser", "SUPERUSER"],
    ["createDatabase", "CREATEDB"],
    ["createRole", "CREATEROLE"],
    ["bypassRowLevelSecurity", "BYPASSRLS"],
    ["replication", "REPLICATION"],
  ])("reports a tenant role with %s", async (input, attribute) => {
    expect(await violationsAfter(S, (s) => (role(s)[input] = true))).toEqual([
      violation(P, ROLE, `tenant role "tenant_globex" has ${attribute} (${input}: true)${ATTRS}`),
    ]);
  });

  it("reports a search_path that is not pinned to the tenant's schema", async () => {
    expect(await violationsAfter(S, (s) => delete role(s).searchPaths)).toEqual([
      violation(P, ROLE, 'tenant role "tenant_globex" has search_path []; pin it to ["tenant_globex"]'),
    ]);
    expect(await violationsAfter(S, (s) => (role(s).searchPaths = ["tenant_globex", "public"]))).toEqual([
      violation(P, ROLE, 'tenant role "tenant_globex" has search_path ["tenant_globex","public"]; pin it to ["tenant_globex"]'),
    ]);
  });

  it("reports membership in another tenant's role or a powerful role", async () => {
    expect(await violationsAfter(S, (s) => (role(s).roles = ["tenant_initech", "rds_superuser"]))).toEqual([
      violation(P, ROLE, 'tenant role "tenant_globex" is a member of role "tenant_initech"'),
      violation(P, ROLE, 'tenant role "tenant_globex" is a member of role "rds_superuser"'),
    ]);
  });

  it("reports a schema owned by another tenant's role", async () => {
    expect(await violationsAfter(S, (s) => (find(s, "initech-pg-schema").inputs.owner = "tenant_globex"))).toEqual([
      violation(P, urn(S, "initech-pg-schema"), 'schema "tenant_initech" is owned by tenant role "tenant_globex", which may own only schema "tenant_globex"'),
    ]);
  });

  it("reports schema policies for PUBLIC or another tenant", async () => {
    const policies = [
      { role: "public", usage: true },
      { role: "tenant_initech", usage: true, create: true },
      { role: "tenant_globex", usage: true, create: true },
    ];
    expect(await violationsAfter(S, (s) => (find(s, "globex-pg-schema").inputs.policies = policies))).toEqual([
      violation(P, urn(S, "globex-pg-schema"), 'schema "tenant_globex" grants USAGE to PUBLIC'),
      violation(P, urn(S, "globex-pg-schema"), 'schema "tenant_globex" grants USAGE, CREATE to tenant role "tenant_initech", which may use only schema "tenant_initech"'),
    ]);
  });

  it("reports a grant to PUBLIC", async () => {
    expect(await violationsAfter(S, (s) => (find(s, "cell-revoke-public-connect").inputs.privileges = ["CONNECT"]))).toEqual([
      violation(P, urn(S, "cell-revoke-public-connect"), 'grants CONNECT on database "cell" to PUBLIC'),
    ]);
  });

  it("reports a grant on another tenant's schema, or on public", async () => {
    expect(await violationsAfter(S, (s) => (find(s, "globex-pg-tables").inputs.schema = "tenant_initech"))).toEqual([
      violation(P, urn(S, "globex-pg-tables"), 'grants SELECT, INSERT, UPDATE, DELETE on table in schema "tenant_initech" to tenant role "tenant_globex", which may touch only schema "tenant_globex"'),
    ]);
    const onPublic = { database: "cell", role: "tenant_globex", schema: "public", objectType: "schema", privileges: ["CREATE"] };
    expect(await violationsAfter(S, (s) => add(s, GRANT, "globex-public", onPublic))).toEqual([
      violation(P, urnOf(S.name, GRANT, "globex-public"), 'grants CREATE on schema in schema "public" to tenant role "tenant_globex", which may touch only schema "tenant_globex"'),
    ]);
  });

  it("reports database privileges beyond CONNECT and TEMPORARY", async () => {
    expect(await violationsAfter(S, (s) => (find(s, "globex-pg-connect").inputs.privileges = ["CONNECT", "CREATE"]))).toEqual([
      violation(P, urn(S, "globex-pg-connect"), 'grants CREATE on database "cell" to tenant role "tenant_globex"; a tenant role gets only CONNECT (and TEMPORARY) on a database'),
    ]);
  });

  it("reports default privileges on another schema, every schema, or for PUBLIC", async () => {
    const dp = (over: Record<string, unknown>) => ({ database: "app", role: "tenant_acme", owner: "tenant_acme", schema: "tenant_acme", objectType: "table", privileges: ["SELECT"], ...over });
    const at = urnOf(D.name, DEFAULTS, "dp");
    expect(await violationsAfter(D, (s) => add(s, DEFAULTS, "dp", dp({ schema: "" })))).toEqual([
      violation(P, at, 'default privileges grant SELECT on new tables in every schema to tenant role "tenant_acme", which may touch only schema "tenant_acme"'),
    ]);
    expect(await violationsAfter(D, (s) => add(s, DEFAULTS, "dp", dp({ role: "public" })))).toEqual([
      violation(P, at, 'default privileges grant SELECT on new tables in schema "tenant_acme" to PUBLIC'),
    ]);
    expect(await violationsAfter(S, (s) => add(s, DEFAULTS, "dp", { ...dp({}), database: "cell", role: "tenant_globex", schema: "tenant_initech", owner: "tenant_initech" }))).toEqual([
      violation(P, urnOf(S.name, DEFAULTS, "dp"), 'default privileges grant SELECT on new tables in schema "tenant_initech" to tenant role "tenant_globex", which may touch only schema "tenant_globex"'),
    ]);
  });
});
