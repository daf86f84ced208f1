/** The postgresql provider resources of a render, and which one each resource names. */
import type { Inputs } from "./inputs.ts";
import type { RenderedResource } from "../../../plan/types.ts";

export interface PgProvider {
  urn: string;
  /** The provider's default database (`database` input; the provider defaults to "postgres"). */
  database: string;
  superuser: boolean;
}

export function parseProvider(inp: Inputs, urn: string): PgProvider {
  // Connection settings (and TLS: sslmode verify-full with the RDS CA bundle in sslrootcert) point at
  // the real instance; the replay connects where the test says.
  inp.ignore("host", "port", "username", "password", "sslmode", "sslMode", "sslrootcert", "connectTimeout", "maxConnections", "expectedVersion", "scheme", "version");
  const provider = { urn, database: inp.str("database") ?? "postgres", superuser: inp.bool("superuser", true) };
  inp.done();
  return provider;
}

/** options.provider is "<provider urn>::<id>"; no explicit provider means the default one (""). */
export function providerUrnOf(r: RenderedResource): string {
  return r.options.provider ? r.options.provider.split("::").slice(0, -1).join("::") : "";
}
