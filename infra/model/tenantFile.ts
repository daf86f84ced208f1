import { z } from "zod";
import { problemAt, parseYamlMap, rawValueAt, type YamlFile } from "./yamlFile.ts";
import { formatPath, type Problem } from "./problems.ts";
import { tenantSchemaFor, withDerivedDeployment, type SchemaContext, type Tenant } from "./schema.ts";
import { DEPLOYMENTS, TIERS, allowedDeployments, type Tier } from "./tiers.ts";

export interface LoadedTenant {
  tenant: Tenant;
  file: string;
  yaml: YamlFile;
}

/** How a received value reads in a message: `string "yes please"`, `a list`, `null (an empty value)`. */
function describeValue(value: unknown): string {
  if (value === null) return "null (an empty value)";
  if (Array.isArray(value)) return "a list";
  if (typeof value === "object") return "a mapping";
  return `${typeof value} ${JSON.stringify(value)}`;
}

function isScalar(value: unknown): value is string | number | boolean {
  return typeof value === "string" || typeof value === "number" || typeof value === "boolean";
}

/** Strips optional/default wrappers to reach the schema that describes a value's shape. */
function unwrap(schema: z.ZodType): z.ZodType {
  for (let s = schema; ; ) {
    if (s instanceof z.ZodOptional || s instanceof z.ZodDefault || s instanceof z.ZodPrefault || s instanceof z.ZodNullable) {
      s = s.unwrap() as z.ZodType;
    } else if (s instanceof z.ZodPipe) {
      s = s.in as z.ZodType;
    } else {
      return s;
    }
  }
}

/** The keys an object schema allows at `path`, for "unknown key" messages; undefined when not an object. */
export function allowedKeysAt(schema: z.ZodType, path: readonly PropertyKey[]): string[] | undefined {
  let s = unwrap(schema);
  for (const key of path) {
    if (s instanceof z.ZodObject) {
      const next = (s.shape as Record<string, z.ZodType>)[String(key)];
      if (!next) return undefined;
      s = unwrap(next);
    } else if (s instanceof z.ZodRecord) {
      s = unwrap(s.valueType as z.ZodType);
    } else if (s instanceof z.ZodArray) {
      s = unwrap(s.element as z.ZodType);
    } else {
      return undefined;
    }
  }
  return s instanceof z.ZodObject ? Object.keys(s.shape as object).filter((k) => k !== "$schema") : undefined;
}

/**
 * Turns zod issues into one problem per offending YAML path, each with the line it sits on and,
 * where it helps, the value received. `schema` (relative to `prefix`) lets unknown-key messages
 * list the allowed keys.
 */
export function issuesToProblems(
  y: YamlFile,
  issues: readonly z.core.$ZodIssue[],
  prefix: readonly PropertyKey[] = [],
  schema?: z.ZodType,
): Problem[] {
  const byPath = new Map<string, { path: PropertyKey[]; messages: string[] }>();
  const add = (path: PropertyKey[], message: string) => {
    const key = formatPath(path);
    const entry = byPath.get(key) ?? { path, messages: [] };
    if (!entry.messages.includes(message)) entry.messages.push(message);
    byPath.set(key, entry);
  };
  for (const issue of issues) {
    const rel = issue.path;
    const path = [...prefix, ...rel];
    const raw = rawValueAt(y.value, path);
    if (issue.code === "unrecognized_keys") {
      const allowed = schema ? allowedKeysAt(schema, rel) : undefined;
      const hint = allowed ? `allowed keys: ${allowed.join(", ")}` : "remove it or check its spelling";
      for (const key of issue.keys) add([...path, key], `unknown key ${JSON.stringify(key)}; ${hint}`);
    } else if (issue.code === "invalid_key") {
      // The key schemas' messages name the key (team name "a/b" must be ...).
      add(path, issue.issues.map((i) => i.message).join("; "));
    } else if (issue.code === "invalid_union" && "note" in issue && issue.note === "No matching discriminator") {
      add(path, `${describeValue(raw.value)} is not one of ${DEPLOYMENTS.join(", ")}; omit it to derive it from the tier`);
    } else if (issue.code === "invalid_type") {
      add(
        path,
        !raw.found || raw.value === undefined
          ? `is required; expected ${issue.expected}`
          : `expected ${issue.expected}, got ${describeValue(raw.value)}`,
      );
    } else {
      let message = issue.message.replace(/^Invalid input: /, "");
      if (issue.code === "invalid_value" && message.startsWith("Invalid option")) {
        message = `must be one of ${issue.values.map(String).join(", ")}`;
      }
      if (raw.found && isScalar(raw.value) && !message.includes(JSON.stringify(raw.value))) {
        message = `${message}; got ${JSON.stringify(raw.value)}`;
      }
      add(path, message);
    }
  }
  return [...byPath.values()].map(({ path, messages }) => problemAt(y, path, messages.join("; ")));
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
  const { tier, deployment } = raw;
  const tierOk = typeof tier === "string" && (TIERS as readonly string[]).includes(tier);
  const deploymentOk = deployment === "pooled" || deployment === "dedicated";
  // A tier/deployment contradiction is reported as such, not as the union's missing keys.
  if (tierOk && deploymentOk) {
    const allowed = allowedDeployments(tier as Tier);
    if (!allowed.includes(deployment)) {
      return [
        problemAt(
          y,
          ["deployment"],
          `tier ${tier} cannot be ${deployment}: allowed ${allowed.join(" or ")} (only enterprise may choose); ` +
            `remove deployment or change the tier`,
        ),
      ];
    }
  }
  const problems: Problem[] = [];
  const schema = tenantSchemaFor(ctx);
  let input: unknown;
  let guessed = false;
  if (deploymentOk || (tierOk && !("deployment" in raw))) {
    input = withDerivedDeployment(raw);
  } else {
    // Without a usable tier or deployment the union cannot pick a branch; guess one from the keys
    // present so every other problem of the file is still reported in the same run.
    if ("deployment" in raw) {
      problems.push(
        problemAt(y, ["deployment"], `${describeValue(deployment)} is not one of ${DEPLOYMENTS.join(", ")}; omit it to derive it from the tier`),
      );
    }
    guessed = true;
    input = { ...raw, deployment: "dedicated" in raw ? "dedicated" : "pooled" };
  }
  const branch = schema.options.find((o) => o.shape.deployment.value === (input as { deployment: unknown }).deployment);
  const result = schema.safeParse(input);
  if (!result.success) {
    const issues = guessed ? result.error.issues.filter((i) => i.path[0] !== "deployment") : result.error.issues;
    problems.push(...issuesToProblems(y, issues, [], branch));
  }
  const id = result.success ? result.data.id : raw.id;
  if (expectedId !== undefined && typeof id === "string" && id !== expectedId && !problems.some((p) => p.path === "id")) {
    problems.push(problemAt(y, ["id"], `"${id}" must equal the file name "${expectedId}"; rename the file or change the id`));
  }
  if (problems.length > 0 || !result.success) return problems;
  return { tenant: result.data, file, yaml: y };
}
