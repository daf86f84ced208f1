import {
  CELL_ID_PATTERN,
  pgTenantIdent,
  SHARED_TENANT,
  tenantBucketName,
  tenantKmsAlias,
  tenantObjectPrefix,
  tenantSecretPrefix,
} from "../../infra/model/naming.ts";
import {
  actionMatches,
  conditionValues,
  parsePolicyDocument,
  PolicyDocumentError,
  serviceOf,
  statementLabel,
  type Statement,
} from "../lib/iam.ts";
import { envOf, escapeRegExp, isTenantId, records, str, strings, tenantOf, type PolicyContext } from "../lib/resource.ts";
import { StackIndex, T, type StackResourceView } from "../lib/stack.ts";
import type { StackPolicyDefinition, StackReport } from "../registry.ts";
import { tenantReferences } from "./dedicated-stack-single-tenant.ts";

/** Services whose data a `*` resource would open to every tenant. */
const GUARDED_SERVICES = new Set(["secretsmanager", "kms", "s3"]);
/** Bucket-level S3 actions that list keys: allowed on a cell bucket only with an s3:prefix condition. */
const S3_LIST_ACTIONS = ["s3:ListBucket", "s3:ListBucketVersions", "s3:ListBucketMultipartUploads"];
/** Bucket-level S3 actions that reveal nothing about other tenants' objects. */
const S3_BUCKET_META_ACTIONS = ["s3:GetBucketLocation"];
const TENANT_TAG_KEYS = ["aws:PrincipalTag/tenant", "aws:RequestTag/tenant"];
const EQUALS = ["StringEquals", "StringEqualsIgnoreCase"];
const LIKE = ["StringLike", "ForAllValues:StringLike", "ForAnyValue:StringLike", "ForAllValues:StringEquals", "ForAnyValue:StringEquals"];

interface Scope {
  tenant: string;
  env: string;
  ctx: PolicyContext;
  index: StackIndex;
  /** The resource holding the document being checked, and the input it is in. */
  doc?: StackResourceView;
  docProp: string;
}

interface Doc {
  /** Where the document lives, for messages: `inline policy "read"`, `policy`, `assumeRolePolicy`. */
  label: string;
  owner: StackResourceView;
  /** Top-level input holding the document. */
  prop: string;
  value: unknown;
}

function parse(doc: Doc, report: StackReport): Statement[] | undefined {
  try {
    return parsePolicyDocument(doc.value);
  } catch (err) {
    if (err instanceof PolicyDocumentError) {
      report(`${doc.label} ${err.message}`, doc.owner.urn);
      return undefined;
    }
    throw err;
  }
}

function hasWildcard(s: string): boolean {
  return s.includes("*") || s.includes("?");
}

// --- trust policy ------------------------------------------------------------------------------

function checkTrust(role: StackResourceView, tenant: string, accountId: string, report: StackReport): void {
  const doc: Doc = { label: "assumeRolePolicy", owner: role, prop: "assumeRolePolicy", value: role.props.assumeRolePolicy };
  const statements = parse(doc, report);
  if (!statements) return;
  for (const s of statements) {
    if (s.effect !== "Allow") continue;
    const where = `assumeRolePolicy ${statementLabel(s)}`;
    if (s.principals.includes("*")) report(`${where} trusts any principal ("*")`, role.urn);
    // An AWS service (flow logs delivering to the tenant's log group) cannot carry a tenant tag;
    // it is pinned to the platform account instead (confused-deputy protection).
    if (s.principals.length > 0 && s.principals.every((p) => p.startsWith("Service:"))) {
      const account = conditionValues(s, ["StringEquals"], "aws:SourceAccount") ?? [];
      const sourceArn = conditionValues(s, ["ArnEquals", "ArnLike", "StringEquals", "StringLike"], "aws:SourceArn") ?? [];
      const ok = (account.length > 0 && account.every((a) => a === accountId)) || (sourceArn.length > 0 && sourceArn.every((a) => ARN.exec(a)?.[4] === accountId));
      if (!ok) report(`${where} trusts ${s.principals.map((p) => p.slice("Service:".length)).join(", ")} without an aws:SourceAccount or aws:SourceArn condition on account ${accountId}`, role.urn);
      continue;
    }
    const pinned = TENANT_TAG_KEYS.flatMap((k) => conditionValues(s, EQUALS, k) ?? []);
    const loose = TENANT_TAG_KEYS.flatMap((k) => conditionValues(s, LIKE, k) ?? []);
    if (pinned.length === 0) {
      if (loose.length > 0) {
        report(`${where} matches the tenant tag loosely (${JSON.stringify(loose)}); pin it with StringEquals to "${tenant}"`, role.urn);
      } else {
        report(`${where} does not pin the tenant: add a StringEquals condition on aws:PrincipalTag/tenant or aws:RequestTag/tenant equal to "${tenant}"`, role.urn);
      }
      continue;
    }
    const wrong = pinned.filter((v) => v !== tenant);
    if (wrong.length > 0) {
      const kind = wrong.some(hasWildcard) ? "a wildcard tenant" : "another tenant";
      report(`${where} pins ${kind} (${JSON.stringify(wrong)}); the role of tenant "${tenant}" trusts only tenant "${tenant}"`, role.urn);
    }
  }
}

// --- identity policies -------------------------------------------------------------------------

const ARN = /^arn:([^:]*):([^:]*):([^:]*):([^:]*):(.*)$/;

function isGuardedAction(action: string): boolean {
  if (action === "*") return true;
  return GUARDED_SERVICES.has(serviceOf(action));
}

/**
 * Without outputs an ARN inside a document matches nothing; the engine still records which
 * resources the document was built from. When exactly one of them has the type, that is it.
 */
function soleDependency(scope: Scope, type: string): StackResourceView | undefined {
  const urns = scope.doc?.propertyDependencies?.[scope.docProp] ?? [];
  const found = urns.map((u) => scope.index.get(u)).filter((r) => r?.type === type);
  return found.length === 1 ? found[0] : undefined;
}

/** Why a KMS key resource is outside the tenant's namespace, or undefined. */
function kmsProblem(resource: string, rest: string, s: Statement, scope: Scope): string | undefined {
  const { appName } = scope.ctx.settings;
  if (rest.startsWith("alias/")) {
    const expected = tenantKmsAlias(appName, scope.env, scope.tenant);
    return rest === expected ? undefined : `is not the tenant's KMS alias "${expected}"`;
  }
  if (hasWildcard(rest)) {
    // Every key of the account and region, narrowed to the keys carrying the tenant's alias
    // (kms:ResourceAliases, a multi-valued key: ForAnyValue). Only the platform creates aliases.
    const expected = tenantKmsAlias(appName, scope.env, scope.tenant);
    const aliases = conditionValues(s, ["ForAnyValue:StringEquals"], "kms:ResourceAliases") ?? [];
    if (rest === "key/*" && aliases.length > 0 && aliases.every((a) => a === expected)) return undefined;
    return aliases.length > 0
      ? `is a wildcard over KMS keys narrowed to aliases ${JSON.stringify(aliases)}, not only the tenant's "${expected}"`
      : "is a wildcard over KMS keys";
  }
  const key = scope.index.find(resource, [T.key]) ?? soleDependency(scope, T.key);
  if (!key) return "is not a key of this stack, so its tenant cannot be checked";
  const owner = tenantOf(key);
  if (owner === scope.tenant) return undefined;
  if (owner === SHARED_TENANT) {
    // The cell key protects every pooled tenant's secrets: usable only through Secrets Manager
    // or for this tenant's secrets (the encryption context Secrets Manager sets).
    const via = conditionValues(s, ["StringEquals", "StringLike"], "kms:ViaService") ?? [];
    const viaSecrets = via.length > 0 && via.every((v) => /^secretsmanager\.[a-z0-9-*]+\.amazonaws\.com$/.test(v));
    const context = conditionValues(s, ["StringEquals", "StringLike", "ArnLike", "ArnEquals"], "kms:EncryptionContext:SecretARN") ?? [];
    const prefix = tenantSecretPrefix(appName, scope.env, scope.tenant);
    const contextOk = context.length > 0 && context.every((v) => (ARN.exec(v)?.[5] ?? "").startsWith(`secret:${prefix}`));
    // S3 SSE-KMS sets the object ARN as encryption context: scoped to the tenant's prefix, the
    // key only decrypts this tenant's objects.
    const objects = conditionValues(s, ["StringEquals", "StringLike", "ArnLike", "ArnEquals"], "kms:EncryptionContext:aws:s3:arn") ?? [];
    const objectsOk =
      objects.length > 0 &&
      objects.every((v) => {
        const m = ARN.exec(v);
        const rest = m?.[5] ?? "";
        return m?.[2] === "s3" && rest.includes("/") && s3Problem(rest, s, scope) === undefined;
      });
    if (viaSecrets || contextOk || objectsOk) return undefined;
    return `is the shared cell key (${key.name}); use it only with a kms:ViaService condition on Secrets Manager, or an encryption-context condition (kms:EncryptionContext:SecretARN under "${prefix}", kms:EncryptionContext:aws:s3:arn under the tenant's objects)`;
  }
  return `is the key of tenant "${owner ?? "<untagged>"}"`;
}

/** Why an S3 resource is outside the tenant's namespace, or undefined. */
function s3Problem(rest: string, s: Statement, scope: Scope): string | undefined {
  const { appName, awsAccountId } = scope.ctx.settings;
  const slash = rest.indexOf("/");
  const bucket = slash < 0 ? rest : rest.slice(0, slash);
  const key = slash < 0 ? undefined : rest.slice(slash + 1);
  const own = tenantBucketName(appName, scope.env, scope.tenant, awsAccountId);
  const prefix = tenantObjectPrefix(scope.tenant);
  if (hasWildcard(bucket)) return "is a wildcard over buckets";
  if (bucket === own) return undefined;
  const cell = new RegExp(`^${escapeRegExp(appName)}-${escapeRegExp(scope.env)}-(.+)-data-${escapeRegExp(awsAccountId)}$`).exec(bucket);
  if (!cell || !CELL_ID_PATTERN.test(cell[1]!)) return `is neither the tenant's bucket "${own}" nor a cell bucket`;
  if (key !== undefined) return key.startsWith(prefix) ? undefined : `is outside the tenant's prefix "${prefix}" of the cell bucket`;
  // Bucket-level ARN: only listing under the prefix, or harmless bucket metadata.
  const actions = s.actions;
  if (actions.every((a) => S3_BUCKET_META_ACTIONS.some((m) => actionMatches(a, m)) && !hasWildcard(a))) return undefined;
  const listsOnly = actions.every((a) => !hasWildcard(a) && [...S3_LIST_ACTIONS, ...S3_BUCKET_META_ACTIONS].some((m) => actionMatches(a, m)));
  const prefixes = conditionValues(s, ["StringEquals", "StringLike"], "s3:prefix") ?? [];
  if (listsOnly && prefixes.length > 0 && prefixes.every((p) => p.startsWith(prefix))) return undefined;
  return `is the whole cell bucket; allow only s3:ListBucket on it, with an s3:prefix condition under "${prefix}"`;
}

/** Why one resource of an Allow statement is outside the tenant's namespace, or undefined. */
function resourceProblem(resource: string, s: Statement, scope: Scope): string | undefined {
  const guarded = s.actions.filter(isGuardedAction);
  if (resource === "*" || resource === "arn:aws:*") {
    return guarded.length > 0 ? `allows ${guarded.join(", ")} on every resource ("*")` : undefined;
  }
  const m = ARN.exec(resource);
  if (!m) return undefined;
  const [, , service, , account, rest] = m as unknown as [string, string, string, string, string, string];
  const { appName, awsAccountId } = scope.ctx.settings;
  if (account !== "" && account !== awsAccountId) {
    return account === "*" ? "names every AWS account (\"*\")" : `names account ${account}, not the platform account ${awsAccountId}`;
  }
  switch (service) {
    case "secretsmanager": {
      const prefix = tenantSecretPrefix(appName, scope.env, scope.tenant);
      return rest.startsWith(`secret:${prefix}`) ? undefined : `is outside the tenant's secret namespace "${prefix}"`;
    }
    case "s3":
      return s3Problem(rest, s, scope);
    case "kms":
      return kmsProblem(resource, rest, s, scope);
    case "rds-db": {
      const user = /^dbuser:[^/]+\/(.+)$/.exec(rest)?.[1];
      const ident = pgTenantIdent(scope.tenant);
      return user === ident ? undefined : `connects as database user "${user ?? rest}", not the tenant's "${ident}"`;
    }
    default: {
      const foreign = tenantReferences(resource, scope.ctx.settings).find((r) =>
        r.what === "schema" ? r.tenant !== pgTenantIdent(scope.tenant) : r.tenant !== scope.tenant,
      );
      return foreign ? `names the ${foreign.what} "${foreign.text}" of another tenant` : undefined;
    }
  }
}

function checkIdentity(doc: Doc, roleScope: Scope, report: StackReport): void {
  const scope: Scope = { ...roleScope, doc: doc.owner, docProp: doc.prop };
  const statements = parse(doc, report);
  if (!statements) return;
  for (const s of statements) {
    if (s.effect !== "Allow") continue;
    const where = `${doc.label} ${statementLabel(s)}`;
    if (s.notActions.length > 0 || s.notResources.length > 0) {
      report(`${where} uses ${s.notActions.length > 0 ? "NotAction" : "NotResource"}, which allows everything it does not list`, doc.owner.urn);
      continue;
    }
    for (const resource of s.resources) {
      const problem = resourceProblem(resource, s, scope);
      if (problem) report(`${where} resource "${resource}" ${problem} (role of tenant "${scope.tenant}")`, doc.owner.urn);
    }
  }
}

/** The role a RolePolicy / RolePolicyAttachment attaches to. */
function roleOf(r: StackResourceView, index: StackIndex): StackResourceView | undefined {
  return index.resolve(r, "role", [T.role]);
}

export const iamTenantScope: StackPolicyDefinition = {
  kind: "stack",
  name: "iam-tenant-scope",
  description:
    "A tenant's IAM role trusts only sessions tagged with that tenant, and its policies name only resources in the tenant's namespace (secret prefix, own KMS key, own bucket or prefix); no '*' resource on Secrets Manager, KMS or S3 actions.",
  severity: "critical",
  enforcementLevel: "advisory",
  remediationSteps:
    "Build tenant role documents from naming.ts: secrets arn:aws:secretsmanager:<region>:<account>:secret:<app>/<env>/tenants/<id>/*, objects arn:aws:s3:::<bucket>/tenants/<id>/*, the tenant key's ARN; pin aws:PrincipalTag/tenant with StringEquals.",
  validate(resources, ctx, report) {
    const index = new StackIndex(resources);
    const scopeOf = (r: StackResourceView, tenant: string): Scope | undefined => {
      const env = envOf(r, ctx);
      return env === undefined ? undefined : { tenant, env, ctx, index, docProp: "" };
    };
    // Who attaches to which role, resolved once (per role it made the policy cubic in the fleet size).
    const byRole = <R extends StackResourceView>(list: readonly R[]): Map<StackResourceView | undefined, R[]> => {
      const m = new Map<StackResourceView | undefined, R[]>();
      for (const x of list) {
        const role = roleOf(x, index);
        m.set(role, [...(m.get(role) ?? []), x]);
      }
      return m;
    };
    const rolePolicies = byRole(index.ofType(T.rolePolicy));
    const attachments = byRole(index.ofType(T.rolePolicyAttachment));
    for (const role of index.ofType(T.role)) {
      const tenant = tenantOf(role);
      if (!isTenantId(tenant)) continue;
      const scope = scopeOf(role, tenant);
      if (!scope) continue;
      checkTrust(role, tenant, ctx.settings.awsAccountId, report);
      records(role.props.inlinePolicies).forEach((p, i) => {
        checkIdentity({ label: `inline policy "${str(p.name) ?? i}"`, owner: role, prop: "inlinePolicies", value: p.policy }, scope, report);
      });
      for (const rp of rolePolicies.get(role) ?? []) {
        checkIdentity({ label: "policy", owner: rp, prop: "policy", value: rp.props.policy }, scope, report);
      }
      const attached = [
        ...strings(role.props.managedPolicyArns).map((arn) => ({ from: role, arn, policy: index.find(arn, [T.iamPolicy]) })),
        ...(attachments.get(role) ?? []).map((a) => ({ from: a, arn: str(a.props.policyArn) ?? "<unset>", policy: index.resolve(a, "policyArn", [T.iamPolicy]) })),
      ];
      for (const { from, arn, policy } of attached) {
        if (!policy) {
          report(`attaches policy "${arn}" to the role of tenant "${tenant}"; it is not defined in this stack, so its statements cannot be checked`, from.urn);
        } else if (!isTenantId(tenantOf(policy))) {
          // Untagged or shared policies attached to a tenant role are checked for that tenant.
          checkIdentity({ label: "policy", owner: policy, prop: "policy", value: policy.props.policy }, scope, report);
        }
      }
    }
    for (const policy of index.ofType(T.iamPolicy)) {
      const tenant = tenantOf(policy);
      if (!isTenantId(tenant)) continue;
      const scope = scopeOf(policy, tenant);
      if (scope) checkIdentity({ label: "policy", owner: policy, prop: "policy", value: policy.props.policy }, scope, report);
    }
  },
};
