/**
 * DatabaseLocator from a JSON file mapping stack names to master-user connection strings:
 *
 *   { "shared-prod-use1-01": "postgres://platform_admin:...@cell-host:5432/cell?sslmode=require",
 *     "dedicated-acme-prod": "postgres://platform_admin:...@acme-host:5432/app?sslmode=require" }
 *
 * For operators and for a control plane without the Secrets Manager adapter. The file holds
 * credentials: keep it out of the repository, readable only by the control plane's user.
 */
import { readFileSync } from "node:fs";
import type pg from "pg";
import { cellStackName, dedicatedStackName } from "../../../infra/model/naming.ts";
import type { DatabaseLocator } from "../ports.ts";

export class DatabaseFileError extends Error {}

export class JsonFileDatabaseLocator implements DatabaseLocator {
  private readonly byStack: ReadonlyMap<string, string>;

  constructor(private readonly file: string) {
    let raw: unknown;
    try {
      raw = JSON.parse(readFileSync(file, "utf8"));
    } catch (err) {
      throw new DatabaseFileError(`${file}: ${(err as Error).message}`);
    }
    if (!raw || typeof raw !== "object" || Array.isArray(raw)) throw new DatabaseFileError(`${file}: expected an object mapping stack names to postgres:// URLs`);
    const entries = Object.entries(raw as Record<string, unknown>);
    const bad = entries.filter(([, v]) => typeof v !== "string" || !/^postgres(ql)?:\/\//.test(v)).map(([k]) => k);
    if (bad.length > 0) throw new DatabaseFileError(`${file}: ${bad.join(", ")}: expected a postgres:// connection string`);
    this.byStack = new Map(entries as [string, string][]);
  }

  private get(stack: string): pg.ClientConfig {
    const url = this.byStack.get(stack);
    if (!url) throw new DatabaseFileError(`${this.file} has no connection string for stack ${stack}; add "${stack}": "postgres://..."`);
    return { connectionString: url };
  }

  async cell(env: string, cell: string): Promise<pg.ClientConfig> {
    return this.get(cellStackName(env, cell));
  }

  async dedicated(tenant: string, env: string): Promise<pg.ClientConfig> {
    return this.get(dedicatedStackName(tenant, env));
  }
}
