/**
 * The tenant file reference of docs/tenant-files.md, generated from the JSON schema (itself generated
 * from the zod schema) and from the tier defaults, so the documentation cannot drift from the code:
 * `npx tenantctl schema --markdown` prints it and a test compares it with docs/tenant-files.md.
 */
import { tenantJsonSchema, type JsonSchema } from "./jsonSchema.ts";
import type { SchemaContext } from "./schema.ts";
import { DEDICATED_NONPROD_SIZING, DEDICATED_PROD_SIZING, TIER_LIMITS, TIERS, defaultDeployment, allowedDeployments } from "./tiers.ts";

export interface FieldRow {
  /** Dotted path with placeholders: `environments.<env>.teams.<team>.secrets`. */
  field: string;
  type: string;
  /** "yes", "no", or qualified by deployment: "yes (pooled)". */
  required: string;
  default: string;
  description: string;
}

const MAX_SAFE = Number.MAX_SAFE_INTEGER;

interface Entry {
  row: Omit<FieldRow, "required">;
  required: boolean;
  choices?: string[];
}

function asSchema(s: unknown): JsonSchema | undefined {
  return typeof s === "object" && s !== null ? (s as JsonSchema) : undefined;
}

function typeOf(s: JsonSchema): string {
  if (s.const !== undefined) return `\`${String(s.const)}\``;
  if (s.enum) return `one of ${s.enum.map((v) => `\`${String(v)}\``).join(", ")}`;
  switch (s.type) {
    case "string": {
      if (s.format) return `string (${s.format})`;
      if (s.pattern) return `string matching \`${s.pattern}\``;
      const len = s.minLength !== undefined || s.maxLength !== undefined ? ` (${s.minLength ?? 0}-${s.maxLength ?? "..."} chars)` : "";
      return `string${len}`;
    }
    case "integer":
    case "number": {
      const min = s.minimum ?? (typeof s.exclusiveMinimum === "number" ? s.exclusiveMinimum + 1 : undefined);
      const max = s.maximum !== undefined && s.maximum < MAX_SAFE ? s.maximum : undefined;
      if (min === undefined && max === undefined) return s.type;
      return `${s.type} ${min ?? ""}..${max ?? ""}`;
    }
    case "array": {
      const item = asSchema(s.items);
      return `list of ${item ? typeOf(item) : "values"}`;
    }
    case "object":
      return asSchema(s.propertyNames) ? "map" : "mapping";
    default:
      return String(s.type ?? "any");
  }
}

/** Values of an enum or const field, to merge a field whose allowed values differ per branch (tier, deployment). */
function choices(s: JsonSchema): string[] | undefined {
  if (s.const !== undefined) return [String(s.const)];
  return s.enum?.map(String);
}

function placeholder(key: string, names: JsonSchema): string {
  if (names.enum) return "<env>";
  return `<${key.replace(/s$/, "")}>`;
}

function walk(s: JsonSchema, prefix: string, required: boolean, out: Map<string, Entry>): void {
  const props = s.properties ?? {};
  const req = new Set(s.required ?? []);
  for (const [key, value] of Object.entries(props)) {
    const child = asSchema(value);
    if (!child || key === "$schema") continue;
    const field = prefix ? `${prefix}.${key}` : key;
    out.set(field, {
      row: {
        field,
        type: typeOf(child),
        default: child.default === undefined ? "" : `\`${JSON.stringify(child.default)}\``,
        description: child.description ?? "",
      },
      required: required && req.has(key),
      ...(choices(child) ? { choices: choices(child)! } : {}),
    });
    descend(child, field, key, out);
  }
}

function descend(child: JsonSchema, field: string, key: string, out: Map<string, Entry>): void {
  if (child.type === "object" && child.properties) walk(child, field, true, out);
  const names = asSchema(child.propertyNames);
  const values = asSchema(child.additionalProperties);
  if (names && values) {
    const entry = `${field}.${placeholder(key, names)}`;
    const keys = names.enum ? `one of ${names.enum.join(", ")}` : names.pattern ? `matching \`${names.pattern}\`` : "any";
    out.set(entry, { row: { field: entry, type: typeOf(values), default: "", description: `Keys: ${keys}.` }, required: false });
    descend(values, entry, key, out);
  }
}

/** One row per field of the tenant file, base fields first, in schema order. */
export function fieldReference(ctx: SchemaContext): FieldRow[] {
  const schema = tenantJsonSchema(ctx);
  const branches = (schema.oneOf ?? []).map((b) => {
    const deployment = asSchema(b.properties?.deployment)?.const;
    const rows = new Map<string, Entry>();
    walk(b, "", true, rows);
    return { deployment: String(deployment), rows };
  });
  const order: string[] = [];
  for (const b of branches) for (const f of b.rows.keys()) if (!order.includes(f)) order.push(f);
  return order.map((field) => {
    const present = branches.filter((b) => b.rows.has(field));
    const first = present[0]!.rows.get(field)!;
    const merged = present.flatMap((b) => b.rows.get(field)!.choices ?? []);
    const type = present.length > 1 && merged.length > 0 ? typeOf({ enum: [...new Set(merged)] }) : first.row.type;
    const requiredIn = present.filter((b) => b.rows.get(field)!.required);
    const only = present.length < branches.length ? ` (${present.map((b) => b.deployment).join(", ")})` : "";
    const required = requiredIn.length === present.length && requiredIn.length > 0 ? `yes${only}` : `no${only}`;
    return { ...first.row, type, required };
  });
}

/** A table cell: pipes escaped, and `<app>` outside code spans escaped so Markdown does not take it for HTML. */
function cell(s: string): string {
  return s
    .replace(/\n/g, " ")
    .split("`")
    .map((part, i) => (i % 2 === 0 ? part.replace(/</g, "&lt;") : part))
    .join("`")
    .replace(/\|/g, "\\|");
}

export function markdownTable(header: readonly string[], rows: readonly (readonly string[])[]): string {
  return [
    `| ${header.join(" | ")} |`,
    `|${header.map(() => "---").join("|")}|`,
    ...rows.map((r) => `| ${r.map(cell).join(" | ")} |`),
  ].join("\n");
}

export function fieldReferenceMarkdown(ctx: SchemaContext): string {
  return markdownTable(
    ["field", "type", "required", "default", "meaning"],
    fieldReference(ctx).map((r) => [`\`${r.field}\``, r.type, r.required, r.default, r.description]),
  );
}

/** Per-tier limits and deployments, then dedicated RDS sizing, from infra/model/tiers.ts. */
export function tierDefaultsMarkdown(): string {
  const limits = markdownTable(
    ["tier", "deployment", "API rate / min", "storage GiB", "max DB connections", "statement timeout ms"],
    TIERS.map((t) => {
      const l = TIER_LIMITS[t];
      const d = allowedDeployments(t).map((x) => (x === defaultDeployment(t) ? `${x} (default)` : x)).join(", ");
      return [t, d, String(l.apiRatePerMinute), String(l.storageGb), String(l.maxDbConnections), String(l.statementTimeoutMs)];
    }),
  );
  const sizing = markdownTable(
    ["dedicated RDS", "instance class", "storage GiB", "multi-AZ", "backup days"],
    ([["prod", DEDICATED_PROD_SIZING], ["staging, dev", DEDICATED_NONPROD_SIZING]] as const).map(([env, s]) => [
      env,
      s.instanceClass,
      String(s.allocatedStorageGb),
      s.multiAz ? "yes" : "no",
      String(s.backupRetentionDays),
    ]),
  );
  return `${limits}\n\n${sizing}`;
}

/** Everything `tenantctl schema --markdown` prints; docs/tenant-files.md contains it verbatim. */
export function tenantReferenceMarkdown(ctx: SchemaContext): string {
  return `${fieldReferenceMarkdown(ctx)}\n\nTier defaults (\`infra/model/tiers.ts\`; \`limits\` and \`dedicated.<env>.database\` override them per tenant):\n\n${tierDefaultsMarkdown()}`;
}
