/**
 * The pull-request comment of `tenantctl plan --base REF --markdown FILE`: what merging changes,
 * stack by stack. A summary table first (what a reviewer scans), loud banners for data loss and
 * new mandatory violations, then one collapsible section per stack with every change.
 * The first line is a marker the workflow uses to find and update its own comment.
 */
import type { StackDiff, ResourceChange } from "../../plan/diff.ts";
import { formatUsd } from "../../plan/cost/cost.ts";

/** Identifies the sticky comment; the workflow edits the comment that starts with it. */
export const COMMENT_MARKER = "<!-- tenantctl-plan -->";

/** GitHub rejects comments over 65,536 characters; stay clear of it. */
export const MAX_COMMENT_CHARS = 60_000;

export interface StackCostDelta {
  /** Monthly USD at the base; undefined when the stack is new. */
  before?: number;
  /** Monthly USD at the head; undefined when the stack is removed. */
  after?: number;
  /** Some figure used is marked unverified in plan/cost/prices.ts. */
  unverified: boolean;
  /** Resources without a price (the figures understate). */
  unpriced: number;
}

export interface StackReport extends StackDiff {
  /** Why the stack is in the plan (from `affected`); empty when chosen with --stack/--all. */
  reasons: string[];
  cost?: StackCostDelta;
}

export interface PlanReport {
  base: { ref: string; commit: string };
  head: { ref: string; commit?: string };
  stacks: StackReport[];
  /** Caveats for the whole plan (how the base was rendered, price table date). */
  notes: string[];
}

const ACTION_SYMBOL: Readonly<Record<ResourceChange["action"], string>> = { create: "+", update: "~", replace: "±", delete: "-" };

function short(commit: string | undefined): string {
  return commit ? commit.slice(0, 7) : "working tree";
}

/** Escapes text for a table cell or inline prose (pipes, backticks, angle brackets, newlines). */
function esc(s: string): string {
  return s.replace(/\|/g, "\\|").replace(/`/g, "'").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(/\r?\n/g, " ");
}

/** Inline code that survives any content (values may contain backticks). */
function code(s: string): string {
  const ticks = s.includes("`") ? "``" : "`";
  const pad = ticks.length > 1 ? " " : "";
  return `${ticks}${pad}${s.replace(/\|/g, "\\|").replace(/\r?\n/g, " ")}${pad}${ticks}`;
}

function changesCell(d: StackDiff): string {
  return `+${d.counts.create} ~${d.counts.update} -${d.counts.delete}`;
}

function tenantsCell(d: StackDiff): string {
  const parts = [String(d.tenants.after.length)];
  if (d.tenants.added.length) parts.push(`+${d.tenants.added.join(", +")}`);
  if (d.tenants.removed.length) parts.push(`-${d.tenants.removed.join(", -")}`);
  return esc(parts.join(" "));
}

function costCell(c: StackCostDelta | undefined): string {
  if (!c) return "n/a";
  const after = c.after ?? 0;
  const before = c.before ?? 0;
  const mark = (c.unverified ? "*" : "") + (c.unpriced ? "†" : "");
  const now = c.after === undefined ? "removed" : `${formatUsd(after)}/mo`;
  return `${now} (${formatUsd(after - before, true)})${mark}`;
}

function violationsCell(d: StackDiff): string {
  const mandatory = d.violations.after.filter((v) => v.level === "mandatory").length;
  const advisory = d.violations.after.filter((v) => v.level === "advisory").length;
  const introduced = d.violations.introduced.length;
  const base = `${mandatory} mandatory, ${advisory} advisory`;
  return introduced ? `${mandatory ? "❌ " : ""}${base} (${introduced} new)` : mandatory ? `❌ ${base}` : base;
}

function replacementsCell(d: StackDiff): string {
  if (d.counts.replace === 0) return "0";
  const loss = d.resources.filter((r) => r.dataLoss && r.action === "replace").length;
  return loss ? `**${d.counts.replace}** ⚠️ ${loss} data loss` : `**${d.counts.replace}**`;
}

function resourceLines(r: ResourceChange): string[] {
  const out: string[] = [];
  const moved = r.previousUrn ? ` (was ${code(r.previousUrn)})` : "";
  const head = `${ACTION_SYMBOL[r.action]} **${r.action}** ${code(r.type)} ${code(r.name)}${moved}`;
  out.push(`- ${r.dataLoss ? "⚠️ " : ""}${head}`);
  for (const why of r.reasons) out.push(`  - because ${esc(why)}`);
  for (const c of r.changes) {
    const effect = c.effect === "replace" ? " **(forces replacement)**" : c.effect === "caution" ? " (in place, see below)" : "";
    out.push(`  - ${code(c.path)}: ${code(c.before)} → ${code(c.after)}${effect}`);
  }
  for (const w of r.warnings) out.push(`  - ${w.startsWith("DATA LOSS") ? "**" + esc(w) + "**" : esc(w)}`);
  return out;
}

function stackSection(s: StackReport, detail: boolean): string[] {
  const title = `<b>${esc(s.stack)}</b> (${s.kind}, ${s.status}): ${changesCell(s)}${s.counts.replace ? `, ${s.counts.replace} replaced` : ""}`;
  const lines = ["<details>", `<summary>${title}</summary>`, ""];
  if (s.reasons.length) lines.push(`Why it is planned: ${s.reasons.map(esc).join("; ")}`, "");
  const t = s.tenants;
  lines.push(`Tenants: ${t.after.length ? t.after.map(code).join(", ") : "none"}${t.added.length ? `; joining: ${t.added.map(code).join(", ")}` : ""}${t.removed.length ? `; leaving: ${t.removed.map(code).join(", ")}` : ""}`, "");
  for (const w of s.warnings) lines.push(`> [!WARNING]`, `> ${esc(w)}`, "");
  if (s.cost) {
    const c = s.cost;
    lines.push(`Cost: ${c.before === undefined ? "new" : formatUsd(c.before)} → ${c.after === undefined ? "removed" : formatUsd(c.after)} a month (${formatUsd((c.after ?? 0) - (c.before ?? 0), true)})${c.unpriced ? `; ${c.unpriced} ${c.unpriced === 1 ? "resource has" : "resources have"} no price†` : ""}`, "");
  }
  if (s.resources.length === 0) lines.push("No resource changes.", "");
  else if (!detail) lines.push(`${s.resources.length} resource changes (details left out to fit GitHub's comment limit; see the workflow's plan artifact).`, "");
  else {
    for (const r of s.resources) lines.push(...resourceLines(r));
    lines.push("");
  }
  if (s.violations.introduced.length || s.violations.resolved.length || s.violations.after.length) {
    lines.push("Policy:", "");
    for (const v of s.violations.introduced) lines.push(`- 🆕 ${v.level} ${code(v.policy)} ${code(v.urn)}: ${esc(v.message)}`);
    for (const v of s.violations.resolved) lines.push(`- ✅ fixed: ${v.level} ${code(v.policy)} ${code(v.urn)}: ${esc(v.message)}`);
    const old = s.violations.after.filter((v) => !s.violations.introduced.includes(v));
    for (const v of old) lines.push(`- ${v.level} ${code(v.policy)} ${code(v.urn)}: ${esc(v.message)}`);
    lines.push("");
  }
  lines.push("</details>", "");
  return lines;
}

/** Renders the comment. Deterministic: the same report gives the same text (snapshot-tested). */
export function renderMarkdown(report: PlanReport, maxChars = MAX_COMMENT_CHARS): string {
  const render = (detail: boolean) => {
    const lines: string[] = [COMMENT_MARKER, `## tenantctl plan: ${code(report.head.ref)} (${short(report.head.commit)}) against ${code(report.base.ref)} (${short(report.base.commit)})`, ""];
    const stacks = report.stacks;
    if (stacks.length === 0) {
      lines.push("No stack is affected by this change.", "");
    }
    const loss = stacks.flatMap((s) => s.resources.filter((r) => r.dataLoss).map((r) => ({ s, r })));
    if (loss.length) {
      lines.push("> [!CAUTION]", `> **${loss.length} change${loss.length === 1 ? "" : "s"} destroy${loss.length === 1 ? "s" : ""} data.** Merging runs \`pulumi up\` on these stacks:`);
      for (const { s, r } of loss) lines.push(`> - ${code(s.stack)}: ${r.action} ${code(r.type)} ${code(r.name)}`);
      lines.push("");
    }
    const mandatory = stacks.flatMap((s) => s.violations.after.filter((v) => v.level === "mandatory"));
    if (mandatory.length) lines.push("> [!IMPORTANT]", `> **${mandatory.length} mandatory policy violation${mandatory.length === 1 ? "" : "s"}**: the plan fails until they are fixed.`, "");
    if (stacks.length) {
      lines.push("| stack | kind | tenants | changes | replacements | violations | cost / month |", "|---|---|---|---|---|---|---|");
      for (const s of stacks) {
        lines.push(`| ${esc(s.stack)}${s.status === "new" ? " (new)" : s.status === "removed" ? " (removed)" : ""} | ${s.kind} | ${tenantsCell(s)} | ${changesCell(s)} | ${replacementsCell(s)} | ${violationsCell(s)} | ${costCell(s.cost)} |`);
      }
      const before = stacks.reduce((a, s) => a + (s.cost?.before ?? 0), 0);
      const after = stacks.reduce((a, s) => a + (s.cost?.after ?? 0), 0);
      if (stacks.some((s) => s.cost)) lines.push(`| **total** | | | | | | ${formatUsd(after)}/mo (${formatUsd(after - before, true)}) |`);
      lines.push("");
      for (const s of stacks) lines.push(...stackSection(s, detail));
    }
    if (report.notes.length) {
      lines.push("<sub>");
      for (const n of report.notes) lines.push(`${esc(n)}<br>`);
      lines.push("</sub>", "");
    }
    return `${lines.join("\n").trimEnd()}\n`;
  };
  const full = render(true);
  if (full.length <= maxChars) return full;
  const brief = render(false);
  return brief.length <= maxChars ? brief : `${brief.slice(0, maxChars - 200)}\n\n… (truncated: the full plan is in the workflow's plan artifact)\n`;
}
