/**
 * The Draft a GitWriter.change() callback plans against: the valid fleet at the main head plus
 * what was staged so far in the session, so placement and CIDR allocation see earlier changes.
 * Each staged tenant file is validated on its own here; writer.ts validates the whole fleet.
 */
import { randomUUID } from "node:crypto";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { stacksOfTenant, type Fleet } from "../../infra/model/fleet.ts";
import { STACKS_DIR, tenantPath, validateWithChanges } from "../../infra/model/fleetFiles/index.ts";
import { formatProblem } from "../../infra/model/problems.ts";
import { parseTenantFile, type LoadedTenant } from "../../infra/model/tenantFile.ts";
import type { ChangeRequest, ChangeResult, ChangeRoute, Staged, StageOutcome } from "./change.ts";

/** The state a change() callback plans against. */
export class Draft {
  private staged: Staged[] = [];
  private overlay = new Map<string, string | null>();
  private rejected: { req: ChangeRequest; result: ChangeResult & { state: "rejected" } }[] = [];

  constructor(
    private current: Fleet,
    private readonly repoDir: string,
    readonly headCommit: string,
    private readonly branchReader: (tenantId: string) => Promise<string | undefined>,
  ) {}

  /**
   * The tenant file on the tenant's pending branch (`tenancy/<id>`: a proposed dedicated change
   * not merged yet), or undefined. Changes to such a tenant must go to that branch (route "branch").
   */
  pending(tenantId: string): Promise<string | undefined> {
    return this.branchReader(tenantId);
  }

  /** The valid fleet at the main head plus the main-branch changes staged so far. */
  get fleet(): Fleet {
    return this.current;
  }

  tenant(id: string): LoadedTenant | undefined {
    return this.current.tenants.get(id);
  }

  /** A file as the main branch will have it after the staged changes (undefined: absent). */
  read(path: string): string | undefined {
    if (this.overlay.has(path)) return this.overlay.get(path) ?? undefined;
    const abs = join(this.repoDir, path);
    return existsSync(abs) ? readFileSync(abs, "utf8") : undefined;
  }

  /** Checks a change on its own and queues it for this session's commit. */
  stage(req: ChangeRequest): StageOutcome {
    const id = randomUUID();
    const path = tenantPath(req.tenantId);
    const before = this.current.tenants.get(req.tenantId)?.tenant;
    const text = req.files[path];
    let after: LoadedTenant | undefined;
    const ctx = { regions: this.current.platform.regions, environments: this.current.platform.environments };
    if (typeof text === "string") {
      const parsed = parseTenantFile(path, text, ctx, req.tenantId);
      if (Array.isArray(parsed)) {
        const result = { state: "rejected" as const, changeId: id, tenantId: req.tenantId, summary: req.summary, route: "main" as const, stacks: [], problems: parsed.map(formatProblem) };
        this.rejected.push({ req, result });
        return { kind: "rejected", result };
      }
      after = parsed;
    }
    const unchanged = Object.entries(req.files).every(([p, content]) => (this.read(p) ?? null) === content);
    if (unchanged) return { kind: "unchanged" };
    const dedicated = before?.deployment === "dedicated" || after?.tenant.deployment === "dedicated";
    const route: ChangeRoute = req.route === "main" || req.route === "branch" ? req.route : dedicated ? "branch" : "main";
    const stacks = [...new Set([...(before ? stacksOfTenant(before) : []), ...(after ? stacksOfTenant(after.tenant) : []), ...(req.stacks ?? [])])].sort();
    this.staged.push({ id, req, route, stacks });
    if (route === "main") {
      for (const [p, content] of Object.entries(req.files)) this.overlay.set(p, content);
      // A stack file staged (a new cell, a cell opened): later plans of this session see it.
      if (Object.keys(req.files).some((p) => p.startsWith(`${STACKS_DIR}/`))) {
        const withStacks = validateWithChanges({ projectDir: this.repoDir }, [Object.fromEntries(this.overlay)]);
        if (withStacks.fleet) {
          this.current = withStacks.fleet;
          return { kind: "staged", changeId: id, route, stacks, ...(after ? { tenant: after.tenant } : {}) };
        }
      }
      if (text !== undefined) {
        const tenants = new Map(this.current.tenants);
        if (after) tenants.set(req.tenantId, after);
        else tenants.delete(req.tenantId);
        this.current = { ...this.current, tenants };
      }
    }
    return { kind: "staged", changeId: id, route, stacks, ...(after ? { tenant: after.tenant } : {}) };
  }

  /** @internal */
  take(): { staged: Staged[]; rejected: { req: ChangeRequest; result: ChangeResult & { state: "rejected" } }[] } {
    return { staged: this.staged, rejected: this.rejected };
  }
}
