import { replayPostgres, type ReplayResult, type ReplayState } from "../support/pgReplay/index.ts";
import type { RenderedStack } from "../../plan/types.ts";
import type { Credentials, PgServer } from "../support/postgres.ts";

/** The database RDS creates with the instance (its `dbName` input); the stack's providers connect to it. */
export function rdsDatabaseName(stack: RenderedStack): string {
  const dbs = stack.resources.filter((r) => r.type === "aws:rds/instance:Instance").map((r) => r.inputs.dbName);
  if (dbs.length !== 1 || typeof dbs[0] !== "string") {
    throw new Error(`${stack.name}: expected one aws:rds/instance:Instance with a dbName, found ${JSON.stringify(dbs)}`);
  }
  return dbs[0];
}

/** Replays the stack's postgresql resources on `server` as `admin` (the provider's credentials stand for it). */
export function replayRendered(
  server: PgServer,
  admin: Credentials,
  stack: RenderedStack,
  databaseName: (declared: string) => string,
  state?: ReplayState,
): Promise<ReplayResult> {
  return replayPostgres(stack.resources, {
    connect: (database) => server.connect({ ...admin, database }),
    databaseName,
    state,
  });
}

/**
 * The stack with extra resources of an existing type (same provider and parent as the first
 * resource of that type): how the weakened cases add a grant the program does not declare.
 */
export function withExtraResources(
  stack: RenderedStack,
  extra: ReadonlyArray<{ type: string; name: string; inputs: Record<string, unknown> }>,
): RenderedStack {
  const added = extra.map((e) => {
    const template = stack.resources.find((r) => r.type === e.type);
    if (!template) throw new Error(`${stack.name} has no ${e.type} to model an extra one on`);
    return { ...template, name: e.name, urn: `${template.urn.slice(0, template.urn.lastIndexOf("::"))}::${e.name}`, inputs: e.inputs };
  });
  return { ...stack, resources: [...stack.resources, ...added] };
}
