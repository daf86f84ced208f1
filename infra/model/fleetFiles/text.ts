/**
 * The text of tenant and stack files: a new tenant file (schema modeline + YAML), a dedicated
 * stack file, and edits of an existing tenant file through the YAML document, so comments and
 * layout a person wrote survive.
 */
import { parseDocument, stringify } from "yaml";
import { SCHEMA_COMMENT } from "./paths.ts";

export function renderTenantText(doc: Record<string, unknown>): string {
  return `${SCHEMA_COMMENT}\n${stringify(doc)}`;
}

export function dedicatedStackFileText(tenantId: string, env: string, region: string): string {
  return `# Dedicated stack of tenant ${tenantId} (${env}). Network and sizing are in tenants/${tenantId}.yaml.\n${stringify({ config: { "aws:region": region } })}`;
}

export type Edit = readonly [path: readonly (string | number)[], value: unknown];

/** Applies edits to a tenant file's text; undefined deletes the key. Comments are kept. */
export function editTenantText(text: string, edits: readonly Edit[]): string {
  const doc = parseDocument(text);
  for (const [path, value] of edits) {
    if (value === undefined) doc.deleteIn(path);
    else doc.setIn(path, value);
  }
  return doc.toString();
}

/** ISO timestamp without milliseconds, as tenant files carry them. */
export function isoSeconds(d: Date): string {
  return d.toISOString().replace(/\.\d{3}Z$/, "Z");
}
