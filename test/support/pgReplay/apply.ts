/**
 * The driver: applies the `postgresql:*` resources of a render in registration order, one
 * transaction per resource on the database the provider (or the resource) names, and keeps the
 * state a re-apply compares against.
 *
 * Like `pulumi up` after a first deployment, a second replay with the same `state` reads the
 * catalog (the provider's Read) and executes only the updates a difference calls for; with no
 * difference it executes nothing. Advisory locks (pgLockRole/pgLockSchema) are left out: replays
 * run one resource at a time.
 */
import { ReplayError, type ReplayOptions, type ReplayResult, type ReplayState } from "./api.ts";
import { applyDatabase } from "./database.ts";
import { applyDefaultPrivileges } from "./defaultPrivileges.ts";
import { applyGrant } from "./grant.ts";
import { pgResources } from "./resources.ts";
import { applyRole } from "./role.ts";
import { applySchema } from "./schema.ts";
import { Runner } from "./session.ts";
import type { RenderedResource } from "../../../plan/types.ts";

/**
 * Applies the `postgresql:*` resources of a render in registration order. Returns the write
 * statements executed and the state to pass to a re-apply.
 */
export async function replayPostgres(resources: readonly RenderedResource[], opts: ReplayOptions): Promise<ReplayResult> {
  const { providers, resources: pg } = pgResources(resources);
  const state: ReplayState = opts.state ?? new Map();
  const run = new Runner(opts);
  const providerDb = (urn: string) => {
    const p = providers.get(urn);
    if (!p) throw new ReplayError(`${urn}: resources must name an explicit postgresql provider (options.provider)`);
    return p.database;
  };
  try {
    for (const res of pg) {
      const prior = state.get(res.urn);
      const connDb = run.db(providerDb(res.provider));
      switch (res.kind) {
        case "role":
          await run.tx(res.urn, connDb, (t) => applyRole(t, res.spec, prior));
          break;
        case "schema":
          await run.tx(res.urn, run.db(res.spec.database ?? providerDb(res.provider)), (t) => applySchema(t, res.spec, prior));
          break;
        case "grant": {
          const db = run.db(res.spec.database);
          await run.tx(res.urn, db, (t) => applyGrant(t, res.spec, db, prior));
          break;
        }
        case "defaultPrivileges":
          await run.tx(res.urn, run.db(res.spec.database), (t) => applyDefaultPrivileges(t, res.spec, prior));
          break;
        case "database": {
          const name = run.db(res.spec.name);
          await run.direct(res.urn, connDb, (t) => applyDatabase(t, res.spec, name, prior));
          break;
        }
      }
      state.set(res.urn, res.kind === "role" ? { password: res.spec.password } : {});
    }
  } finally {
    await run.close();
  }
  return { executed: run.executed, state };
}
