/**
 * What a policy sees of a resource, typed as `unknown` all the way down: the SDK hands policies
 * `Record<string, any>` (an unknown-checking proxy, so reading a value that is unknown during
 * preview throws and the SDK turns that into an advisory "can't run during preview").
 */
import { parseStackName, type StackRef, TENANT_ID_PATTERN, SHARED_TENANT } from "../../infra/model/naming.ts";
import { envDomain } from "../../infra/model/platform.ts";
import type { PackSettings } from "../settings.ts";

export interface ResourceView {
  type: string;
  name: string;
  urn: string;
  props: Readonly<Record<string, unknown>>;
}

/** Everything a policy knows besides the resource: settings and the stack it is in. */
export interface PolicyContext {
  settings: PackSettings;
  /** Stack name from the URN (`urn:pulumi:<stack>::<project>::<type>::<name>`). */
  stackName: string;
  /** The parsed stack, or undefined when the name is not one of the two kinds. */
  stack: StackRef | undefined;
}

export function stackNameOfUrn(urn: string): string {
  if (!urn.startsWith("urn:pulumi:")) return "";
  return urn.slice("urn:pulumi:".length).split("::")[0] ?? "";
}

export function contextFor(urn: string, settings: PackSettings): PolicyContext {
  const stackName = stackNameOfUrn(urn);
  let stack: StackRef | undefined;
  try {
    stack = parseStackName(stackName, settings.environments);
  } catch {
    stack = undefined;
  }
  return { settings, stackName, stack };
}

/** The DNS domain of an env (prod: the platform domain; others `<env>.<domain>`). */
export function domainOf(settings: PackSettings, env: string): string {
  return envDomain({ domain: settings.domain }, env);
}

// --- value helpers ---------------------------------------------------------------------------

export function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

export function str(v: unknown): string | undefined {
  return typeof v === "string" ? v : undefined;
}

export function strings(v: unknown): string[] {
  if (typeof v === "string") return [v];
  if (Array.isArray(v)) return v.filter((x): x is string => typeof x === "string");
  return [];
}

export function records(v: unknown): Record<string, unknown>[] {
  return Array.isArray(v) ? v.filter(isRecord) : [];
}

// --- tags -------------------------------------------------------------------------------------

export function tagsOf(props: Readonly<Record<string, unknown>>): Record<string, string> {
  const tags = props.tags;
  if (!isRecord(tags)) return {};
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(tags)) if (typeof v === "string") out[k] = v;
  return out;
}

/** The tenant a resource belongs to, from its `tenant` tag (`shared` for cell infrastructure). */
export function tenantOf(r: { props: Readonly<Record<string, unknown>> }): string | undefined {
  return tagsOf(r.props).tenant;
}

/** A tenant tag naming a real tenant (not `shared`, not malformed). */
export function isTenantId(t: string | undefined): t is string {
  return t !== undefined && t !== SHARED_TENANT && TENANT_ID_PATTERN.test(t);
}

/** The env a resource belongs to: its `env` tag, else the stack's env. */
export function envOf(r: { props: Readonly<Record<string, unknown>> }, ctx: PolicyContext): string | undefined {
  return tagsOf(r.props).env ?? ctx.stack?.env;
}

/** Every string leaf of a value, with its path (`tags.Name`, `ingress[0].description`). */
export function stringLeaves(v: unknown, path = ""): Array<{ path: string; value: string }> {
  if (typeof v === "string") return [{ path, value: v }];
  if (Array.isArray(v)) return v.flatMap((x, i) => stringLeaves(x, `${path}[${i}]`));
  if (isRecord(v)) return Object.entries(v).flatMap(([k, x]) => stringLeaves(x, path ? `${path}.${k}` : k));
  return [];
}

export function escapeRegExp(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}
