/** The `postgresql:*` resources of a render, read into the specs the replay applies. */
import { PG_TYPES, ReplayError } from "./api.ts";
import { parseDatabase, type DatabaseSpec } from "./database.ts";
import { parseDefaultPrivileges, type DefaultPrivilegesSpec } from "./defaultPrivileges.ts";
import { parseGrant, type GrantSpec } from "./grant.ts";
import { Inputs } from "./inputs.ts";
import { parseProvider, providerUrnOf, type PgProvider } from "./provider.ts";
import { parseRole, type RoleSpec } from "./role.ts";
import { parseSchema, type SchemaSpec } from "./schema.ts";
import { unwrapSecrets, type RenderedResource } from "../../../plan/types.ts";

export type PgResource =
  | { kind: "role"; urn: string; provider: string; spec: RoleSpec }
  | { kind: "schema"; urn: string; provider: string; spec: SchemaSpec }
  | { kind: "grant"; urn: string; provider: string; spec: GrantSpec }
  | { kind: "defaultPrivileges"; urn: string; provider: string; spec: DefaultPrivilegesSpec }
  | { kind: "database"; urn: string; provider: string; spec: DatabaseSpec };

/** The `postgresql:*` resources of a render, in registration order (a valid dependency order). */
export function pgResources(resources: readonly RenderedResource[]): { providers: Map<string, PgProvider>; resources: PgResource[] } {
  const providers = new Map<string, PgProvider>();
  const out: PgResource[] = [];
  for (const r of resources) {
    const inp = new Inputs(`${r.type} ${r.name}`, unwrapSecrets(r.inputs) as Record<string, unknown>);
    if (r.type === PG_TYPES.provider) {
      providers.set(r.urn, parseProvider(inp, r.urn));
      continue;
    }
    if (!r.type.startsWith("postgresql:")) continue;
    const at = { urn: r.urn, provider: providerUrnOf(r) };
    switch (r.type) {
      case PG_TYPES.role:
        out.push({ kind: "role", ...at, spec: parseRole(inp) });
        break;
      case PG_TYPES.schema:
        out.push({ kind: "schema", ...at, spec: parseSchema(inp) });
        break;
      case PG_TYPES.grant:
        out.push({ kind: "grant", ...at, spec: parseGrant(inp) });
        break;
      case PG_TYPES.defaultPrivileges:
        out.push({ kind: "defaultPrivileges", ...at, spec: parseDefaultPrivileges(inp) });
        break;
      case PG_TYPES.database:
        out.push({ kind: "database", ...at, spec: parseDatabase(inp) });
        break;
      default:
        throw new ReplayError(`${inp.what}: resource type not supported by the replay`);
    }
  }
  return { providers, resources: out };
}
