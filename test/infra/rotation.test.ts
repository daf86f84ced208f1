/**
 * How the stacks stay consistent with tenantctl rotate (docs/lifecycle.md, "Credential rotation"),
 * on renders under the mock runtime: the role's password is set at creation only
 * (`ignoreChanges`), and once an environment's credentials were rotated
 * (environments.<env>.credentialsRotatedAt) the connection document and any role created later
 * (a dedicated stack at an upgrade) take the password from the document's AWSCURRENT version,
 * not from the stack's random one. The mock answers that read with mockRotatedPassword.
 */
import { beforeAll, describe, expect, it } from "vitest";
import { documentPassword } from "../../infra/components/tenantDatabaseAccess.ts";
import type { Fleet } from "../../infra/model/fleet.ts";
import { mockRotatedPassword } from "../../plan/render/mockOutputs.ts";
import { isSecretValue, type RenderedStack } from "../../plan/types.ts";
import { diffRenders, editYaml, exampleFleet, json, plain, render, tempFleet, T, byTypeName } from "./support.ts";

const ROTATED_AT = "2026-03-02T09:00:00Z";

function rotatedFleet(): Fleet {
  return tempFleet((dir) => {
    for (const id of ["startup-alpha", "megacorp"]) {
      editYaml(dir, `tenants/${id}.yaml`, (doc) => {
        const envs = doc.environments as Record<string, Record<string, unknown>>;
        envs.prod = { ...(envs.prod ?? {}), credentialsRotatedAt: ROTATED_AT };
      });
    }
  });
}

function role(r: RenderedStack, id: string) {
  return byTypeName(r, T.pgRole, `tenant-${id}-db-access`);
}

function documentOf(r: RenderedStack, id: string): Record<string, unknown> {
  return json(plain(byTypeName(r, T.version, `tenant-${id}-database`)).secretString) as Record<string, unknown>;
}

const stacks = ["shared-prod-use1-01", "shared-staging-use1-01", "dedicated-megacorp-prod", "dedicated-megacorp-staging"] as const;
let base: Record<string, RenderedStack>;
let rotated: Record<string, RenderedStack>;

beforeAll(async () => {
  const [a, b] = [exampleFleet(), rotatedFleet()];
  base = {};
  rotated = {};
  for (const s of stacks) {
    base[s] = await render(a, s);
    rotated[s] = await render(b, s);
  }
}, 120_000);

describe("credential rotation and the stacks", () => {
  it("every tenant role ignores changes to its password (set at creation only); the random password still feeds a new tenant's role and document", () => {
    for (const s of stacks) {
      const roles = base[s]!.resources.filter((x) => x.type === T.pgRole);
      expect(roles.length, s).toBeGreaterThan(0);
      for (const x of roles) expect(x.options.ignoreChanges, x.urn).toEqual(["password"]);
    }
    const r = base["shared-prod-use1-01"]!;
    expect(documentOf(r, "startup-alpha").password).toBe(plain(role(r, "startup-alpha")).password);
    expect(plain(role(r, "startup-alpha")).password).toMatch(/^[0-9a-f]{32}$/);
  });

  it("a rotated environment reads the password from the connection document's AWSCURRENT version: the document keeps it and the role (ignored) would get it", () => {
    for (const [stack, id] of [["shared-prod-use1-01", "startup-alpha"], ["dedicated-megacorp-prod", "megacorp"]] as const) {
      const r = rotated[stack]!;
      const expected = mockRotatedPassword(`tenancy/prod/tenants/${id}/database`);
      expect(isSecretValue(role(r, id).inputs.password), stack).toBe(true);
      expect(plain(role(r, id)).password, stack).toBe(expected);
      expect(documentOf(r, id).password, stack).toBe(expected);
      // The random password stays in the stack (removing it would be a change of its own).
      expect(plain(byTypeName(r, T.password, `tenant-${id}-db-access`)), stack).toEqual({ length: 32, special: false });
    }
  });

  it("the next up after a rotation changes only the rotated tenant's document and (ignored) role password; other envs and tenants are untouched", () => {
    const urnsOf = (stack: string, names: string[]) => names.map((n) => rotated[stack]!.resources.find((x) => x.name === n && ([T.pgRole, T.version] as string[]).includes(x.type))!.urn).sort();
    expect(diffRenders(base["shared-prod-use1-01"]!, rotated["shared-prod-use1-01"]!)).toEqual({
      added: [], removed: [], changed: urnsOf("shared-prod-use1-01", ["tenant-startup-alpha-db-access", "tenant-startup-alpha-database"]),
    });
    expect(diffRenders(base["dedicated-megacorp-prod"]!, rotated["dedicated-megacorp-prod"]!)).toEqual({
      added: [], removed: [], changed: urnsOf("dedicated-megacorp-prod", ["tenant-megacorp-db-access", "tenant-megacorp-database"]),
    });
    // Negative control: staging was not rotated.
    for (const s of ["shared-staging-use1-01", "dedicated-megacorp-staging"]) expect(diffRenders(base[s]!, rotated[s]!), s).toEqual({ added: [], removed: [], changed: [] });
  });

  it("a document without a password stops the program with the secret's name, never its text", () => {
    expect(documentPassword('{"password":"p1"}', "s")).toBe("p1");
    expect(() => documentPassword('{"user":"x"}', "tenancy/prod/tenants/acme/database")).toThrow(
      "secret tenancy/prod/tenants/acme/database has no password field; its tenant's credentials are rotated (credentialsRotatedAt), so the password is read from it",
    );
    expect(() => documentPassword("password=hunter2", "n")).toThrow(/^secret n is not a JSON connection document/);
    expect(() => documentPassword("password=hunter2", "n")).not.toThrow(/hunter2/);
  });
});
