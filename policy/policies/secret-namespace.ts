import {
  globalSecretPrefix,
  pgTenantIdent,
  SHARED_TENANT,
  TEAM_NAME_PATTERN,
  tenantSecretPrefix,
} from "../../infra/model/naming.ts";
import { parsePolicyDocument, PolicyDocumentError, statementLabel } from "../lib/iam.ts";
import { escapeRegExp, envOf, isRecord, isTenantId, str, tenantOf } from "../lib/resource.ts";
import { StackIndex, T, type StackResourceView } from "../lib/stack.ts";
import type { PolicyContext } from "../lib/resource.ts";
import type { StackPolicyDefinition, StackReport } from "../registry.ts";

/** One path segment below a namespace: a secret or sub-secret name (naming.ts SECRET_NAME_PATTERN, plus digits first). */
const SEGMENT = /^[a-z0-9][a-z0-9_-]{0,62}$/;

/** Why a name below `<app>/<env>/tenants/<tenant>/` is malformed, or undefined when it is fine. */
function badRemainder(rest: string): string | undefined {
  const segments = rest.split("/");
  if (rest === "" || segments.some((s) => !SEGMENT.test(s))) {
    return "has an empty or malformed name below the namespace (lower-case words separated by /)";
  }
  if (segments[0] === "teams" && (segments.length < 3 || !TEAM_NAME_PATTERN.test(segments[1]!))) {
    return "is under teams/ but not of the form teams/<team>/<name>";
  }
  return undefined;
}

function checkSecretName(r: StackResourceView, ctx: PolicyContext, report: StackReport): void {
  const tenant = tenantOf(r);
  const env = envOf(r, ctx);
  // A secret with no tenant or env tag is tenant-tags' violation; its namespace is unknown.
  if (tenant === undefined || env === undefined) return;
  const { appName } = ctx.settings;
  const name = str(r.props.name);
  const prefixOnly = name === undefined ? str(r.props.namePrefix) : undefined;
  const shown = name ?? prefixOnly;
  if (shown === undefined) {
    report(`has no name; a secret's name lies under "${tenantSecretPrefix(appName, env, "<tenant>")}" or "${globalSecretPrefix(appName, env)}"`, r.urn);
    return;
  }
  if (tenant === SHARED_TENANT) {
    const prefix = globalSecretPrefix(appName, env);
    if (!shown.startsWith(prefix)) {
      report(`name "${shown}" is outside the platform namespace "${prefix}" of a secret tagged tenant=${SHARED_TENANT}`, r.urn);
    }
    return;
  }
  const prefix = tenantSecretPrefix(appName, env, tenant);
  if (!shown.startsWith(prefix)) {
    report(`name "${shown}" is outside the namespace "${prefix}" of its tenant tag "${tenant}"`, r.urn);
    return;
  }
  if (name !== undefined) {
    const why = badRemainder(name.slice(prefix.length));
    if (why) report(`name "${name}" ${why}`, r.urn);
  }
}

/** Postgres tenant identities a secret string carries (the connection document's user/schema). */
function identitiesIn(secretString: string): string[] {
  let doc: unknown;
  try {
    doc = JSON.parse(secretString);
  } catch {
    return [...secretString.matchAll(/(?<![A-Za-z0-9_])tenant_[a-z0-9_]+(?![A-Za-z0-9_])/g)].map((m) => m[0]);
  }
  if (!isRecord(doc)) return [];
  return Object.values(doc).filter((v): v is string => typeof v === "string" && /^tenant_[a-z0-9_]+$/.test(v));
}

function targetLabel(target: StackResourceView): string {
  return `secret "${str(target.props.name) ?? target.name}"`;
}

function checkVersion(v: StackResourceView, index: StackIndex, report: StackReport): void {
  const secretId = str(v.props.secretId);
  const target = index.resolve(v, "secretId", [T.secret]);
  if (!target) {
    if (secretId !== undefined) report(`secretId "${secretId}" is not a secret of this stack, so its namespace cannot be checked`, v.urn);
    return;
  }
  const tenant = tenantOf(target);
  if (tenant === undefined) return;
  const expected = isTenantId(tenant) ? pgTenantIdent(tenant) : undefined;
  const secretString = str(v.props.secretString);
  if (secretString === undefined) return;
  for (const ident of new Set(identitiesIn(secretString))) {
    if (ident !== expected) {
      report(`secretString carries the database identity "${ident}" but writes ${targetLabel(target)} of tenant "${tenant}"`, v.urn);
    }
  }
}

function checkSecretPolicy(p: StackResourceView, index: StackIndex, ctx: PolicyContext, report: StackReport): void {
  const secretArn = str(p.props.secretArn);
  const target = index.resolve(p, "secretArn", [T.secret]);
  if (!target) {
    if (secretArn !== undefined) report(`secretArn "${secretArn}" is not a secret of this stack, so its namespace cannot be checked`, p.urn);
    return;
  }
  const tenant = tenantOf(target);
  if (tenant === undefined) return;
  let statements;
  try {
    statements = parsePolicyDocument(p.props.policy);
  } catch (err) {
    if (err instanceof PolicyDocumentError) {
      report(`policy ${err.message}`, p.urn);
      return;
    }
    throw err;
  }
  const rolePattern = new RegExp(`:role/(?:.*/)?${escapeRegExp(ctx.settings.appName)}-[a-z]{2,7}-t-([a-z0-9-]+)$`);
  for (const s of statements) {
    if (s.effect !== "Allow") continue;
    for (const principal of s.principals) {
      if (principal === "*" || principal === "AWS:*") {
        report(`policy ${statementLabel(s)} allows any principal ("*") on ${targetLabel(target)}`, p.urn);
        continue;
      }
      const m = rolePattern.exec(principal);
      if (m && m[1] !== tenant) {
        report(`policy ${statementLabel(s)} allows the role of tenant "${m[1]}" on ${targetLabel(target)} of tenant "${tenant}"`, p.urn);
      }
    }
    for (const resource of s.resources) {
      if (resource === "*" || resource === str(target.props.arn)) continue;
      const other = index.find(resource, [T.secret]);
      if (other !== target) {
        report(`policy ${statementLabel(s)} names resource "${resource}", not the secret it is attached to`, p.urn);
      }
    }
  }
}

export const secretNamespace: StackPolicyDefinition = {
  kind: "stack",
  name: "secret-namespace",
  description:
    "Each Secrets Manager secret lies under <app>/<env>/tenants/<tenant tag>/ (team secrets under .../teams/<team>/), or under <app>/<env>/global/ only when tagged tenant=shared; secret versions and secret policies refer only to secrets of the same tenant.",
  severity: "critical",
  enforcementLevel: "advisory",
  remediationSteps:
    "Name secrets with tenantSecretName/teamSecretName/globalSecretName from infra/model/naming.ts and the resource's own tenant; generate database passwords instead of manageMasterUserPassword.",
  validate(resources, ctx, report) {
    const index = new StackIndex(resources);
    for (const r of index.ofType(T.secret)) checkSecretName(r, ctx, report);
    for (const v of index.ofType(T.secretVersion)) checkVersion(v, index, report);
    for (const p of index.ofType(T.secretPolicy)) checkSecretPolicy(p, index, ctx, report);
    for (const db of [...index.ofType(T.rdsInstance), ...index.ofType(T.rdsCluster)]) {
      if (db.props.manageMasterUserPassword === true) {
        report(
          `manageMasterUserPassword is true: RDS keeps the master password in a secret it names (rds!...), outside the "${ctx.settings.appName}/<env>/" namespaces; generate the password and store it in the namespaced secret`,
          db.urn,
        );
      }
    }
  },
};
