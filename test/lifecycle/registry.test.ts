/**
 * The workflow kinds are registered beside the workflows (workflows/registry.ts), and the engine
 * knows none by name: the registry's definitions are consistent, the database accepts exactly
 * the registered kinds, and an engine refuses a kind it was not given, naming the ones it runs.
 */
import { readdirSync, readFileSync } from "node:fs";
import { join, resolve } from "node:path";
import type pg from "pg";
import { describe, expect, it } from "vitest";
import { WorkflowEngine } from "../../automation/lifecycle/engine/engine.ts";
import type { LifecyclePorts } from "../../automation/lifecycle/ports.ts";
import { suspendWorkflow } from "../../automation/lifecycle/workflows/suspension.ts";
import { LIFECYCLE_WORKFLOW_KINDS, LIFECYCLE_WORKFLOWS } from "../../automation/lifecycle/workflows/registry.ts";

const MIGRATIONS = resolve(import.meta.dirname, "../../automation/db/migrations");

/** The kinds the last migration that sets lifecycle_workflows' kind CHECK allows. */
function kindsTheDatabaseAllows(): string[] {
  let last: string | undefined;
  for (const file of readdirSync(MIGRATIONS).filter((f) => f.endsWith(".sql")).sort()) {
    const sql = readFileSync(join(MIGRATIONS, file), "utf8");
    const table = /CREATE TABLE lifecycle_workflows \(([\s\S]*?)\n\);/.exec(sql)?.[1];
    const inTable = table ? /\bkind\s+text NOT NULL CHECK \(kind IN \(([^)]*)\)\)/.exec(table)?.[1] : undefined;
    const altered = /ADD CONSTRAINT lifecycle_workflows_kind_check\s+CHECK \(kind IN \(([^)]*)\)\)/.exec(sql)?.[1];
    last = altered ?? inTable ?? last;
  }
  if (!last) throw new Error("no migration sets the kinds of lifecycle_workflows");
  return [...last.matchAll(/'([^']+)'/g)].map((m) => m[1]!);
}

describe("the workflow registry", () => {
  it("registers each kind once, each with distinct step names, and supersede rules that name registered kinds and existing steps", () => {
    expect(LIFECYCLE_WORKFLOW_KINDS).toEqual(["upgrade", "rollback", "suspend", "resume", "offboard", "rotate", "move", "move-rollback"]);
    expect(new Set(LIFECYCLE_WORKFLOW_KINDS).size).toBe(LIFECYCLE_WORKFLOW_KINDS.length);
    const byKind = new Map(LIFECYCLE_WORKFLOWS.map((w) => [w.kind as string, w]));
    for (const w of LIFECYCLE_WORKFLOWS) {
      const names = w.steps.map((s) => s.name);
      expect(new Set(names).size, `${w.kind}: step names`).toBe(names.length);
      expect(names.length, w.kind).toBeGreaterThan(0);
      for (const rule of ("supersedes" in w ? w.supersedes : undefined) ?? []) {
        const other = byKind.get(rule.kind);
        expect(other, `${w.kind} supersedes ${rule.kind}`).toBeDefined();
        expect(other!.steps.map((s) => s.name), `${w.kind} supersedes ${rule.kind} before ${rule.before}`).toContain(rule.before);
      }
    }
  });

  it("the database accepts exactly the registered kinds", () => {
    expect(kindsTheDatabaseAllows().sort()).toEqual([...LIFECYCLE_WORKFLOW_KINDS].sort());
  });

  it("an engine refuses a kind it was not given, before touching the database, naming the kinds it runs", async () => {
    const untouched = new Proxy({}, { get: (_t, prop) => { throw new Error(`the database was used (${String(prop)})`); } }) as pg.Pool;
    const engine = new WorkflowEngine(untouched, {} as LifecyclePorts, [suspendWorkflow]);
    await expect(engine.create("upgrade", "acme", {})).rejects.toThrow('no workflow definition for kind "upgrade"; this engine runs suspend');
  });
});
