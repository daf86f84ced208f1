/**
 * What a policy can check about secrets. The engine marks an input secret on the wire, but the
 * @pulumi/policy SDK unwraps the marker before any policy runs (deserialize.js, `proxySecrets`
 * false for Analyze/AnalyzeStack), and the generated provider SDKs wrap schema-secret inputs
 * (rds Instance password, SecretVersion secretString, postgresql Role password) in
 * pulumi.secret themselves. So "is this value a Pulumi secret?" cannot be observed, and in the
 * fields the provider marks secret it is always true. What leaks in practice is a secret value
 * copied into a field that is NOT secret (a tag, a name, a description, a plain SSM parameter, a
 * DNS record, user data, an environment variable, a stack output), where it lands in plaintext in
 * state, the console and the AWS API. This policy finds exactly that, plus plain-String SSM
 * parameters with secret-looking names and placeholder secret values.
 */
import { isRecord, str, stringLeaves, type ResourceView } from "../lib/resource.ts";
import { T } from "../lib/stack.ts";
import type { StackPolicyDefinition } from "../registry.ts";

/** Shorter values are skipped: they collide with ordinary strings and are not real credentials. */
export const MIN_SECRET_LENGTH = 8;

/** Inputs/outputs that hold secret values, by resource type (paths into the props). */
const SENSITIVE_FIELDS: Readonly<Record<string, readonly string[]>> = {
  [T.rdsInstance]: ["password"],
  [T.rdsCluster]: ["masterPassword"],
  [T.secretVersion]: ["secretString"],
  [T.pgRole]: ["password"],
  [T.randomPassword]: ["result", "bcryptHash"],
  "pulumi:providers:postgresql": ["password"],
};

/** JSON fields of a secret string that hold credentials. */
const SENSITIVE_KEY = /pass(word|wd)?$|secret|token|api[-_]?key|private[-_]?key|credential/i;
/** SSM parameter names that say they hold a credential. */
const SENSITIVE_NAME = /pass(word|wd)|secret|token|api[-_]?key|private[-_]?key|credential/i;

/** Values that stand in for a secret that was never set. */
export const PLACEHOLDER =
  /^(?:change[-_ ]?me|changeit|todo|tbd|fixme|placeholder|example|sample|dummy|test|secret|password|passw0rd|xxx+|\*+|replace[-_ ]?me|<[^>]*>|\$\{[^}]*\}|none|null|default)$/i;

interface SecretValue {
  value: string;
  /** `<type> "<name>".<field>`: never the value itself. */
  source: string;
}

function sensitiveFieldsOf(r: ResourceView): string[] {
  const fields = [...(SENSITIVE_FIELDS[r.type] ?? [])];
  if (r.type === T.ssmParameter && str(r.props.type) === "SecureString") fields.push("value");
  return fields;
}

function collect(resources: readonly ResourceView[]): SecretValue[] {
  const out: SecretValue[] = [];
  const add = (value: unknown, source: string) => {
    if (typeof value === "string" && value.length >= MIN_SECRET_LENGTH) out.push({ value, source });
  };
  for (const r of resources) {
    for (const field of sensitiveFieldsOf(r)) {
      const value = r.props[field];
      const source = `${r.type} "${r.name}".${field}`;
      add(value, source);
      if (r.type === T.secretVersion && typeof value === "string") {
        for (const [key, v] of Object.entries(jsonObject(value) ?? {})) {
          if (SENSITIVE_KEY.test(key)) add(v, `${source} field "${key}"`);
        }
      }
    }
  }
  return out;
}

function jsonObject(s: string): Record<string, unknown> | undefined {
  try {
    const v: unknown = JSON.parse(s);
    return isRecord(v) ? v : undefined;
  } catch {
    return undefined;
  }
}

/**
 * `value => the first secret (in collection order) that value contains`. Secrets are indexed by
 * their first MIN_SECRET_LENGTH characters, so a leaf costs one map lookup per position instead
 * of one substring search per secret (a cell of 1,000 tenants holds thousands of both).
 */
function leakFinder(secrets: readonly SecretValue[]): (value: string) => SecretValue | undefined {
  const byPrefix = new Map<string, number[]>();
  secrets.forEach((s, i) => {
    const k = s.value.slice(0, MIN_SECRET_LENGTH);
    const list = byPrefix.get(k);
    if (list) list.push(i);
    else byPrefix.set(k, [i]);
  });
  return (value) => {
    let best = -1;
    for (let pos = 0; pos + MIN_SECRET_LENGTH <= value.length; pos++) {
      const candidates = byPrefix.get(value.slice(pos, pos + MIN_SECRET_LENGTH));
      if (!candidates) continue;
      for (const i of candidates) {
        if ((best === -1 || i < best) && value.startsWith(secrets[i]!.value, pos)) best = i;
      }
    }
    return best === -1 ? undefined : secrets[best];
  };
}

export const secretsStaySecret: StackPolicyDefinition = {
  kind: "stack",
  name: "secrets-stay-secret",
  description:
    "Secret values (database and role passwords, secret strings, generated passwords) appear only in the inputs that hold secrets, never in tags, names, descriptions, plain SSM parameters, DNS records, user data or stack outputs; secret-looking SSM parameters are SecureString; secret versions hold no placeholder.",
  severity: "critical",
  enforcementLevel: "advisory",
  remediationSteps:
    "Pass secret values only to password / secretString / SecureString inputs; reference a secret by name or ARN elsewhere; set real secret values out of band instead of placeholders.",
  validate(resources, _ctx, report) {
    const findLeak = leakFinder(collect(resources));
    for (const r of resources) {
      const own = new Set(sensitiveFieldsOf(r));
      for (const { path, value } of stringLeaves(r.props)) {
        const root = path.split(/[.[]/)[0]!;
        if (own.has(root)) continue;
        // One report per leaked input, naming the first resource that holds the value.
        const leaked = findLeak(value);
        if (!leaked) continue;
        const where = r.type === T.stack ? `stack output ${path}` : `input ${path}`;
        report(`${where} contains the secret value of ${leaked.source}; it would be stored and shown in plaintext`, r.urn);
      }
    }
    for (const p of resources.filter((r) => r.type === T.ssmParameter)) {
      const name = str(p.props.name) ?? p.name;
      const type = str(p.props.type);
      if (SENSITIVE_NAME.test(name) && type !== "SecureString") {
        report(`SSM parameter "${name}" looks like a credential but is type ${type ?? "<unset>"}; use SecureString`, p.urn);
      }
    }
    for (const v of resources.filter((r) => r.type === T.secretVersion)) {
      const secretString = str(v.props.secretString);
      if (secretString === undefined) continue;
      const fields = jsonObject(secretString);
      const candidates: Array<[string, unknown]> = fields
        ? Object.entries(fields).filter(([k]) => SENSITIVE_KEY.test(k)).map(([k, x]) => [`field "${k}"`, x])
        : [["value", secretString]];
      for (const [label, x] of candidates) {
        if (typeof x === "string" && (x.trim() === "" || PLACEHOLDER.test(x.trim()))) {
          report(`secretString ${label} is a placeholder ("${x}"); set the real value out of band instead of committing a stand-in`, v.urn);
        }
      }
    }
  },
};
