/**
 * /api/db-migrations and /api/db-schemas: fleet migrations of the tenant schemas through the
 * rollout rings, one tenant's rollback, a dry run, progress, resume and abort; and the version of
 * every tenant schema (docs/schema-migrations.md).
 */
import type { FastifyInstance } from "fastify";
import { TENANT_ID_PATTERN } from "../../../infra/model/naming.ts";
import { FleetError } from "../../../infra/model/problems.ts";
import { RingsError } from "../../../infra/model/rings.ts";
import { SchemaMigrationsConfigError } from "../../../infra/model/schemaMigrations.ts";
import { DbMigrationStateError } from "../../schemaMigrations/fleetEngine.ts";
import { MigrationFilesError } from "../../schemaMigrations/files.ts";
import { DbMigrationRequestError, type DbMigrationRequest, type SchemaMigrationService } from "../../schemaMigrations/service.ts";
import { HttpError } from "../errors.ts";
import type { RouteContext } from "./context.ts";

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const BODY = 'body must be { "action"?: "migrate" | "rollback", "to"?: version, "tenant"?: tenant id, "dryRun"?: boolean }';

/** Request problems -> 400/409/422 with the model's own message. */
function translate(err: unknown, branch: string): never {
  if (err instanceof DbMigrationRequestError) throw new HttpError(400, err.message);
  if (err instanceof DbMigrationStateError) throw new HttpError(409, err.message);
  if (err instanceof MigrationFilesError || err instanceof SchemaMigrationsConfigError || err instanceof RingsError || err instanceof FleetError) {
    throw new HttpError(422, `the migrations or the fleet on ${branch} cannot be planned: ${err.message}`);
  }
  throw err;
}

export function dbMigrationRoutes(ctx: RouteContext) {
  return async (api: FastifyInstance) => {
    const service = (): SchemaMigrationService => {
      if (!ctx.schemaMigrations) {
        throw new HttpError(503, "schema migrations are off in this control plane: they need the tenant databases (TENANCY_LIFECYCLE_DATABASES, or TENANCY_LIFECYCLE_AWS on) and the run workers");
      }
      return ctx.schemaMigrations;
    };
    const view = async (id: string) => {
      if (!UUID.test(id)) throw new HttpError(400, `"${id}" is not a schema migration id (a UUID)`);
      const v = await service().view(id);
      if (!v) throw new HttpError(404, `no schema migration ${id}`);
      return v;
    };

    api.post<{ Body: Record<string, unknown> | null }>("/api/db-migrations", async (request, reply) => {
      const svc = service();
      const b = request.body ?? {};
      const unknownKeys = Object.keys(b).filter((k) => !["action", "to", "tenant", "dryRun"].includes(k));
      const action = b.action ?? "migrate";
      if (
        unknownKeys.length > 0 || (action !== "migrate" && action !== "rollback") || (b.to !== undefined && (typeof b.to !== "number" || !Number.isInteger(b.to) || b.to < 0)) ||
        (b.tenant !== undefined && (typeof b.tenant !== "string" || !TENANT_ID_PATTERN.test(b.tenant))) || (b.dryRun !== undefined && typeof b.dryRun !== "boolean")
      ) {
        throw new HttpError(400, `${BODY}${unknownKeys.length ? `; unknown: ${unknownKeys.join(", ")}` : ""}`);
      }
      const req: DbMigrationRequest = {
        action,
        ...(b.to !== undefined ? { to: b.to } : {}),
        ...(b.tenant !== undefined ? { tenant: b.tenant } : {}),
        requestedBy: `api key ${request.apiKeyName}`,
      };
      try {
        if (b.dryRun === true) return reply.send({ dryRun: await svc.dryRun(req) });
        const m = await svc.start(req);
        request.log.info({ migrationId: m.id, by: request.apiKeyName, action: m.action, to: m.targetVersion }, "schema migration started");
        return reply.status(201).send(await svc.view(m.id));
      } catch (err) {
        return translate(err, ctx.writer.branch);
      }
    });

    api.get("/api/db-migrations", async (_request, reply) => reply.send({ migrations: await service().engine.list() }));

    api.get<{ Params: { id: string } }>("/api/db-migrations/:id", async (request, reply) => reply.send(await view(request.params.id)));

    for (const action of ["resume", "abort"] as const) {
      api.post<{ Params: { id: string } }>(`/api/db-migrations/:id/${action}`, async (request, reply) => {
        await view(request.params.id);
        try {
          await service().engine[action](request.params.id);
        } catch (err) {
          return translate(err, ctx.writer.branch);
        }
        request.log.warn({ migrationId: request.params.id, by: request.apiKeyName }, `schema migration ${action} requested`);
        return reply.send(await view(request.params.id));
      });
    }

    // A wave's schemas back to the versions they had before it: a rollback migration of its own (201 with its view).
    api.post<{ Params: { id: string }; Body: { wave?: unknown } | undefined }>("/api/db-migrations/:id/rollback-wave", async (request, reply) => {
      await view(request.params.id);
      const b = request.body ?? {};
      if (Object.keys(b).some((k) => k !== "wave") || (b.wave !== undefined && (typeof b.wave !== "number" || !Number.isInteger(b.wave) || b.wave < 0))) {
        throw new HttpError(400, 'body must be { "wave"?: wave index (0 is the first) }');
      }
      let started;
      try {
        started = await service().engine.rollbackWave(request.params.id, b.wave, request.apiKeyName);
      } catch (err) {
        return translate(err, ctx.writer.branch);
      }
      request.log.warn({ migrationId: request.params.id, rollbackId: started.id, by: request.apiKeyName }, "schema migration wave rollback started");
      return reply.code(201).send(await view(started.id));
    });

    api.get<{ Querystring: { tenant?: string } }>("/api/db-schemas", async (request, reply) => {
      const tenant = request.query.tenant;
      if (tenant !== undefined && !TENANT_ID_PATTERN.test(tenant)) throw new HttpError(400, `"${tenant}" is not a tenant id`);
      try {
        return reply.send(await service().status(tenant));
      } catch (err) {
        return translate(err, ctx.writer.branch);
      }
    });
  };
}
