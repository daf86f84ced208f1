import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { TENANT_SCHEMA_FILE } from "../../infra/model/fleet.ts";
import { writeAtomic } from "../../infra/model/fleetFiles/index.ts";
import { tenantJsonSchemaText } from "../../infra/model/jsonSchema.ts";
import { loadPlatform, PlatformError } from "../../infra/model/platform.ts";
import { tenantReferenceMarkdown } from "../../infra/model/reference.ts";
import type { SchemaContext } from "../../infra/model/schema.ts";
import { EXIT, ProblemsError, UsageError, type Io } from "../io.ts";
import { fleetDirs, shownPath, type DirOptions } from "../options.ts";

export interface SchemaOptions extends DirOptions {
  /** Write tenants/tenant.schema.json instead of printing it. */
  write?: boolean;
  /** Exit 1 when the committed file differs from what the zod schema generates. */
  check?: boolean;
  /** Print the tenant file reference of docs/tenant-files.md (field table and tier defaults). */
  markdown?: boolean;
}

/** `tenantctl schema [--write|--check|--markdown]`: the editor schema of tenant files, from the zod schema. */
export function schemaCommand(opts: SchemaOptions, io: Io): number {
  if ([opts.write, opts.check, opts.markdown].filter(Boolean).length > 1) {
    throw new UsageError("--write, --check and --markdown are exclusive; pass one");
  }
  const dirs = fleetDirs(opts);
  let ctx: SchemaContext;
  try {
    const platform = loadPlatform(dirs.projectDir);
    ctx = { regions: platform.regions, environments: platform.environments };
  } catch (err) {
    if (err instanceof PlatformError) throw new ProblemsError(err.message.split("\n"));
    throw err;
  }
  if (opts.markdown) {
    io.out(tenantReferenceMarkdown(ctx));
    return EXIT.ok;
  }
  const text = tenantJsonSchemaText(ctx);
  const target = join(dirs.tenantsDir ?? join(dirs.projectDir, "tenants"), TENANT_SCHEMA_FILE);
  if (opts.check) {
    const current = existsSync(target) ? readFileSync(target, "utf8") : undefined;
    if (current !== text) {
      const what = current === undefined ? "is missing" : "is stale: it differs from the zod schema (infra/model/schema.ts) and Pulumi.yaml";
      io.err(`${shownPath(target)}:1: (document): ${what}; run npx tenantctl schema --write and commit it`);
      return EXIT.problems;
    }
    io.out(`ok: ${shownPath(target)} is current`);
    return EXIT.ok;
  }
  if (opts.write) {
    writeAtomic(target, text);
    io.out(`wrote ${shownPath(target)}`);
    return EXIT.ok;
  }
  io.out(text.trimEnd());
  return EXIT.ok;
}
