/**
 * What `pulumi up` would do to a stack, from two offline plans of it: resources created, updated
 * (with the input paths that change), replaced (loudly: a replaced database is data loss) and
 * deleted, plus the policy violations that appear or go away. Pure: no git, no rendering.
 *
 * The engine's rules this follows (https://www.pulumi.com/docs/iac/concepts/resources/names/#urns):
 * a resource is identified by its URN (stack, project, parent type chain, type, name); a URN that
 * disappears is a delete and a new one is a create, unless the new resource declares the old URN
 * as an alias. The same type and name under another parent is therefore a delete plus a create of
 * the same cloud resource: a replacement. An input change replaces the resource when the provider
 * says so (plan/replacements.ts). A replaced resource's computed outputs (id, ARN) are unknown
 * until apply, so inputs that used them change too, which can replace the dependents in turn.
 */
import { mockOutputs, type MockContext } from "./render/mockOutputs.ts";
import { isSecretValue, unwrapSecrets, type PlannedStack, type RenderedResource, type Violation } from "./types.ts";
import { effectOf, RESOURCE_RULES } from "./replacements.ts";

export type Action = "create" | "update" | "replace" | "delete";

export interface InputChange {
  /** Input path: `tags.tenant`, `ingress[0].cidrBlocks[1]`, `policy(json).Statement[0].Resource`. */
  path: string;
  /** Shown values: JSON, `(unset)`, `[secret]` for anything secret, or `(known after apply ...)`. */
  before: string;
  after: string;
  effect: "replace" | "caution" | "update";
  note?: string;
}

export interface ResourceChange {
  action: Action;
  /** The URN after the change (before, for a delete). */
  urn: string;
  /** The URN it had before, when that differs (a move under another parent, or an alias). */
  previousUrn?: string;
  type: string;
  name: string;
  changes: InputChange[];
  /** Why it is replaced, one line each. */
  reasons: string[];
  /** What the reviewer must weigh: data loss, protection, disruption. */
  warnings: string[];
  /** The deletion or replacement destroys data (database, schema, bucket, key, secret, zone, logs). */
  dataLoss: boolean;
}

export interface Counts {
  create: number;
  update: number;
  replace: number;
  delete: number;
  same: number;
}

export interface StackDiff {
  stack: string;
  kind: "platform" | "shared" | "dedicated";
  /** new: no stack at the base; removed: no stack at the head. */
  status: "new" | "removed" | "changed" | "unchanged";
  tenants: { before: string[]; after: string[]; added: string[]; removed: string[] };
  /** Custom resources only (components are bookkeeping, not cloud resources), replacements first. */
  resources: ResourceChange[];
  counts: Counts;
  violations: { after: Violation[]; introduced: Violation[]; resolved: Violation[] };
  /** Stack-level warnings (a removed stack is not destroyed by the workflows). */
  warnings: string[];
}

export interface DiffOptions {
  /** Region and account the mock runtime rendered with; inferred from ARNs in the inputs when omitted. */
  mock?: MockContext;
}

const ROOT_TYPE = "pulumi:pulumi:Stack";
const MAX_SHOWN = 120;
/** Computed values shorter than this are not searched for in other inputs (too likely to collide). */
const MIN_COMPUTED_LENGTH = 8;

// --- values ------------------------------------------------------------------------------------

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

function deepEqual(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (Array.isArray(a) && Array.isArray(b)) return a.length === b.length && a.every((x, i) => deepEqual(x, b[i]));
  if (isPlainObject(a) && isPlainObject(b)) {
    const ka = Object.keys(a).filter((k) => a[k] !== undefined);
    const kb = Object.keys(b).filter((k) => b[k] !== undefined);
    return ka.length === kb.length && ka.every((k) => deepEqual(a[k], b[k]));
  }
  return false;
}

/** How a value is printed in a plan. Secrets never are: a secret, or anything inside one, is `[secret]`. */
export function showValue(v: unknown, secret: boolean): string {
  if (v === undefined) return "(unset)";
  if (secret) return "[secret]";
  const s = JSON.stringify(v) ?? String(v);
  return s.length > MAX_SHOWN ? `${s.slice(0, MAX_SHOWN - 1)}…` : s;
}

function jsonDocument(v: unknown): unknown {
  if (typeof v !== "string" || !/^\s*[[{]/.test(v)) return undefined;
  try {
    const parsed: unknown = JSON.parse(v);
    return typeof parsed === "object" && parsed !== null ? parsed : undefined;
  } catch {
    return undefined;
  }
}

interface Leaf {
  path: string;
  before: unknown;
  after: unknown;
  secret: boolean;
}

function joinPath(base: string, key: string): string {
  return base === "" ? key : `${base}.${key}`;
}

/** The changed leaves between two input trees. Secret wrappers mark everything below them secret. */
function leafChanges(path: string, a: unknown, b: unknown, secret: boolean, out: Leaf[]): void {
  if (deepEqual(a, b)) return;
  const sa = isSecretValue(a);
  const sb = isSecretValue(b);
  const va = sa ? (a as { value: unknown }).value : a;
  const vb = sb ? (b as { value: unknown }).value : b;
  const inSecret = secret || sa || sb;
  if (sa !== sb && deepEqual(unwrapSecrets(va), unwrapSecrets(vb))) {
    // Same value, but it became (or stopped being) a secret: the engine reports that as a diff.
    out.push({ path, before: va, after: vb, secret: true });
    return;
  }
  if (isPlainObject(va) && isPlainObject(vb)) {
    for (const k of [...new Set([...Object.keys(va), ...Object.keys(vb)])].sort()) leafChanges(joinPath(path, k), va[k], vb[k], inSecret, out);
    return;
  }
  if (Array.isArray(va) && Array.isArray(vb) && va.length === vb.length) {
    va.forEach((x, i) => leafChanges(`${path}[${i}]`, x, vb[i], inSecret, out));
    return;
  }
  const ja = jsonDocument(va);
  const jb = jsonDocument(vb);
  if (ja !== undefined && jb !== undefined) {
    leafChanges(`${path}(json)`, ja, jb, inSecret, out);
    return;
  }
  out.push({ path, before: va, after: vb, secret: inSecret });
}

/** Says "(known after apply ...)" for a new value that is a computed output of a resource being created. */
type PendingLabel = (value: unknown) => string | undefined;

function inputChanges(type: string, before: Record<string, unknown>, after: Record<string, unknown>, pending?: PendingLabel): InputChange[] {
  const leaves: Leaf[] = [];
  leafChanges("", before, after, false, leaves);
  return leaves.map((l) => {
    const e = effectOf(type, l.path);
    const label = l.secret ? undefined : pending?.(l.after);
    return {
      path: l.path,
      before: showValue(l.before, l.secret),
      after: label ?? showValue(l.after, l.secret),
      effect: e.effect,
      ...(e.effect === "caution" ? { note: e.note } : {}),
    };
  });
}

/** Every string leaf of an input tree with its path (secret values included: only searched, never shown). */
function stringLeaves(path: string, v: unknown, out: { path: string; value: string; secret: boolean }[], secret = false): void {
  if (isSecretValue(v)) return stringLeaves(path, (v as { value: unknown }).value, out, true);
  if (typeof v === "string") out.push({ path, value: v, secret });
  else if (Array.isArray(v)) v.forEach((x, i) => stringLeaves(`${path}[${i}]`, x, out, secret));
  else if (isPlainObject(v)) for (const [k, x] of Object.entries(v)) stringLeaves(joinPath(path, k), x, out, secret);
}

// --- resources ---------------------------------------------------------------------------------

/** Optional fields some renders carry (aliases from the engine request); read defensively. */
function aliasesOf(r: RenderedResource): string[] {
  const aliases = (r.options as { aliases?: unknown }).aliases;
  return Array.isArray(aliases) ? aliases.filter((a): a is string => typeof a === "string") : [];
}

function isCloudResource(r: RenderedResource): boolean {
  return r.custom && r.type !== ROOT_TYPE && !r.type.startsWith("pulumi:providers:");
}

const ARN_RE = /arn:aws[a-z-]*:[a-z0-9-]+:([a-z]{2}(?:-[a-z]+)+-\d):(\d{12}):/;

function inferMockContext(stacks: readonly (PlannedStack | undefined)[]): MockContext | undefined {
  for (const s of stacks) {
    for (const r of s?.resources ?? []) {
      const found = JSON.stringify(unwrapSecrets(r.inputs)).match(ARN_RE);
      if (found) return { region: found[1]!, accountId: found[2]!, stack: s!.name };
    }
  }
  return undefined;
}

/** Values the mock runtime computed for a resource (id, ARN, endpoint...): what its dependents' inputs contain. */
function computedValues(r: RenderedResource, ctx: MockContext): string[] {
  const inputs = unwrapSecrets(r.inputs) as Record<string, unknown>;
  const ownLeaves: { path: string; value: string; secret: boolean }[] = [];
  stringLeaves("", inputs, ownLeaves);
  const own = new Set(ownLeaves.map((l) => l.value));
  const { id, state } = mockOutputs(r.type, r.name, inputs, ctx);
  // Renders that record the outputs the engine saw carry them too; the mock's id is not among them.
  const recorded = (r as { outputs?: unknown }).outputs;
  const leaves: { path: string; value: string; secret: boolean }[] = [];
  stringLeaves("", { ...state, id, ...(isPlainObject(recorded) ? { recorded } : {}) }, leaves);
  return [...new Set(leaves.map((l) => l.value))].filter((v) => v.length >= MIN_COMPUTED_LENGTH && !own.has(v));
}

function dataLossWarnings(change: ResourceChange, before: RenderedResource | undefined): void {
  if (change.action !== "replace" && change.action !== "delete") return;
  const rules = RESOURCE_RULES[change.type];
  const verb = change.action === "replace" ? "replaced" : "deleted";
  if (before?.options.retainOnDelete) {
    change.warnings.push(`retainOnDelete: Pulumi forgets the old ${change.type} ${change.name}; the cloud resource and its data stay (orphaned, still billed)`);
  } else if (rules?.dataLoss) {
    change.dataLoss = true;
    change.warnings.push(`DATA LOSS: ${change.type} ${change.name} is ${verb}: ${rules.dataLoss}`);
  } else if (rules?.disruption || (change.action === "replace" && rules?.onReplace)) {
    change.warnings.push(`${change.type} ${change.name} is ${verb}: ${rules.disruption ?? rules.onReplace}`);
  }
  if (before?.options.protect) {
    change.warnings.push(`protected: pulumi up refuses to ${change.action} ${change.name} until protect is removed in the program`);
  }
  if (change.action === "replace" && before?.options.deleteBeforeReplace) {
    change.warnings.push("deleteBeforeReplace: the old resource is deleted before the new one exists (downtime)");
  }
}

function violationKey(v: Violation): string {
  return `${v.policy}\u0000${v.level}\u0000${v.urn}\u0000${v.message}`;
}

const ACTION_ORDER: Readonly<Record<Action, number>> = { replace: 0, delete: 1, create: 2, update: 3 };

/**
 * The diff of one stack between two plans (either may be missing: a new or a removed stack).
 * Only custom resources are compared; the root stack and components carry no cloud state.
 */
export function diffPlans(before: PlannedStack | undefined, after: PlannedStack | undefined, opts: DiffOptions = {}): StackDiff {
  const any = after ?? before;
  if (!any) throw new Error("diffPlans: both sides are missing");
  const old = new Map((before?.resources ?? []).filter(isCloudResource).map((r) => [r.urn, r]));
  const cur = new Map((after?.resources ?? []).filter(isCloudResource).map((r) => [r.urn, r]));
  const changes: ResourceChange[] = [];
  const pairs: { before: RenderedResource; after: RenderedResource; change: ResourceChange }[] = [];
  let same = 0;

  // 1. The same URN on both sides, or an alias that names an old URN: compare inputs.
  const matchedOld = new Set<string>();
  const unmatchedNew: RenderedResource[] = [];
  for (const r of cur.values()) {
    const prior = old.get(r.urn) ?? aliasesOf(r).map((a) => old.get(a)).find((x) => x !== undefined && !cur.has(x.urn));
    if (!prior) {
      unmatchedNew.push(r);
      continue;
    }
    matchedOld.add(prior.urn);
    const change: ResourceChange = {
      action: "update", urn: r.urn, type: r.type, name: r.name, changes: [],
      reasons: [], warnings: [], dataLoss: false,
      ...(prior.urn !== r.urn ? { previousUrn: prior.urn } : {}),
    };
    pairs.push({ before: prior, after: r, change });
  }

  // 2. A URN that disappears while one of the same type and name appears: moved under another parent.
  const leftovers = [...old.values()].filter((r) => !matchedOld.has(r.urn));
  for (const r of unmatchedNew) {
    const idx = leftovers.findIndex((o) => o.type === r.type && o.name === r.name);
    if (idx < 0) {
      changes.push({ action: "create", urn: r.urn, type: r.type, name: r.name, changes: [], reasons: [], warnings: [], dataLoss: false });
      continue;
    }
    const prior = leftovers.splice(idx, 1)[0]!;
    const change: ResourceChange = {
      action: "replace", urn: r.urn, previousUrn: prior.urn, type: r.type, name: r.name, changes: [],
      reasons: [`its parent changed (${prior.parent || "the stack"} -> ${r.parent || "the stack"}) without an alias: Pulumi deletes the old one and creates a new one; add aliases: [{ parent: <old parent> }] to keep it`],
      warnings: [], dataLoss: false,
    };
    pairs.push({ before: prior, after: r, change });
  }
  for (const r of leftovers) {
    changes.push({ action: "delete", urn: r.urn, type: r.type, name: r.name, changes: [], reasons: [], warnings: [], dataLoss: false });
  }

  // Inputs, with values computed by resources being created shown as unknown, as preview does.
  const ctx = opts.mock ?? inferMockContext([after, before]);
  const created = new Map<string, string>();
  if (ctx) {
    for (const c of changes) {
      if (c.action !== "create") continue;
      for (const v of computedValues(cur.get(c.urn)!, ctx)) created.set(v, `(known after apply: ${c.type} ${c.name} is created)`);
    }
  }
  const pending: PendingLabel = (value) => {
    if (created.size === 0) return undefined;
    const leaves: { path: string; value: string; secret: boolean }[] = [];
    stringLeaves("", value, leaves);
    for (const l of leaves) for (const [v, label] of created) if (l.value.includes(v)) return label;
    return undefined;
  };
  for (const p of pairs) p.change.changes = inputChanges(p.after.type, p.before.inputs, p.after.inputs, pending);

  // 3. Replacement by input, then its cascade through computed values until nothing new is replaced.
  const settle = (p: (typeof pairs)[number]) => {
    const forcing = p.change.changes.filter((c) => c.effect === "replace");
    if (forcing.length > 0 && p.change.action !== "replace") p.change.action = "replace";
    for (const c of forcing) {
      const why = `${c.path} changes and forces replacement`;
      if (!p.change.reasons.includes(why)) p.change.reasons.push(why);
    }
  };
  pairs.forEach(settle);
  if (ctx) {
    const cascaded = new Set<string>();
    for (let again = true; again; ) {
      again = false;
      const replaced = pairs.filter((p) => p.change.action === "replace" && !cascaded.has(p.after.urn));
      for (const src of replaced) {
        cascaded.add(src.after.urn);
        const values = computedValues(src.after, ctx);
        if (values.length === 0) continue;
        for (const p of pairs) {
          if (p === src) continue;
          const leaves: { path: string; value: string; secret: boolean }[] = [];
          stringLeaves("", p.after.inputs, leaves);
          for (const leaf of leaves) {
            if (!values.some((v) => leaf.value.includes(v))) continue;
            if (p.change.changes.some((c) => c.path === leaf.path)) continue;
            const e = effectOf(p.after.type, leaf.path);
            p.change.changes.push({
              path: leaf.path,
              before: showValue(leaf.value, leaf.secret),
              after: `(known after apply: ${src.after.type} ${src.after.name} is replaced)`,
              effect: e.effect,
              ...(e.effect === "caution" ? { note: e.note } : {}),
            });
            const wasReplaced = p.change.action === "replace";
            settle(p);
            if (!wasReplaced && p.change.action === "replace") again = true;
          }
        }
      }
    }
  }

  for (const p of pairs) {
    if (p.change.changes.length === 0 && p.change.action === "update" && !p.change.previousUrn) {
      same++;
      continue;
    }
    if (p.change.action === "update") {
      for (const c of p.change.changes) if (c.effect === "caution" && c.note) p.change.warnings.push(`${c.path}: ${c.note}`);
    }
    dataLossWarnings(p.change, p.before);
    changes.push(p.change);
  }
  for (const c of changes) if (c.action === "delete") dataLossWarnings(c, old.get(c.urn));
  for (const c of changes) c.changes.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
  changes.sort((a, b) => ACTION_ORDER[a.action] - ACTION_ORDER[b.action] || (a.urn < b.urn ? -1 : a.urn > b.urn ? 1 : 0));

  const count = (a: Action) => changes.filter((c) => c.action === a).length;
  const tb = before?.tenants ?? [];
  const ta = after?.tenants ?? [];
  const beforeV = before?.violations ?? [];
  const afterV = after?.violations ?? [];
  const beforeKeys = new Set(beforeV.map(violationKey));
  const afterKeys = new Set(afterV.map(violationKey));
  const warnings: string[] = [];
  if (!after) {
    warnings.push(
      `stack ${any.name} no longer has a stack file: the deploy workflow does not destroy it; ` +
        `run \`pulumi destroy --stack ${any.name}\` deliberately once its data is safe, then \`pulumi stack rm\``,
    );
  }
  const status = !before ? "new" : !after ? "removed" : changes.length > 0 || tb.join() !== ta.join() ? "changed" : "unchanged";
  return {
    stack: any.name,
    kind: any.kind,
    status,
    tenants: { before: tb, after: ta, added: ta.filter((t) => !tb.includes(t)), removed: tb.filter((t) => !ta.includes(t)) },
    resources: changes,
    counts: { create: count("create"), update: count("update"), replace: count("replace"), delete: count("delete"), same },
    violations: {
      after: afterV,
      introduced: afterV.filter((v) => !beforeKeys.has(violationKey(v))),
      resolved: beforeV.filter((v) => !afterKeys.has(violationKey(v))),
    },
    warnings,
  };
}

/** Every resource change of a stack diff that destroys data. */
export function dataLossChanges(d: StackDiff): ResourceChange[] {
  return d.resources.filter((r) => r.dataLoss);
}
