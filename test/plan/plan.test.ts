import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { main } from "../../cli/main.ts";
import { bufferIo } from "../../cli/io.ts";
import { planStacks } from "../../plan/planStacks.ts";
import { requireFleet, tenantsOfStack } from "../../infra/model/fleet.ts";
import { SECRET_SIG, SECRET_SIG_KEY, isSecretValue, type PlanDocument } from "../../plan/types.ts";

const root = resolve(import.meta.dirname, "../..");
const fleet = requireFleet({ projectDir: root });
const tmp = mkdtempSync(join(tmpdir(), "plan-test-"));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));
let doc: PlanDocument;

async function run(...argv: string[]) {
  const io = bufferIo();
  const code = await main([...argv, "--project", root], io);
  return { code, out: io.stdout.join("\n"), err: io.stderr.join("\n") };
}

beforeAll(async () => {
  const r = await run("plan", "--all", "--json", join(tmp, "plan.json"));
  expect(r.err).not.toMatch(/plan failed/);
  expect(r.code).toBe(0);
  doc = JSON.parse(readFileSync(join(tmp, "plan.json"), "utf8")) as PlanDocument;
}, 180_000);

describe("tenantctl plan --all", () => {
  it("plans every example stack, clean, in the JSON contract of plan/types.ts", () => {
    expect(doc.stacks.map((s) => s.name)).toEqual([...fleet.stacks.keys()]);
    for (const s of doc.stacks) {
      expect(Object.keys(s).sort()).toEqual(["kind", "name", "outputs", "resources", "tenants", "violations"]);
      expect(s.kind).toBe(s.name.startsWith("shared-") ? "shared" : s.name.startsWith("platform-") ? "platform" : "dedicated");
      expect(s.tenants).toEqual(tenantsOfStack(fleet, s.name).map((t) => t.id));
      expect(s.violations).toEqual([]);
      expect(new Set(s.resources.map((r) => r.urn)).size).toBe(s.resources.length);
      for (const r of s.resources) {
        expect(r.urn.startsWith(`urn:pulumi:${s.name}::saas-tenancy::`)).toBe(true);
        expect(typeof r.type).toBe("string");
        expect(typeof r.parent).toBe("string");
        expect(typeof r.inputs).toBe("object");
      }
    }
  });

  it("keeps passwords as secrets in the JSON", () => {
    const roles = doc.stacks.flatMap((s) => s.resources.filter((r) => r.type === "postgresql:index/role:Role"));
    expect(roles.length).toBeGreaterThanOrEqual(9);
    for (const r of roles) expect(isSecretValue(r.inputs.password)).toBe(true);
  });

  it("prints the summary table with one row per stack", async () => {
    const r = await run("plan", "--stack", "shared-prod-use1-01", "--stack", "dedicated-acme-prod", "--parallel", "1");
    expect(r.code).toBe(0);
    const lines = r.out.split("\n");
    expect(lines[0]).toMatch(/^STACK\s+KIND\s+TENANTS\s+RESOURCES\s+MANDATORY\s+ADVISORY$/);
    expect(lines.slice(1).map((l) => l.split(/\s+/).slice(0, 3))).toEqual([
      ["shared-prod-use1-01", "shared", "2"],
      ["dedicated-acme-prod", "dedicated", "1"],
    ]);
  });

  it("renders the same document in worker processes as in-process", async () => {
    const names = ["shared-prod-euw1-01", "dedicated-megacorp-staging"];
    const inProcess = await planStacks(fleet, names, { parallel: 1 });
    const workers = await planStacks(fleet, names, { parallel: 2 });
    expect(workers).toEqual(inProcess);
  }, 120_000);

  it("refuses a missing selection and an unknown stack with exit 2", async () => {
    expect((await run("plan")).code).toBe(2);
    const unknown = await run("plan", "--stack", "shared-prod-zz9-99");
    expect(unknown.code).toBe(2);
    expect(unknown.err).toMatch(/unknown stack shared-prod-zz9-99/);
  });
});

describe("tenantctl policy check", () => {
  it("passes the clean plan JSON", async () => {
    const r = await run("policy", "check", join(tmp, "plan.json"));
    expect(r.code).toBe(0);
  });

  it("fails a plan with a public database, naming policy, level and resource", async () => {
    const bad = structuredClone(doc);
    const db = bad.stacks.find((s) => s.name === "shared-prod-use1-01")!.resources.find((x) => x.type === "aws:rds/instance:Instance")!;
    db.inputs.publiclyAccessible = true;
    db.outputs!.publiclyAccessible = true;
    writeFileSync(join(tmp, "bad.json"), JSON.stringify(bad));
    const r = await run("policy", "check", join(tmp, "bad.json"));
    expect(r.code).toBe(1);
    const violations = r.out.split("\n").filter((l) => l.startsWith("mandatory "));
    expect(violations).toHaveLength(1);
    expect(violations[0]).toContain(`mandatory rds-hardening ${db.urn}: `);
  });

  it("reads a `pulumi stack export` with encrypted secrets: clean passes, a public database fails", async () => {
    const stack = doc.stacks.find((s) => s.name === "dedicated-acme-prod")!;
    const encrypt = (v: unknown): unknown =>
      isSecretValue(v) ? { [SECRET_SIG_KEY]: SECRET_SIG, ciphertext: "AAABAJ0c2VjcmV0" }
      : Array.isArray(v) ? v.map(encrypt)
      : v && typeof v === "object" ? Object.fromEntries(Object.entries(v).map(([k, x]) => [k, encrypt(x)]))
      : v;
    const exportOf = (publiclyAccessible: boolean) => ({
      version: 3,
      deployment: {
        manifest: { time: "2026-11-22T00:00:00Z", magic: "", version: "v3.248.0" },
        resources: stack.resources.map((r) => {
          const fix = (p: Record<string, unknown>) => (r.type === "aws:rds/instance:Instance" ? { ...p, publiclyAccessible } : p);
          return {
            urn: r.urn, custom: r.custom, type: r.type, ...(r.parent ? { parent: r.parent } : {}), protect: r.options.protect,
            inputs: encrypt(fix(r.inputs)), outputs: encrypt(fix(r.outputs ?? {})),
          };
        }),
      },
    });
    writeFileSync(join(tmp, "export-clean.json"), JSON.stringify(exportOf(false)));
    const clean = await run("policy", "check", join(tmp, "export-clean.json"));
    expect(clean.code).toBe(0);
    expect(clean.out).toMatch(/^dedicated-acme-prod\s+dedicated\s+1\s+\d+\s+0\s+0$/m);
    writeFileSync(join(tmp, "export-public.json"), JSON.stringify(exportOf(true)));
    const bad = await run("policy", "check", join(tmp, "export-public.json"));
    expect(bad.code).toBe(1);
    const db = stack.resources.find((r) => r.type === "aws:rds/instance:Instance")!;
    expect(bad.out.split("\n").filter((l) => l.startsWith("mandatory "))).toEqual([
      expect.stringContaining(`mandatory rds-hardening ${db.urn}: `),
    ]);
  });

  it("rejects a file of neither format with exit 2", async () => {
    writeFileSync(join(tmp, "other.json"), JSON.stringify({ hello: "world" }));
    const r = await run("policy", "check", join(tmp, "other.json"));
    expect(r.code).toBe(2);
    expect(r.err).toMatch(/expected a plan JSON/);
  });
});
