/**
 * IAM policy documents as the policies read them. Inputs carry a document either as a JSON string
 * (what `JSON.stringify` or `aws.iam.getPolicyDocument` produce) or as an object (the SDK's
 * `PolicyDocument` type); both are accepted.
 */
import { isRecord, strings } from "./resource.ts";

export interface Statement {
  /** Position in the document, for messages. */
  index: number;
  sid: string | undefined;
  effect: "Allow" | "Deny";
  actions: string[];
  notActions: string[];
  resources: string[];
  notResources: string[];
  /** Principals flattened to `<kind>:<value>` ("AWS:arn:...", "Service:ec2.amazonaws.com", "*"). */
  principals: string[];
  /** operator -> condition key -> values */
  conditions: Record<string, Record<string, string[]>>;
}

export class PolicyDocumentError extends Error {}

/** Parses a policy document; throws PolicyDocumentError with the reason when it is not one. */
export function parsePolicyDocument(doc: unknown): Statement[] {
  let value: unknown = doc;
  if (typeof doc === "string") {
    try {
      value = JSON.parse(doc);
    } catch (err) {
      throw new PolicyDocumentError(`is not valid JSON (${(err as Error).message})`);
    }
  }
  if (!isRecord(value)) throw new PolicyDocumentError("is not a JSON object");
  const raw = value.Statement;
  const list = Array.isArray(raw) ? raw : raw === undefined ? [] : [raw];
  return list.map((s, index) => {
    if (!isRecord(s)) throw new PolicyDocumentError(`statement ${index} is not an object`);
    const effect = s.Effect === "Deny" ? "Deny" : "Allow";
    const conditions: Statement["conditions"] = {};
    if (isRecord(s.Condition)) {
      for (const [op, block] of Object.entries(s.Condition)) {
        if (!isRecord(block)) continue;
        conditions[op] = {};
        for (const [key, v] of Object.entries(block)) {
          conditions[op][key] = Array.isArray(v) ? v.map((x) => String(x)) : [String(v)];
        }
      }
    }
    return {
      index,
      sid: typeof s.Sid === "string" ? s.Sid : undefined,
      effect,
      actions: strings(s.Action),
      notActions: strings(s.NotAction),
      resources: strings(s.Resource),
      notResources: strings(s.NotResource),
      principals: principalsOf(s.Principal),
      conditions,
    };
  });
}

function principalsOf(p: unknown): string[] {
  if (p === "*") return ["*"];
  if (!isRecord(p)) return [];
  return Object.entries(p).flatMap(([kind, v]) => strings(v).map((x) => (x === "*" ? "*" : `${kind}:${x}`)));
}

export function statementLabel(s: Statement): string {
  return s.sid ? `statement ${s.index} (${s.sid})` : `statement ${s.index}`;
}

/** Condition values for a key under any of the given operators (keys compare case-insensitively). */
export function conditionValues(s: Statement, operators: readonly string[], key: string): string[] | undefined {
  let found: string[] | undefined;
  for (const [op, block] of Object.entries(s.conditions)) {
    if (!operators.includes(op)) continue;
    for (const [k, v] of Object.entries(block)) {
      if (k.toLowerCase() === key.toLowerCase()) found = [...(found ?? []), ...v];
    }
  }
  return found;
}

/** True when the action pattern (with IAM `*`/`?` wildcards) can match an action of the given ones. */
export function actionMatches(pattern: string, action: string): boolean {
  const re = new RegExp(`^${pattern.split("").map((c) => (c === "*" ? ".*" : c === "?" ? "." : c.replace(/[.+^${}()|[\]\\]/g, "\\$&"))).join("")}$`, "i");
  return re.test(action);
}

/** The service prefix of an action (`s3:GetObject` -> `s3`; `*` -> `*`). */
export function serviceOf(action: string): string {
  const i = action.indexOf(":");
  return i < 0 ? action.toLowerCase() : action.slice(0, i).toLowerCase();
}
