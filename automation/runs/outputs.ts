/**
 * Stack outputs as they are stored with a run and served by GET /api/runs/:id: the Automation
 * API hands them over in plain text (`{ value, secret }`, read with --show-secrets), so every
 * output marked secret keeps its name and loses its value before it is stored (docs/security.md).
 */

/** What a secret output's value becomes; the same text the Pulumi CLI prints. */
export const MASKED_OUTPUT = "[secret]";

function isSecretOutput(v: unknown): boolean {
  return typeof v === "object" && v !== null && (v as { secret?: unknown }).secret === true;
}

export function maskSecretOutputs(outputs: Readonly<Record<string, unknown>>): Record<string, unknown> {
  return Object.fromEntries(Object.entries(outputs).map(([k, v]) => [k, isSecretOutput(v) ? { value: MASKED_OUTPUT, secret: true } : v]));
}
