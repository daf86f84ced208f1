/**
 * /api/tenants: create (POST; opening a cell first when the reserve asks for one, docs/cells.md),
 * show (GET /:id) and offboard (DELETE /:id) a tenant through the git writer.
 */
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import type { FastifyInstance } from "fastify";
import { stacksOfTenant } from "../../../infra/model/fleet.ts";
import { routeOf } from "../../../infra/model/routes.ts";
import { runtimeConfigParameter } from "../../../infra/model/runtimeConfig.ts";
import { parseTenantFile } from "../../../infra/model/tenantFile.ts";
import type { Platform } from "../../../infra/model/platform.ts";
import type { Tenant } from "../../../infra/model/schema.ts";
import { DocumentError, editTenantText, offboardEdits, planNewTenant, tenantPath } from "../../../infra/model/fleetFiles/index.ts";
import { CellNotReadyError, CellOpener } from "../../cells/opener.ts";
import { branchOf } from "../../git/writer.ts";
import { withLogContext } from "../../log.ts";
import { keyOf } from "../auth.ts";
import { HttpError } from "../errors.ts";
import { holdsScope, IMMEDIATE_OFFBOARD_SCOPE } from "../scopes.ts";
import { changeReply, tenantIdParam, type RouteContext } from "./context.ts";

export function tenantRoutes(ctx: RouteContext) {
  const opener = new CellOpener({ runs: ctx.runs, log: ctx.log });
  return async (api: FastifyInstance) => {
    api.post("/api/tenants", async (request, reply) => {
      const body = request.body;
      if (!body || typeof body !== "object" || Array.isArray(body)) {
        throw new HttpError(400, "send the tenant as a JSON object with the fields of a tenant file (id, displayName, tier, region, environments, ...)");
      }
      const doc = body as Record<string, unknown>;
      if (typeof doc.id !== "string") throw new HttpError(400, "id: is required (the tenant id, a DNS label)");
      const id = tenantIdParam(doc.id);
      return withLogContext({ tenantId: id, eventId: request.id }, async () => {
        const cause = { source: "api" as const, ids: [String(request.id)], actor: `api key ${request.apiKeyName}`, apiKey: keyOf(request).name };
        // A creation may first open a cell and wait for its first run (docs/cells.md): at most twice
        // (the cell opened for this need, or one opened meanwhile by another creation).
        for (let round = 0; ; round++) {
          const { value, results } = await ctx.writer.change(async (draft) => {
            if (draft.tenant(id) || draft.read(tenantPath(id)) !== undefined) {
              throw new HttpError(409, `tenant ${id} already exists; change it with a pull request, or DELETE it first`);
            }
            if ((await draft.pending(id)) !== undefined) {
              throw new HttpError(409, `tenant ${id} is already proposed on branch ${branchOf(id)}; merge or close that pull request first`);
            }
            const cells = await opener.prepare(draft, doc, id, cause);
            let planned;
            try {
              planned = planNewTenant(draft.fleet, doc);
            } catch (err) {
              if (err instanceof DocumentError && err.waitingFor.length > 0) return { kind: "waiting" as const, cells, stacks: err.waitingFor, message: err.message };
              if (err instanceof DocumentError) throw new HttpError(422, `${tenantPath(id)}: ${err.path}: ${err.message}`, { problems: [`${tenantPath(id)}: ${err.path}: ${err.message}`] });
              throw err;
            }
            return draft.stage({
              tenantId: id,
              summary: `create ${id} (${String(doc.tier)}, ${planned.where}) via the API`,
              files: planned.files,
              cause,
            });
          });
          const refused = results.filter((r) => r.state === "rejected" && r.summary.startsWith("open cell "));
          if (value.kind === "waiting") {
            if (refused.length > 0) {
              const problems = refused.flatMap((r) => (r.state === "rejected" ? r.problems : []));
              throw new HttpError(422, `a new cell is needed for ${id} but cannot be opened; nothing was committed for the tenant: ${problems.join("; ")}`, { problems });
            }
            const stack = value.stacks[0]!;
            if (round >= 2) throw new HttpError(503, `tenant ${id} not created: ${value.message}`, { waitingFor: value.stacks });
            request.log.info({ cell: stack }, `no open cell has room for ${id}: waiting for the first run of ${stack}`);
            try {
              await opener.waitForFirstUp(stack, `first up of cell ${stack} (opened for tenant ${id})`);
            } catch (err) {
              if (err instanceof CellNotReadyError) {
                throw new HttpError(503, `tenant ${id} not created; nothing of it was written: ${err.message}`, { cell: err.cellStack, run: err.run?.id ?? null });
              }
              throw err;
            }
            continue;
          }
          if (value.kind === "unchanged") throw new HttpError(409, `tenant ${id} already exists`);
          const result = value.kind === "rejected" ? value.result : results.find((r) => r.changeId === value.changeId)!;
          return changeReply(reply, result);
        }
      });
    });

    api.delete<{ Params: { id: string }; Querystring: { graceDays?: string } }>("/api/tenants/:id", async (request, reply) => {
      const id = tenantIdParam(request.params.id);
      const grace = request.query.graceDays;
      if (grace !== undefined && !/^\d{1,4}$/.test(grace)) throw new HttpError(400, `graceDays must be a whole number of days, got "${grace}"`);
      const min = ctx.http.minOffboardGraceDays;
      if (grace !== undefined && Number(grace) < min && !holdsScope(keyOf(request).scopes, IMMEDIATE_OFFBOARD_SCOPE)) {
        throw new HttpError(
          403,
          `graceDays=${grace} is below the minimum of ${min} days (TENANCY_API_MIN_GRACE_DAYS): a shorter grace period needs a key with scope ${IMMEDIATE_OFFBOARD_SCOPE}; ` +
            `ask again with graceDays of ${min} or more, or leave it out`,
          { missingScope: IMMEDIATE_OFFBOARD_SCOPE },
        );
      }
      return withLogContext({ tenantId: id, eventId: request.id }, async () => {
        const { value, results } = await ctx.writer.change((draft) => {
          const t = draft.tenant(id)?.tenant;
          const text = draft.read(tenantPath(id));
          if (!t || text === undefined) throw new HttpError(404, `no tenant ${id} on ${ctx.writer.branch}`);
          if (t.lifecycle === "offboarding") return { kind: "already" as const, requestedAt: t.offboarding?.requestedAt };
          const requestedAt = new Date().toISOString();
          const staged = draft.stage({
            tenantId: id,
            summary: `offboard ${id} via the API`,
            files: { [tenantPath(id)]: editTenantText(text, offboardEdits(requestedAt, grace ? Number(grace) : undefined)) },
            cause: { source: "api", ids: [String(request.id)], actor: `api key ${request.apiKeyName}`, apiKey: keyOf(request).name },
          });
          return { kind: "staged" as const, staged };
        });
        if (value.kind === "already") return reply.status(200).send({ message: `tenant ${id} is already offboarding (requested ${value.requestedAt})` });
        const s = value.staged;
        if (s.kind === "unchanged") return reply.status(200).send({ message: `tenant ${id} unchanged` });
        const result = s.kind === "rejected" ? s.result : results.find((r) => r.changeId === s.changeId)!;
        if (result.state === "committed") return reply.status(202).send({ change: result });
        return changeReply(reply, result);
      });
    });

    api.get<{ Params: { id: string } }>("/api/tenants/:id", async (request, reply) => {
      const id = tenantIdParam(request.params.id);
      return withLogContext({ tenantId: id }, async () => {
        const path = tenantPath(id);
        const abs = join(ctx.repoDir, path);
        const changes = await ctx.pool.query(
          `SELECT id, summary, source, cause_ids AS "causeIds", route, state, stacks, commit_sha AS commit, branch, pull_request AS "pullRequest",
                  pushed, note, problems, created_at AS "createdAt" FROM changes WHERE tenant_id = $1 ORDER BY created_at DESC LIMIT 20`,
          [id],
        );
        if (!existsSync(abs)) {
          const branch = await ctx.writer.repo.resolve(`refs/heads/${branchOf(id)}`);
          throw new HttpError(404, `no tenant ${id} on ${ctx.writer.branch}${branch ? `; a change is pending on branch ${branchOf(id)}` : ""}`, { changes: changes.rows });
        }
        const p = ctx.platform();
        const loaded = parseTenantFile(path, readFileSync(abs, "utf8"), { regions: p.regions, environments: p.environments }, id);
        if (Array.isArray(loaded)) throw new HttpError(500, `${path} on ${ctx.writer.branch} does not validate; fix it: ${loaded.map((x) => x.message).join("; ")}`);
        const t = loaded.tenant;
        const stacks = stacksOfTenant(t);
        const runs = await ctx.runs.list({ stacks, limit: 20 });
        const sub = await ctx.pool.query<Record<string, unknown>>(
          `SELECT id, status, price_id AS "priceId", deleted_at AS "deletedAt", delinquent_since AS "delinquentSince", last_event_id AS "lastEventId"
           FROM subscriptions WHERE tenant_id = $1 OR id = $2`,
          [id, t.billing?.subscriptionId ?? ""],
        );
        // The file as committed on the branch, with the commit that last changed it (the console shows both).
        const [commit = "", subject = "", at = ""] = (await ctx.writer.repo.out(["log", "-1", "--format=%H%x1f%s%x1f%cI", ctx.writer.branch, "--", path])).trim().split("\x1f");
        const committedText = commit ? await ctx.writer.repo.show(commit, path) : undefined;
        return reply.send({
          tenant: t,
          file: { path, branch: ctx.writer.branch, commit: commit || null, subject: subject || null, committedAt: at || null, text: committedText ?? null },
          lifecycle: t.lifecycle,
          routes: Object.keys(t.environments).map((env) => routeOf({ platform: p }, t, env)),
          // Each env's runtime config document as its stack publishes it (infra/model/runtimeConfig.ts, docs/runtime-config.md).
          runtimeConfig: Object.keys(t.environments).map((env) => runtimeConfigOrProblem(p, t, env)),
          stacks,
          runs,
          changes: changes.rows,
          subscription: sub.rows[0] ?? null,
          // Newest first; each is GET /api/workflows/:id (absent when the lifecycle worker is off).
          ...(ctx.workflows ? { workflows: (await ctx.workflows.list(id)).reverse().slice(0, 20) } : {}),
          // Every backup its lifecycle workflows recorded (schema dumps, RDS snapshots, object copies), newest first.
          ...(ctx.workflows ? { backups: (await ctx.workflows.backups({ tenantId: id })).reverse() } : {}),
        });
      });
    });
  };
}

/**
 * A tenant env's runtime config parameter for GET /api/tenants/:id: its SSM name and the value the
 * stack publishes (JSON text), or why the program would refuse to publish it (over the size of a
 * Standard parameter): shown as such rather than failing the whole tenant answer.
 */
function runtimeConfigOrProblem(platform: Platform, t: Tenant, env: string): { env: string; parameter: string; value: string } | { env: string; error: string } {
  try {
    const { name, value } = runtimeConfigParameter(platform, t, env);
    return { env, parameter: name, value };
  } catch (e) {
    return { env, error: e instanceof Error ? e.message : String(e) };
  }
}
