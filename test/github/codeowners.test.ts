import { readFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { describe, expect, it } from "vitest";
import { requireFleet } from "../../infra/model/fleet.ts";

const ROOT = resolve(import.meta.dirname, "../..");
const PLATFORM = "@org/platform-team";
const ONBOARDING = "@org/tenant-onboarding";

interface Rule {
  pattern: string;
  owners: string[];
  re: RegExp;
}

/** The gitignore-style subset CODEOWNERS uses here: leading / anchors, trailing / is a directory, * stays in a segment. */
function compile(pattern: string): RegExp {
  let p = pattern;
  const anchored = p.startsWith("/");
  if (anchored) p = p.slice(1);
  const dir = p.endsWith("/");
  if (dir) p = p.slice(0, -1);
  // eslint-disable-next-line no-control-regex -- NUL is a placeholder for "**" that no path contains
  const body = p.replace(/[.+?^${}()|[\]\\]/g, "\\$&").replace(/\*\*/g, "\u0000").replace(/\*/g, "[^/]*").replace(/\u0000/g, ".*");
  const start = anchored || p.includes("/") ? "^" : "^(?:.*/)?";
  return new RegExp(`${start}${body}${dir ? "/.*" : "(?:/.*)?"}$`);
}

const rules: Rule[] = readFileSync(join(ROOT, ".github", "CODEOWNERS"), "utf8")
  .split("\n")
  .map((l) => l.replace(/#.*/, "").trim())
  .filter((l) => l !== "")
  .map((l) => {
    const [pattern, ...owners] = l.split(/\s+/) as [string, ...string[]];
    return { pattern, owners, re: compile(pattern) };
  });

/** GitHub uses the last matching line. */
function ownersOf(path: string): string[] {
  return [...rules].reverse().find((r) => r.re.test(path))?.owners ?? [];
}

const fleet = requireFleet({ projectDir: ROOT });

describe("CODEOWNERS", () => {
  it("gives every path an owner and names only the two teams", () => {
    expect(rules[0]).toMatchObject({ pattern: "*", owners: [PLATFORM] });
    for (const r of rules) for (const o of r.owners) expect([PLATFORM, ONBOARDING]).toContain(o);
    expect(ownersOf("README.md")).toEqual([PLATFORM]);
    expect(ownersOf("infra/components/sharedCell.ts")).toEqual([PLATFORM]);
    expect(ownersOf("policy/policies/tenant-tags.ts")).toEqual([PLATFORM]);
    expect(ownersOf(".github/workflows/tenant-deploy.yml")).toEqual([PLATFORM]);
  });

  it("requires the platform team, and only it, for every dedicated tenant and dedicated stack file", () => {
    const dedicated = [...fleet.tenants.values()].filter((lt) => lt.tenant.deployment === "dedicated");
    expect(dedicated.length).toBeGreaterThan(0);
    for (const lt of dedicated) expect(ownersOf(`tenants/${lt.tenant.id}.yaml`), `${lt.tenant.id} is dedicated: list it in .github/CODEOWNERS`).toEqual([PLATFORM]);
    for (const name of fleet.stacks.keys()) {
      expect(ownersOf(`stacks/Pulumi.${name}.yaml`), name).toEqual([PLATFORM]);
    }
    // A new dedicated stack file (a new dedicated tenant, or a tier change to dedicated) needs it too.
    expect(ownersOf("stacks/Pulumi.dedicated-newco-prod.yaml")).toEqual([PLATFORM]);
  });

  it("lets the onboarding team approve pooled tenants, new ones included", () => {
    const pooled = [...fleet.tenants.values()].filter((lt) => lt.tenant.deployment === "pooled");
    for (const lt of pooled) expect(ownersOf(`tenants/${lt.tenant.id}.yaml`), lt.tenant.id).toEqual([ONBOARDING, PLATFORM]);
    expect(ownersOf("tenants/newco.yaml")).toEqual([ONBOARDING, PLATFORM]);
    expect(ownersOf("tenants/tenant.schema.json")).toEqual([PLATFORM]);
  });

  it("lists no tenant file that is missing or no longer dedicated", () => {
    const listed = rules.map((r) => /^\/tenants\/([a-z0-9-]+)\.yaml$/.exec(r.pattern)?.[1]).filter((id): id is string => id !== undefined);
    expect(listed.length).toBeGreaterThan(0);
    for (const id of listed) expect(fleet.tenants.get(id)?.tenant.deployment, `${id} in CODEOWNERS`).toBe("dedicated");
  });
});
