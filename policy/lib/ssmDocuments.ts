/**
 * The SSM documents of docs/runtime-config.md as the policies see them: which parameter is a
 * tenant's runtime config or a share of a routing document (by its name, infra/model/naming.ts),
 * its JSON value, and what the stack says about them (its region, the tenants it serves and
 * renders). Used by `runtime-config-own-tenant` and `routing-own-env-region`.
 */
import { pgTenantIdent, SHARED_TENANT } from "../../infra/model/naming.ts";
import { escapeRegExp, isRecord, str, tenantOf } from "./resource.ts";
import { T, type StackResourceView } from "./stack.ts";

const ENV = "([a-z]{2,7})";
const ID = "([a-z](?:[a-z0-9-]*[a-z0-9])?)";
const REGION = "([a-z]{2}-[a-z]+-\\d)";
const CELL = "([a-z]{2,4}[0-9]-[0-9]{2})";

export type DocumentName =
  /** `/<app>/<env>/tenants/<id>/config` */
  | { kind: "config"; env: string; tenant: string }
  /** Anything else under `/<app>/<env>/tenants/<id>/`: the program publishes nothing else there. */
  | { kind: "tenant-other"; env: string; tenant: string }
  /** `/<app>/<env>/routing/<region>/cells/<cell>/<nn>` */
  | { kind: "routing-cell"; env: string; region: string; cell: string }
  /** `/<app>/<env>/routing/<region>/dedicated/<id>` */
  | { kind: "routing-dedicated"; env: string; region: string; tenant: string }
  /** Anything else under `/<app>/<env>/routing/`. */
  | { kind: "routing-other"; env: string };

/** What a parameter name says it is, or undefined for a name outside the documents' paths. */
export function documentName(name: string, app: string): DocumentName | undefined {
  const a = escapeRegExp(app);
  let m = new RegExp(`^/${a}/${ENV}/tenants/${ID}/config$`).exec(name);
  if (m) return { kind: "config", env: m[1]!, tenant: m[2]! };
  m = new RegExp(`^/${a}/${ENV}/tenants/${ID}/`).exec(name);
  if (m) return { kind: "tenant-other", env: m[1]!, tenant: m[2]! };
  m = new RegExp(`^/${a}/${ENV}/routing/${REGION}/cells/${CELL}/\\d{2}$`).exec(name);
  if (m) return { kind: "routing-cell", env: m[1]!, region: m[2]!, cell: m[3]! };
  m = new RegExp(`^/${a}/${ENV}/routing/${REGION}/dedicated/${ID}$`).exec(name);
  if (m) return { kind: "routing-dedicated", env: m[1]!, region: m[2]!, tenant: m[3]! };
  m = new RegExp(`^/${a}/${ENV}/routing/`).exec(name);
  if (m) return { kind: "routing-other", env: m[1]! };
  return undefined;
}

/** A parameter of the stack with a document name. */
export interface DocumentParameter {
  resource: StackResourceView;
  name: string;
  doc: DocumentName;
}

export function documentParameters(resources: readonly StackResourceView[], app: string): DocumentParameter[] {
  const out: DocumentParameter[] = [];
  for (const r of resources) {
    if (r.type !== T.ssmParameter) continue;
    const name = str(r.props.name);
    const doc = name === undefined ? undefined : documentName(name, app);
    if (name !== undefined && doc) out.push({ resource: r, name, doc });
  }
  return out;
}

/**
 * The parameter's value parsed as a JSON object, or why not. The program writes `insecureValue`
 * (a plan shows the diff); `value` is read too so that moving a document to it is still checked.
 */
export function documentValue(r: StackResourceView): { value: Record<string, unknown> } | { error: string } {
  const text = str(r.props.insecureValue) ?? str(r.props.value);
  if (text === undefined) return { error: "has no known string value (insecureValue or value)" };
  try {
    const parsed: unknown = JSON.parse(text);
    return isRecord(parsed) ? { value: parsed } : { error: "is not a JSON object" };
  } catch {
    return { error: "is not JSON" };
  }
}

/** Keys of `value` outside `allowed`, in their order. */
export function unknownKeys(value: Record<string, unknown>, allowed: readonly string[]): string[] {
  return Object.keys(value).filter((k) => !allowed.includes(k));
}

/**
 * The stack's region: the `region` of its AWS provider resources when they agree on one. A plan
 * and a `pulumi stack export` carry the providers; without them the region is not known and the
 * checks against it are skipped (the documents' own names and contents are still compared).
 */
export function stackRegion(resources: readonly StackResourceView[]): string | undefined {
  const regions = new Set<string>();
  for (const r of resources) {
    if (r.type !== "pulumi:providers:aws") continue;
    const region = str(r.props.region);
    if (region !== undefined) regions.add(region);
  }
  return regions.size === 1 ? [...regions][0] : undefined;
}

/** Tenants with resources in the stack: a `tenant` tag (not `shared`) or a `tenant_<id>` Postgres role. */
export function renderedTenants(resources: readonly StackResourceView[]): { tagged: Set<string>; pgRoles: Set<string> } {
  const tagged = new Set<string>();
  const pgRoles = new Set<string>();
  for (const r of resources) {
    const tag = tenantOf(r);
    if (tag !== undefined && tag !== SHARED_TENANT) tagged.add(tag);
    if (r.type === T.pgRole) {
      const name = str(r.props.name);
      if (name !== undefined) pgRoles.add(name);
    }
  }
  return { tagged, pgRoles };
}

export function rendersTenant(rendered: { tagged: Set<string>; pgRoles: Set<string> }, tenant: string): boolean {
  return rendered.tagged.has(tenant) || rendered.pgRoles.has(pgTenantIdent(tenant));
}
