import type { z } from "zod";
import { problemAt, parseYamlMap, type YamlFile } from "./yamlFile.ts";
import type { Problem } from "./problems.ts";
import { makeTenantSchema, withDerivedDeployment, type SchemaContext, type Tenant } from "./schema.ts";
import { TIERS, allowedDeployments, type Tier } from "./tiers.ts";

export interface LoadedTenant {
  tenant: Tenant;
  file: string;
  yaml: YamlFile;
}

/** Turns zod issues into one problem per offending key, each with the line it sits on. */
export function issuesToProblems(
  y: YamlFile,
  issues: readonly z.core.$ZodIssue[],
  prefix: readonly PropertyKey[] = [],
): Problem[] {
  const out: Problem[] = [];
  for (const issue of issues) {
    const path = [...prefix, ...(issue.path as PropertyKey[])];
    if (issue.code === "unrecognized_keys") {
      for (const key of issue.keys) out.push(problemAt(y, [...path, key], `unknown key "${key}"; remove it or check its spelling`));
    } else if (issue.code === "invalid_key") {
      const inner = issue.issues.map((i) => i.message).join("; ");
      out.push(problemAt(y, path, `key ${inner}`));
    } else if (issue.code === "invalid_union" && issue.path.length === 0 && "note" in issue) {
      out.push(problemAt(y, ["deployment"], "deployment must be pooled or dedicated"));
    } else if (issue.code === "invalid_type" && issue.input === undefined) {
      out.push(problemAt(y, path, `is required (${issue.message.replace(/^Invalid input: /, "")})`));
    } else {
      out.push(problemAt(y, path, issue.message.replace(/^Invalid input: /, "")));
    }
  }
  return out;
}

/**
 * Parses and validates one tenant file on its own (cross-file rules are in fleet.ts).
 * `expectedId` is the file's base name: the id must equal it.
 */
export function parseTenantFile(
  file: string,
  text: string,
  ctx: SchemaContext,
  expectedId?: string,
): LoadedTenant | Problem[] {
  const y = parseYamlMap(file, text);
  if (Array.isArray(y)) return y;
  const raw = y.value as Record<string, unknown>;
  // A tier/deployment contradiction is reported as such, not as the union's missing keys.
  const { tier, deployment } = raw;
  if (typeof tier === "string" && (TIERS as readonly string[]).includes(tier) && typeof deployment === "string") {
    const allowed = allowedDeployments(tier as Tier);
    if ((deployment === "pooled" || deployment === "dedicated") && !allowed.includes(deployment)) {
      return [problemAt(y, ["deployment"], `tier ${tier} cannot be ${deployment}: allowed ${allowed.join(" or ")} (only enterprise may choose)`)];
    }
  }
  const result = makeTenantSchema(ctx).safeParse(withDerivedDeployment(raw));
  const problems = result.success ? [] : issuesToProblems(y, result.error.issues);
  if (result.success && expectedId !== undefined && result.data.id !== expectedId) {
    problems.push(problemAt(y, ["id"], `id "${result.data.id}" must equal the file name "${expectedId}"; rename the file or the id`));
  }
  if (problems.length > 0 || !result.success) return problems;
  return { tenant: result.data, file, yaml: y };
}
